package check

import (
	"embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"sigs.k8s.io/structured-merge-diff/v6/typed"
)

// The API schemas of the Kubernetes versions socle check knows, from
// client-go (see schemagen).
//
//go:embed schemas/kubernetes-*.yaml
var schemaFiles embed.FS

// DefaultKubernetesVersion is the version manifests are validated
// against unless another is chosen.
const DefaultKubernetesVersion = "1.34"

// KubernetesVersions lists the versions with a built-in schema.
func KubernetesVersions() []string {
	entries, _ := schemaFiles.ReadDir("schemas")
	var out []string
	for _, e := range entries {
		v := strings.TrimSuffix(strings.TrimPrefix(e.Name(), "kubernetes-"), ".yaml")
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

var (
	parsersMu sync.Mutex
	parsers   = map[string]*typed.Parser{}
)

// schemaParser returns the typed parser of a Kubernetes version ("1.34"
// or "v1.34.2").
func schemaParser(version string) (*typed.Parser, error) {
	v := strings.TrimPrefix(version, "v")
	if parts := strings.Split(v, "."); len(parts) > 2 {
		v = parts[0] + "." + parts[1]
	}
	parsersMu.Lock()
	defer parsersMu.Unlock()
	if p, ok := parsers[v]; ok {
		return p, nil
	}
	b, err := schemaFiles.ReadFile("schemas/kubernetes-" + v + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no schema for Kubernetes %s (known: %s)", version, strings.Join(KubernetesVersions(), ", "))
	}
	p, err := typed.NewParser(typed.YAMLObject(b))
	if err != nil {
		return nil, fmt.Errorf("the Kubernetes %s schema: %w", v, err)
	}
	parsers[v] = p
	return p, nil
}

// typeName maps an apiVersion and kind to the schema's type name:
// apps/v1 Deployment is io.k8s.api.apps.v1.Deployment, v1 Pod is
// io.k8s.api.core.v1.Pod, networking.k8s.io/v1 Ingress is
// io.k8s.api.networking.v1.Ingress.
func typeName(apiVersion, kind string) string {
	group, version, ok := strings.Cut(apiVersion, "/")
	if !ok {
		group, version = "", apiVersion
	}
	pkg := "core"
	switch {
	case group == "":
	case strings.HasSuffix(group, ".k8s.io"):
		pkg = strings.Split(group, ".")[0]
	case !strings.Contains(group, "."):
		pkg = group
	default:
		return "" // not a Kubernetes API group: a custom resource
	}
	return "io.k8s.api." + pkg + "." + version + "." + kind
}

// SchemaOptions choose how manifests are validated.
type SchemaOptions struct {
	KubernetesVersion string
	// Strict refuses fields the schema does not declare.
	Strict bool
	// CRDs are the custom resource schemas known (from CRD manifests).
	CRDs *CRDs
}

// ValidateSchema checks an object against its API schema.
func ValidateSchema(o Object, opts SchemaOptions) []Finding {
	if o.APIVersion == "" || o.Kind == "" {
		return []Finding{finding("schema", o.File, o.Line, o.String(), "missing apiVersion or kind")}
	}
	if opts.Strict && o.Duplicates != "" {
		return []Finding{finding("schema", o.File, o.Line, o.String(), "duplicate key: %s", o.Duplicates)}
	}
	if opts.CRDs != nil {
		if _, ok := opts.CRDs.schemaOf(o.APIVersion, o.Kind); ok {
			return opts.CRDs.ValidateCustom(o, opts.Strict)
		}
	}
	p, err := schemaParser(cmpOr(opts.KubernetesVersion, DefaultKubernetesVersion))
	if err != nil {
		return []Finding{finding("schema-unknown-kind", o.File, o.Line, o.String(), "%v", err)}
	}
	name := typeName(o.APIVersion, o.Kind)
	if name == "" || !hasType(p, name) {
		return []Finding{finding("schema-unknown-kind", o.File, o.Line, o.String(), "no schema for %s %s in Kubernetes %s",
			o.APIVersion, o.Kind, cmpOr(opts.KubernetesVersion, DefaultKubernetesVersion))}
	}
	missing := requiredFields(o.APIVersion, o.Kind, o.Body)
	body := o.Body
	for attempt := 0; ; attempt++ {
		// Duplicate list-map keys (two env entries of one name) are
		// accepted by the API server, with a warning: not an error here.
		_, err = p.Type(name).FromUnstructured(body, typed.AllowDuplicates)
		if err == nil {
			return schemaFindings(o, missing)
		}
		msgs := schemaErrors(err)
		if opts.Strict || attempt > 16 {
			return schemaFindings(o, append(msgs, missing...))
		}
		// structured-merge-diff stops at an undeclared field: without
		// strict mode, drop those fields and validate the rest again.
		var unknown []string
		for _, m := range msgs {
			if path, ok := strings.CutSuffix(m, ": field not declared in schema"); ok {
				unknown = append(unknown, path)
			}
		}
		if len(unknown) == 0 {
			return schemaFindings(o, append(msgs, missing...))
		}
		if attempt == 0 {
			body = deepCopy(body).(map[string]any)
		}
		removed := false
		for _, path := range unknown {
			removed = removePath(body, path) || removed
		}
		if !removed {
			var rest []string
			for _, m := range msgs {
				if !strings.HasSuffix(m, ": field not declared in schema") {
					rest = append(rest, m)
				}
			}
			return schemaFindings(o, append(rest, missing...))
		}
	}
}

func schemaFindings(o Object, msgs []string) []Finding {
	var out []Finding
	for _, m := range msgs {
		out = append(out, finding("schema", o.File, o.Line, o.String(), "%s", m))
	}
	return out
}

func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = deepCopy(x)
		}
		return out
	}
	return v
}

