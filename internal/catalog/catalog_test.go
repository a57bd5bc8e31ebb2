package catalog_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
)

func load(t *testing.T, yml string) (*catalog.Catalog, error) {
	t.Helper()
	f, err := config.Parse("socle.yaml", []byte(yml))
	if err != nil {
		t.Fatalf("socle.yaml does not parse: %v", err)
	}
	return catalog.New(f)
}

// lineOf is the line of the first occurrence of s in text.
func lineOf(text, s string) int {
	i := strings.Index(text, s)
	if i < 0 {
		return -1
	}
	return strings.Count(text[:i], "\n") + 1
}

// The socle of the issue: debian 12.8, java 17.0.9 on it, two apps.
const socle = `images:
  - name: debian
    repository: my/debian
    version: "12.8"
    build:
      assemble:
        suite: bookworm
        packages: [base-files, ca-certificates]
  - name: java
    repository: my/java
    parent: debian
    version: 17.0.9
    build:
      append:
        layers: [{from: jdk, to: /opt/java}]
  - name: billing
    repository: apps/billing
    parent: java
    version: 2.4.1
    build:
      append:
        layers: [{from: billing.jar, to: /app/}]
  - name: ledger
    repository: apps/ledger
    parent: java
    version: 1.0.0
    tags:
      immutable: "v{{.Version}}"
      floating: ["latest"]
    build:
      append:
        layers: [{from: ledger.jar, to: /app/}]
`

func TestCatalogGraphAndTags(t *testing.T) {
	c, err := load(t, socle)
	if err != nil {
		t.Fatal(err)
	}
	levels := catalog.Levels(c.Images)
	var names [][]string
	for _, l := range levels {
		var ns []string
		for _, im := range l {
			ns = append(ns, im.Name)
		}
		names = append(names, ns)
	}
	if !reflect.DeepEqual(names, [][]string{{"debian"}, {"java"}, {"billing", "ledger"}}) {
		t.Fatalf("levels = %v", names)
	}
	java, _ := c.Get("java")
	tags, err := java.Tags()
	if err != nil {
		t.Fatal(err)
	}
	// The convention of the issue, verbatim.
	want := catalog.Tags{Immutable: "17.0.9-debian12.8", Floating: []string{"17-debian12.8", "17-debian12", "17"}}
	if !reflect.DeepEqual(tags, want) {
		t.Fatalf("java tags = %+v, want %+v", tags, want)
	}
	deb, _ := c.Get("debian")
	if dt, _ := deb.Tags(); dt.Immutable != "12.8" || !reflect.DeepEqual(dt.Floating, []string{"12"}) {
		t.Fatalf("debian tags = %+v", dt)
	}
	ledger, _ := c.Get("ledger")
	if lt, _ := ledger.Tags(); lt.Immutable != "v1.0.0" || !reflect.DeepEqual(lt.Floating, []string{"latest"}) {
		t.Fatalf("custom templates gave %+v", lt)
	}
	if d := deb.Descendants(); len(d) != 3 {
		t.Fatalf("debian has %d descendants", len(d))
	}
	if !java.RebaseSafe() || deb.RebaseSafe() {
		t.Fatal("append images are rebase-safe, assembled ones are not")
	}
	if catalog.RevisionTag("12.8", 0) != "12.8" || catalog.RevisionTag("12.8", 2) != "12.8-r2" {
		t.Fatal("revision tags")
	}
}

func TestExternalParentTags(t *testing.T) {
	c, err := load(t, `images:
  - name: node
    repository: my/node
    parent: registry.example/base/debian:12.8
    version: 22.11.0
    build: {append: {layers: [{from: x, to: /x}]}}
`)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := c.Get("node")
	tags, err := im.Tags()
	if err != nil {
		t.Fatal(err)
	}
	if tags.Immutable != "22.11.0-debian12.8" || !im.External() {
		t.Fatalf("tags = %+v external = %v", tags, im.External())
	}
}

