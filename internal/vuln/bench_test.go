package vuln_test

import (
	"testing"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

// BenchmarkMatchStdlib matches the Go toolchain against the whole Go
// vulnerability database: the most advisories one package name has.
func BenchmarkMatchStdlib(b *testing.B) {
	t := &testing.T{}
	s := newStore(t)
	im := vuln.NewImporter(s, "golang-vulndb")
	if err := im.ImportPath(ctx, testenv.SharedData(b, "osv", "go", "golang-vulndb-data-osv.tar.gz")); err != nil {
		b.Fatal(err)
	}
	if _, err := im.Finish(ctx); err != nil {
		b.Fatal(err)
	}
	m := vuln.NewMatcher(s)
	key := store.PackageKey{Ecosystem: "Go", Name: "stdlib", Version: "1.19.8"}
	for b.Loop() {
		if _, _, err := m.Match(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAffects(b *testing.B) {
	spec := vuln.Spec{Ranges: []vuln.Range{{Type: "ECOSYSTEM", Events: []vuln.Event{
		{Introduced: "0"}, {Fixed: "3.0.11-1~deb12u2"}, {Introduced: "3.1.0-1"}, {Fixed: "3.1.4-2"},
	}}}}
	for b.Loop() {
		vuln.Affects(spec, "Debian:12", "3.0.11-1~deb12u1")
	}
}
