package check

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// CRDs are custom resource schemas, read from CustomResourceDefinition
// manifests.
type CRDs struct {
	byGVK map[string]map[string]any // "group/version Kind" -> openAPIV3Schema
	// compiled caches the compiled schema per key and strictness.
	compiled map[string]*jsonschema.Schema
}

// NewCRDs returns an empty set.
func NewCRDs() *CRDs {
	return &CRDs{byGVK: map[string]map[string]any{}, compiled: map[string]*jsonschema.Schema{}}
}

// Len is the number of versioned kinds known.
func (c *CRDs) Len() int { return len(c.byGVK) }

// Add reads a CustomResourceDefinition object; other objects are not
// CRDs and report false.
func (c *CRDs) Add(o Object) (bool, error) {
	if o.Kind != "CustomResourceDefinition" || !strings.HasPrefix(o.APIVersion, "apiextensions.k8s.io/") {
		return false, nil
	}
	spec := mapAt(o.Body, "spec")
	group := stringAt(spec, "group")
	kind := stringAt(spec, "names", "kind")
	if group == "" || kind == "" {
		return true, fmt.Errorf("%s: CRD %s without group or kind", o.File, o.Name)
	}
	// v1beta1 CRDs give one schema for all their versions
	// (spec.validation) and may name one version (spec.version).
	shared := mapAt(spec, "validation", "openAPIV3Schema")
	if v := stringAt(spec, "version"); v != "" && shared != nil {
		c.byGVK[group+"/"+v+" "+kind] = shared
	}
	for _, v := range listAt(spec, "versions") {
		name, _ := v["name"].(string)
		s := mapAt(v, "schema", "openAPIV3Schema")
		if s == nil {
			s = shared
		}
		if name == "" || s == nil {
			continue
		}
		c.byGVK[group+"/"+name+" "+kind] = s
	}
	return true, nil
}

func (c *CRDs) schemaOf(apiVersion, kind string) (string, bool) {
	key := apiVersion + " " + kind
	_, ok := c.byGVK[key]
	if !ok {
		return "", false
	}
	return key, true
}

func (c *CRDs) compile(key string, strict bool) (*jsonschema.Schema, error) {
	ck := fmt.Sprintf("%s %v", key, strict)
	if s, ok := c.compiled[ck]; ok {
		return s, nil
	}
	raw, err := json.Marshal(c.byGVK[key])
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	root, _ := doc.(map[string]any)
	props, _ := root["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		root["properties"] = props
	}
	for _, k := range []string{"apiVersion", "kind", "metadata"} {
		if _, ok := props[k]; !ok {
			props[k] = map[string]any{}
		}
	}
	if strict {
		closeObjects(root, 0)
	}
	comp := jsonschema.NewCompiler()
	if err := comp.AddResource("crd.json", doc); err != nil {
		return nil, err
	}
	s, err := comp.Compile("crd.json")
	if err != nil {
		return nil, err
	}
	c.compiled[ck] = s
	return s, nil
}

// closeObjects refuses unknown fields wherever the structural schema
// lists properties and does not preserve unknown fields, as the API
// server prunes them.
func closeObjects(s map[string]any, depth int) {
	if depth > 64 {
		return
	}
	if p, ok := s["properties"].(map[string]any); ok {
		if _, set := s["additionalProperties"]; !set && s["x-kubernetes-preserve-unknown-fields"] != true {
			s["additionalProperties"] = false
		}
		for _, v := range p {
			if m, ok := v.(map[string]any); ok {
				closeObjects(m, depth+1)
			}
		}
	}
	for _, k := range []string{"items", "additionalProperties"} {
		if m, ok := s[k].(map[string]any); ok {
			closeObjects(m, depth+1)
		}
	}
}

// ValidateCustom checks a custom resource against its CRD's schema.
func (c *CRDs) ValidateCustom(o Object, strict bool) []Finding {
	key, ok := c.schemaOf(o.APIVersion, o.Kind)
	if !ok {
		return nil
	}
	s, err := c.compile(key, strict)
	if err != nil {
		return []Finding{finding("schema", o.File, o.Line, o.String(), "the CRD's schema does not compile: %v", err)}
	}
	raw, _ := json.Marshal(o.Body)
	var inst any
	_ = json.Unmarshal(raw, &inst)
	if err := s.Validate(inst); err != nil {
		var out []Finding
		for _, l := range strings.Split(err.Error(), "\n") {
			l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "-"))
			if l == "" || strings.HasPrefix(l, "jsonschema validation failed") {
				continue
			}
			out = append(out, finding("schema", o.File, o.Line, o.String(), "%s", l))
		}
		if len(out) == 0 {
			out = append(out, finding("schema", o.File, o.Line, o.String(), "%v", err))
		}
		return out
	}
	return nil
}
