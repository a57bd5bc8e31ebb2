package config

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// SetPins rewrites NAME=VERSION pins of an assembled image in the
// socle.yaml at path: each pinned package named in pins gets the new
// version. Comments and layout are kept (the file is re-encoded from its
// node tree); the file is replaced atomically.
func SetPins(path, image string, pins map[string]string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	pkgs := findPackages(&doc, image)
	if pkgs == nil {
		return fmt.Errorf("%s: no assembled image %q", path, image)
	}
	changed := 0
	for _, n := range pkgs.Content {
		name, _, pinned := strings.Cut(n.Value, "=")
		if v, ok := pins[name]; ok && pinned {
			n.Value = name + "=" + v
			changed++
		}
	}
	if changed == 0 {
		return nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return err
	}
	if _, err := Parse(path, buf.Bytes()); err != nil {
		return fmt.Errorf("the rewritten %s would not parse: %w", path, err)
	}
	tmp := path + ".socle-tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// findPackages finds images[name=image].build.assemble.packages.
func findPackages(doc *yaml.Node, image string) *yaml.Node {
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	images := mapValue(doc, "images")
	if images == nil || images.Kind != yaml.SequenceNode {
		return nil
	}
	for _, im := range images.Content {
		if n := mapValue(im, "name"); n != nil && n.Value == image {
			if p := mapValue(mapValue(mapValue(im, "build"), "assemble"), "packages"); p != nil && p.Kind == yaml.SequenceNode {
				return p
			}
		}
	}
	return nil
}

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}
