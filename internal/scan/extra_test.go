package scan

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/socle-dev/socle/internal/sbom"
)

// TestPackageExtraAsEncodingJSON compares packageExtra with the
// json.Marshal it replaces on packages whose every field is set at
// random (or left empty), reflection filling them so that a field added
// to sbom.Package and not to packageExtra fails it. The strings mix
// what JSON escapes: quotes, '<', '&', control characters, U+2028 and
// bytes that are not UTF-8.
func TestPackageExtraAsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	parts := []string{"", "a", "libssl3", `"q"`, `back\slash`, "<b>&", "\n\t\x01", "\u2028", "\xff\xfe", "é", "Debian:12"}
	str := func() string {
		var s string
		for range rng.IntN(3) {
			s += parts[rng.IntN(len(parts))]
		}
		return s
	}
	for i := range 5000 {
		var p sbom.Package
		v := reflect.ValueOf(&p).Elem()
		for f := range v.NumField() {
			if rng.IntN(3) == 0 {
				continue // left at its zero value
			}
			switch field := v.Field(f); field.Kind() {
			case reflect.String:
				field.SetString(str())
			case reflect.Int:
				field.SetInt(int64(rng.IntN(5) - 1))
			case reflect.Slice:
				var ss []string
				if rng.IntN(2) == 0 {
					ss = []string{}
				}
				for range rng.IntN(3) {
					ss = append(ss, str())
				}
				field.Set(reflect.ValueOf(ss))
			default:
				t.Fatalf("sbom.Package.%s is a %s: teach this test and packageExtra about it", v.Type().Field(f).Name, field.Kind())
			}
		}
		e := p
		e.Name, e.Version, e.Type, e.PURL, e.Path, e.Layer, e.LayerIndex = "", "", "", "", "", "", 0
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if got := packageExtra(&p); !bytes.Equal(got, want) {
			t.Fatalf("package %d %+v:\n got %s\nwant %s", i, p, got, want)
		}
	}
}

// TestStoredPackagesRebuilt checks when an inventory can be rebuilt from
// the store's rows (hand-made packages): in order, none alike, each with
// its layer. Two packages told apart only by their namespace are alike
// as rows, though the order separates them.
func TestStoredPackagesRebuilt(t *testing.T) {
	p := func(ns, name, path string, layer int) sbom.Package {
		return sbom.Package{Name: name, Version: "1.0", Type: "maven", Namespace: ns, Ecosystem: "Maven",
			PURL: "pkg:maven/g/" + name + "@1.0", Path: path, Layer: "sha256:l", LayerIndex: layer}
	}
	for _, c := range []struct {
		what string
		pkgs []sbom.Package
		want bool
	}{
		{"in order", []sbom.Package{p("a", "x", "p1", 0), p("a", "y", "p1", 0)}, true},
		{"alike but for the namespace", []sbom.Package{p("a", "x", "p1", 0), p("b", "x", "p1", 0)}, false},
		{"alike but for the layer", []sbom.Package{p("a", "x", "p1", 0), p("b", "x", "p1", 1)}, true},
		{"out of order", []sbom.Package{p("a", "y", "p1", 0), p("a", "x", "p1", 0)}, false},
		{"the same twice", []sbom.Package{p("a", "x", "p1", 0), p("a", "x", "p1", 0)}, false},
	} {
		inv := &sbom.Inventory{Packages: c.pkgs}
		if _, _, got := storedPackages(inv); got != c.want {
			t.Errorf("%s: rebuilt = %v, want %v", c.what, got, c.want)
		}
	}
}