func TestCatalogErrors(t *testing.T) {
	base := "  - name: base\n    repository: my/base\n    version: \"1\"\n    build: {assemble: {suite: bookworm, packages: [libc6]}}\n"
	tests := []struct {
		name, yml, field, msg string
		// at is text on the line the error must name.
		at string
	}{
		{"missing parent", base + "  - name: app\n    repository: my/app\n    parent: nothere\n    version: \"1\"\n    build: {append: {layers: [{from: a, to: /a}]}}\n",
			"images[1].parent", "not an image in the catalog", "parent: nothere"},
		{"cycle", "  - name: a\n    repository: my/a\n    parent: b\n    version: \"1\"\n    build: {append: {layers: [{from: a, to: /a}]}}\n" +
			"  - name: b\n    repository: my/b\n    parent: a\n    version: \"1\"\n    build: {append: {layers: [{from: b, to: /b}]}}\n",
			"images[0].parent", "cycle: a → b → a", "parent: b"},
		{"self parent", "  - name: a\n    repository: my/a\n    parent: a\n    version: \"1\"\n    build: {append: {layers: [{from: a, to: /a}]}}\n",
			"images[0].parent", "its own parent", "parent: a"},
		{"duplicate", base + strings.Replace(base, "my/base", "my/base2", 1), "images[1].name", "declared twice", "- name: base\n    repository: my/base2"},
		{"assembled with parent", "  - name: b\n    repository: my/b\n    parent: x/y:1\n    version: \"1\"\n    build: {assemble: {suite: bookworm, packages: [libc6]}}\n",
			"images[0].parent", "has no parent", "parent: x/y:1"},
		{"no build", "  - name: b\n    repository: my/b\n    version: \"1\"\n", "images[0].build", "say how", "- name: b"},
		{"two builds", "  - name: b\n    repository: my/b\n    version: \"1\"\n    build:\n      assemble: {suite: bookworm, packages: [libc6]}\n      dockerfile: {context: .}\n",
			"images[0].build", "exactly one", "build:"},
		{"bad template", "  - name: b\n    repository: my/b\n    version: \"1\"\n    tags: {immutable: \"{{.Nope}}\"}\n    build: {assemble: {suite: bookworm, packages: [libc6]}}\n",
			"images[0].tags", "Nope", "tags:"},
		{"template makes a bad tag", "  - name: b\n    repository: my/b\n    version: \"1\"\n    tags: {floating: [\"a/b\"]}\n    build: {assemble: {suite: bookworm, packages: [libc6]}}\n",
			"images[0].tags", "not a valid tag", "tags:"},
		{"relative destination", base + "  - name: app\n    repository: my/app\n    parent: base\n    version: \"1\"\n    build: {append: {layers: [{from: a, to: a}]}}\n",
			"images[1].build.append.layers[0].to", "absolute path", "build: {append"},
		{"bad package name", "  - name: b\n    repository: my/b\n    version: \"1\"\n    build: {assemble: {suite: bookworm, packages: [\"libc6; rm\"]}}\n",
			"images[0].build.assemble.packages[0]", "not a Debian package name", "build:"},
		{"bad repository", "  - name: b\n    repository: My/B\n    version: \"1\"\n    build: {assemble: {suite: bookworm, packages: [libc6]}}\n",
			"images[0].repository", "not a repository name", "repository: My/B"},
		{"no version", "  - name: b\n    repository: my/b\n    build: {assemble: {suite: bookworm, packages: [libc6]}}\n",
			"images[0].version", "needs a version", "- name: b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yml := "images:\n" + tc.yml
			_, err := load(t, yml)
			var errs config.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("err = %v, want config.Errors", err)
			}
			for _, e := range errs {
				if e.Field == tc.field && strings.Contains(e.Msg, tc.msg) {
					if want := lineOf(yml, tc.at); e.Line != want {
						t.Fatalf("error %q on line %d, want %d", e, e.Line, want)
					}
					return
				}
			}
			t.Fatalf("no error on %s containing %q in:\n%v", tc.field, tc.msg, err)
		})
	}
}