// removePath deletes the field a structured-merge-diff path names
// (".spec.templates", ".spec.containers[name=\"app\"].foo"); false when
// it cannot follow the path.
func removePath(body map[string]any, path string) bool {
	segs := splitPath(path)
	if len(segs) == 0 {
		return false
	}
	var cur any = body
	for i, seg := range segs {
		last := i == len(segs)-1
		if strings.HasPrefix(seg, "[") {
			list, ok := cur.([]any)
			if !ok {
				return false
			}
			cur = matchElement(list, seg)
			if cur == nil || last {
				return false
			}
			continue
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if last {
			if _, ok := m[seg]; !ok {
				return false
			}
			delete(m, seg)
			return true
		}
		cur = m[seg]
	}
	return false
}

// splitPath splits ".a.b[k=\"v\"].c" into a, b, [k="v"], c.
func splitPath(p string) []string {
	var out []string
	var cur strings.Builder
	depth, quoted := 0, false
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range p {
		switch {
		case r == '"' && depth > 0:
			quoted = !quoted
			cur.WriteRune(r)
		case r == '[' && !quoted:
			flush()
			depth++
			cur.WriteRune(r)
		case r == ']' && !quoted:
			depth--
			cur.WriteRune(r)
			flush()
		case r == '.' && depth == 0:
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return out
}

// matchElement finds the list element a [key="value",...] or [index]
// segment names.
func matchElement(list []any, seg string) any {
	inner := strings.TrimSuffix(strings.TrimPrefix(seg, "["), "]")
	if n, err := strconv.Atoi(inner); err == nil {
		if n >= 0 && n < len(list) {
			return list[n]
		}
		return nil
	}
	want := map[string]string{}
	for _, kv := range strings.Split(inner, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		want[k] = v
	}
	for _, el := range list {
		m, ok := el.(map[string]any)
		if !ok {
			continue
		}
		match := true
		for k, v := range want {
			if fmt.Sprint(m[k]) != v {
				match = false
			}
		}
		if match {
			return m
		}
	}
	return nil
}

// schemaErrors splits the validation errors structured-merge-diff
// joins.
func schemaErrors(err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "*"))
		if l == "" || strings.HasPrefix(l, "errors:") {
			continue
		}
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

var (
	typeIndexMu sync.Mutex
	typeIndex   = map[*typed.Parser]map[string]bool{}
)

func hasType(p *typed.Parser, name string) bool {
	typeIndexMu.Lock()
	defer typeIndexMu.Unlock()
	idx, ok := typeIndex[p]
	if !ok {
		idx = map[string]bool{}
		for _, n := range p.TypeNames() {
			idx[n] = true
		}
		typeIndex[p] = idx
	}
	return idx[name]
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
