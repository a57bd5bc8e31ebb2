package catalog_test

import (
	"bytes"
	"testing"

	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
)

// FuzzCatalog: any socle.yaml either fails with an error or gives a
// catalog whose every image renders its tags and sits in a level.
func FuzzCatalog(f *testing.F) {
	f.Add([]byte(socle))
	f.Add([]byte("images:\n  - name: a\n    repository: my/a\n    parent: a\n    version: \"1\"\n    build: {append: {layers: [{from: a, to: /a}]}}\n"))
	f.Add([]byte("images: [{name: x, repository: r/x, version: '1', tags: {immutable: '{{.Parent.Version}}'}, build: {dockerfile: {context: .}}}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("socle.yaml", data)
		if err != nil {
			return
		}
		c, err := catalog.New(cfg)
		if err != nil {
			return
		}
		n := 0
		for _, l := range catalog.Levels(c.Images) {
			n += len(l)
		}
		if n != len(c.Images) {
			t.Fatalf("levels hold %d of %d images", n, len(c.Images))
		}
		for _, im := range c.Images {
			if _, err := im.Tags(); err != nil {
				t.Fatalf("a checked catalog failed to render %s: %v", im.Name, err)
			}
		}
	})
}

// FuzzDockerfile: discovery never panics, and what it reads becomes a
// catalog that parses.
func FuzzDockerfile(f *testing.F) {
	for _, s := range dockerfiles {
		f.Add([]byte(s))
	}
	f.Add([]byte("FROM a AS b\nFROM b AS a\nFROM a\n"))
	f.Add([]byte("# escape=`\nARG X=y\nFROM ${X:-z}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		df, err := catalog.ParseDockerfile(bytes.NewReader(data))
		if err != nil {
			return
		}
		df.Path = "app/Dockerfile"
		out, err := catalog.DiscoveredCatalog([]*catalog.Dockerfile{df}, "platform")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := config.Parse("socle.yaml", out); err != nil {
			t.Fatalf("discovered catalog does not parse: %v\n%s", err, out)
		}
	})
}
