package check

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"gopkg.in/yaml.v3"
)

// Object is one Kubernetes object of a manifest.
type Object struct {
	File string
	// Line is the line its document starts on.
	Line       int
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Body       map[string]any
	// Ignores are the inline ignore comments of its document.
	Ignores []Ignore
	// Duplicates describes keys its document gives twice (the last one
	// is kept); strict validation refuses them, as kubeconform's.
	Duplicates string
}

// maxDocuments bounds the documents one stream may hold.
const maxDocuments = 100_000

// ParseManifests reads a YAML (multi-document) or JSON stream of
// Kubernetes objects; a List's items are objects of their own. A
// document that does not parse is returned as an error that names its
// line, and reading stops there.
func ParseManifests(file string, data []byte) ([]Object, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Object
	for n := 0; ; n++ {
		if n >= maxDocuments {
			return out, fmt.Errorf("%s: more than %d documents", file, maxDocuments)
		}
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%s: document %d: %w", file, n+1, err)
		}
		if len(node.Content) == 0 || node.Content[0].Kind != yaml.MappingNode {
			continue // an empty document, or a scalar
		}
		var body map[string]any
		dups := ""
		if err := node.Decode(&body); err != nil {
			if !strings.Contains(err.Error(), "already defined") {
				return out, fmt.Errorf("%s: line %d: %w", file, node.Line, err)
			}
			// A key given twice: keep the last, as Kubernetes' own
			// decoding does, and say so for strict validation.
			v, verr := nodeValue(&node, 0)
			m, ok := v.(map[string]any)
			if verr != nil || !ok {
				return out, fmt.Errorf("%s: line %d: %w", file, node.Line, err)
			}
			body, dups = m, strings.TrimSpace(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:"))
		}
		ignores := parseIgnores(commentsOf(&node))
		objs := objectsOf(file, node.Content[0].Line, body, ignores, 0)
		for i := range objs {
			objs[i].Duplicates = dups
		}
		out = append(out, objs...)
	}
}

func objectsOf(file string, line int, body map[string]any, ignores []Ignore, depth int) []Object {
	o := Object{File: file, Line: line, Body: body, Ignores: ignores}
	o.APIVersion, _ = body["apiVersion"].(string)
	o.Kind, _ = body["kind"].(string)
	if md, ok := body["metadata"].(map[string]any); ok {
		o.Name, _ = md["name"].(string)
		o.Namespace, _ = md["namespace"].(string)
	}
	if strings.HasSuffix(o.Kind, "List") && depth < 4 {
		if items, ok := body["items"].([]any); ok {
			var out []Object
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					out = append(out, objectsOf(file, line, m, ignores, depth+1)...)
				}
			}
			return out
		}
	}
	return []Object{o}
}

// commentsOf gathers every comment of a document.
func commentsOf(n *yaml.Node) []string {
	var out []string
	var walk func(n *yaml.Node, depth int)
	walk = func(n *yaml.Node, depth int) {
		if n == nil || depth > 64 {
			return
		}
		for _, c := range []string{n.HeadComment, n.LineComment, n.FootComment} {
			if c != "" {
				out = append(out, strings.Split(c, "\n")...)
			}
		}
		for _, c := range n.Content {
			walk(c, depth+1)
		}
	}
	walk(n, 0)
	return out
}

// String names the object as findings do: Kind/name.
func (o Object) String() string {
	name := o.Name
	if name == "" {
		name = "(unnamed)"
	}
	if o.Namespace != "" {
		name = o.Namespace + "/" + name
	}
	return o.Kind + "/" + name
}
