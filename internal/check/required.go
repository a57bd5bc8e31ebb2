package check

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
)

// The structured schema says nothing of required fields; k8s.io/api's
// types do: a field whose JSON tag has no omitempty is required, which is
// the rule the OpenAPI generator follows for the API's "required" lists.
// requiredFields walks an object with the Go type of its kind and reports
// the required fields it lacks (or sets to null).
func requiredFields(apiVersion, kind string, body map[string]any) []string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return nil
	}
	obj, err := scheme.Scheme.New(gv.WithKind(kind))
	if err != nil {
		return nil // not a built-in kind
	}
	var out []string
	walkRequired(reflect.TypeOf(obj).Elem(), body, "", &out, 0)
	sort.Strings(out)
	return out
}

type jsonField struct {
	name     string
	typ      reflect.Type
	required bool
	inline   bool
}

var fieldCache sync.Map // reflect.Type -> []jsonField

func fieldsOf(t reflect.Type) []jsonField {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]jsonField)
	}
	var out []jsonField
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		inline := strings.Contains(opts, "inline") || (name == "" && f.Anonymous)
		if name == "" && !inline {
			name = f.Name
		}
		out = append(out, jsonField{name: name, typ: f.Type, inline: inline,
			required: !inline && !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero")})
	}
	fieldCache.Store(t, out)
	return out
}

func walkRequired(t reflect.Type, v any, path string, out *[]string, depth int) {
	if depth > 32 || v == nil {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok || isOpaque(t) {
			return
		}
		for _, f := range fieldsOf(t) {
			if f.inline {
				walkRequired(f.typ, v, path, out, depth+1)
				continue
			}
			child, present := m[f.name]
			if f.required && (!present || child == nil) {
				*out = append(*out, fmt.Sprintf("%s.%s: required", path, f.name))
				continue
			}
			if present {
				walkRequired(f.typ, child, path+"."+f.name, out, depth+1)
			}
		}
	case reflect.Slice:
		items, ok := v.([]any)
		if !ok || t.Elem().Kind() == reflect.Uint8 {
			return
		}
		for i, it := range items {
			walkRequired(t.Elem(), it, fmt.Sprintf("%s[%d]", path, i), out, depth+1)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		for k, it := range m {
			walkRequired(t.Elem(), it, path+"."+k, out, depth+1)
		}
	}
}

// isOpaque tells the types whose JSON is not their fields: quantities,
// times, int-or-strings, raw extensions.
func isOpaque(t reflect.Type) bool {
	switch t.PkgPath() {
	case "k8s.io/apimachinery/pkg/api/resource", "k8s.io/apimachinery/pkg/util/intstr", "k8s.io/apimachinery/pkg/runtime":
		return true
	}
	switch t.Name() {
	case "Time", "MicroTime", "Duration", "Fields", "FieldsV1", "JSON":
		return true
	}
	_, marshals := reflect.PointerTo(t).MethodByName("UnmarshalJSON")
	return marshals
}
