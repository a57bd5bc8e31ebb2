package vuln_test

import (
	"testing"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/vuln"
)

// The specs here are hand-made; each case states an OSV rule.
func TestAffects(t *testing.T) {
	intro := func(v string) vuln.Event { return vuln.Event{Introduced: v} }
	fixed := func(v string) vuln.Event { return vuln.Event{Fixed: v} }
	last := func(v string) vuln.Event { return vuln.Event{LastAffected: v} }
	semverRange := func(evs ...vuln.Event) vuln.Spec {
		return vuln.Spec{Ranges: []vuln.Range{{Type: "SEMVER", Events: evs}}}
	}
	for _, tc := range []struct {
		name      string
		spec      vuln.Spec
		eco, ver  string
		affected  bool
		wantFixed string
	}{
		{"below fix", semverRange(intro("0"), fixed("1.2.3")), "Go", "1.2.2", true, "1.2.3"},
		{"at fix", semverRange(intro("0"), fixed("1.2.3")), "Go", "1.2.3", false, ""},
		{"before introduced", semverRange(intro("1.0.0"), fixed("1.2.3")), "Go", "0.9.0", false, ""},
		{"second range", semverRange(intro("1.0.0"), fixed("1.1.0"), intro("2.0.0"), fixed("2.0.5")), "Go", "2.0.1", true, "2.0.5"},
		{"between ranges", semverRange(intro("1.0.0"), fixed("1.1.0"), intro("2.0.0"), fixed("2.0.5")), "Go", "1.5.0", false, ""},
		{"unsorted events", semverRange(fixed("2.0.5"), intro("2.0.0"), fixed("1.1.0"), intro("1.0.0")), "Go", "1.0.3", true, "1.1.0"},
		{"last affected inclusive", semverRange(intro("0"), last("1.4.0")), "Go", "1.4.0", true, ""},
		{"after last affected", semverRange(intro("0"), last("1.4.0")), "Go", "1.4.1", false, ""},
		{"versions list", vuln.Spec{Versions: []string{"2.0", "2.1"}}, "PyPI", "2.1", true, ""},
		{"versions list miss", vuln.Spec{Versions: []string{"2.0", "2.1"}}, "PyPI", "2.2", false, ""},
		{"pep440 ordering", vuln.Spec{Ranges: []vuln.Range{{Type: "ECOSYSTEM", Events: []vuln.Event{intro("0"), fixed("2.0.0")}}}}, "PyPI", "2.0.0rc1", true, "2.0.0"},
		{"debian epoch", vuln.Spec{Ranges: []vuln.Range{{Type: "ECOSYSTEM", Events: []vuln.Event{intro("0"), fixed("1:1.0-1")}}}}, "Debian:12", "2.0-1", true, "1:1.0-1"},
		{"debian tilde", vuln.Spec{Ranges: []vuln.Range{{Type: "ECOSYSTEM", Events: []vuln.Event{intro("0"), fixed("3.0.11-1~deb12u2")}}}}, "Debian:12", "3.0.11-1~deb12u1", true, "3.0.11-1~deb12u2"},
		{"alpine revision", vuln.Spec{Ranges: []vuln.Range{{Type: "ECOSYSTEM", Events: []vuln.Event{intro("0"), fixed("1.1.22-r4")}}}}, "Alpine:v3.10", "1.1.22-r3", true, "1.1.22-r4"},
		{"git range ignored", vuln.Spec{Ranges: []vuln.Range{{Type: "GIT", Events: []vuln.Event{intro("0")}}}}, "Go", "1.0.0", false, ""},
		{"empty version", semverRange(intro("0")), "Go", "", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, f := vuln.Affects(tc.spec, tc.eco, tc.ver)
			if got != tc.affected || f != tc.wantFixed {
				t.Fatalf("Affects = %v, %q; want %v, %q", got, f, tc.affected, tc.wantFixed)
			}
		})
	}
}

func TestKeyOf(t *testing.T) {
	for _, tc := range []struct {
		p    sbom.Package
		want string
	}{
		{sbom.Package{Type: "deb", Name: "libssl3", Version: "3.0.11-1~deb12u2", SourceName: "openssl", Ecosystem: "Debian:12"}, "Debian:12/openssl@3.0.11-1~deb12u2"},
		{sbom.Package{Type: "deb", Name: "libc6", Version: "2.36-9+deb12u4+b1", SourceName: "glibc", SourceVersion: "2.36-9+deb12u4", Ecosystem: "Debian:12"}, "Debian:12/glibc@2.36-9+deb12u4"},
		{sbom.Package{Type: "apk", Name: "libcrypto1.1", Version: "1.1.1d-r2", SourceName: "openssl", Ecosystem: "Alpine:v3.10"}, "Alpine:v3.10/openssl@1.1.1d-r2"},
		{sbom.Package{Type: "golang", Name: "go", Version: "1.19.8", Ecosystem: "Go"}, "Go/stdlib@1.19.8"},
		{sbom.Package{Type: "maven", Namespace: "org.apache.logging.log4j", Name: "log4j-core", Version: "2.14.1", Ecosystem: "Maven"}, "Maven/org.apache.logging.log4j:log4j-core@2.14.1"},
		{sbom.Package{Type: "pypi", Name: "Zope.Interface", Version: "5.0", Ecosystem: "PyPI"}, "PyPI/zope-interface@5.0"},
	} {
		k, ok := vuln.KeyOf(&tc.p)
		if got := k.Ecosystem + "/" + k.Name + "@" + k.Version; !ok || got != tc.want {
			t.Errorf("KeyOf(%s) = %s, %v; want %s", tc.p.Name, got, ok, tc.want)
		}
	}
	if _, ok := vuln.KeyOf(&sbom.Package{Type: "golang", Name: "example.com/x", Version: "(devel)", Ecosystem: "Go"}); ok {
		t.Error("a (devel) main module has a match key")
	}
}
