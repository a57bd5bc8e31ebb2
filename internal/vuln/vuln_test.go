package vuln_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/osv-scalibr/semantic"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/mod/semver"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
	"gopkg.in/yaml.v3"
)

var ctx = context.Background()

func newStore(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func importPath(t *testing.T, s store.Store, source string, paths ...string) vuln.ImportStats {
	t.Helper()
	im := vuln.NewImporter(s, source)
	for _, p := range paths {
		if err := im.ImportPath(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	st, err := im.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// tarRecords reads the raw JSON or YAML records of a shared tarball.
func tarRecords(t *testing.T, rel ...string) map[string][]byte {
	t.Helper()
	f, err := os.Open(testenv.SharedData(t, rel...))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && (strings.HasSuffix(h.Name, ".json") || strings.HasSuffix(h.Name, ".yaml")) {
			b, _ := io.ReadAll(tr)
			out[h.Name] = b
		}
	}
}

func TestImportGoVulnDB(t *testing.T) {
	s := newStore(t)
	raw := tarRecords(t, "osv", "go", "golang-vulndb-data-osv.tar.gz")
	withdrawn := 0
	for _, b := range raw {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["withdrawn"]; ok {
			withdrawn++
		}
	}
	st := importPath(t, s, "golang-vulndb", testenv.SharedData(t, "osv", "go", "golang-vulndb-data-osv.tar.gz"))
	if st.Records != len(raw) || st.Added != len(raw) || st.Skipped != 0 {
		t.Fatalf("import: %+v, want %d records", st, len(raw))
	}
	stats, err := s.AdvisoryStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 1 || stats[0].Ecosystem != "Go" || stats[0].Withdrawn != withdrawn {
		t.Fatalf("stats = %+v, want %d withdrawn", stats, withdrawn)
	}
	again := importPath(t, s, "golang-vulndb", testenv.SharedData(t, "osv", "go", "golang-vulndb-data-osv.tar.gz"))
	if again.Unchanged != len(raw) || len(again.Changed) != 0 || len(again.Packages) != 0 {
		t.Fatalf("re-import changed something: added %d updated %d", again.Added, again.Updated)
	}
}

// osvAffectsSemver evaluates a SEMVER range with golang.org/x/mod/semver:
// a second implementation to check socle's against.
func osvAffectsSemver(events []map[string]string, version string) bool {
	v := "v" + version
	type ev struct{ kind, ver string }
	var evs []ev
	for _, e := range events {
		for k, x := range e {
			evs = append(evs, ev{k, x})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool {
		if evs[i].ver == "0" {
			return evs[j].ver != "0"
		}
		if evs[j].ver == "0" {
			return false
		}
		return semver.Compare("v"+evs[i].ver, "v"+evs[j].ver) < 0
	})
	affected := false
	for _, e := range evs {
		switch e.kind {
		case "introduced":
			if e.ver == "0" || semver.Compare(v, "v"+e.ver) >= 0 {
				affected = true
			}
		case "fixed":
			if semver.Compare(v, "v"+e.ver) >= 0 {
				affected = false
			}
		case "last_affected":
			if semver.Compare(v, "v"+e.ver) > 0 {
				affected = false
			}
		}
	}
	return affected
}

func TestGoStdlibMatching(t *testing.T) {
	s := newStore(t)
	importPath(t, s, "golang-vulndb", testenv.SharedData(t, "osv", "go", "golang-vulndb-data-osv.tar.gz"))
	const goVersion = "1.19.8" // the toolchain of gobin/age-keygen, per the MANIFEST
	want := map[string]bool{}
	for _, b := range tarRecords(t, "osv", "go", "golang-vulndb-data-osv.tar.gz") {
		var rec struct {
			ID        string `json:"id"`
			Withdrawn string `json:"withdrawn"`
			Affected  []struct {
				Package struct{ Name string } `json:"package"`
				Ranges  []struct {
					Type   string              `json:"type"`
					Events []map[string]string `json:"events"`
				} `json:"ranges"`
			} `json:"affected"`
		}
		json.Unmarshal(b, &rec)
		if rec.Withdrawn != "" {
			continue
		}
		for _, a := range rec.Affected {
			if a.Package.Name != "stdlib" {
				continue
			}
			for _, r := range a.Ranges {
				if r.Type == "SEMVER" && osvAffectsSemver(r.Events, goVersion) {
					want[rec.ID] = true
				}
			}
		}
	}
	m := vuln.NewMatcher(s)
	active, _, err := m.Match(ctx, store.PackageKey{Ecosystem: "Go", Name: "stdlib", Version: goVersion})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, a := range active {
		got[a.AdvisoryID] = true
		if a.FixedVersion == "" {
			t.Errorf("%s: no fixed version", a.AdvisoryID)
		} else if semver.Compare("v"+a.FixedVersion, "v"+goVersion) <= 0 {
			t.Errorf("%s: fixed version %s is not above %s", a.AdvisoryID, a.FixedVersion, goVersion)
		}
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("matched %d stdlib advisories, the data says %d", len(got), len(want))
	}
	for id := range want {
		if !got[id] {
			t.Errorf("missing %s", id)
		}
	}
}

func TestImportPyPAYAMLKeepsVersionsAsWritten(t *testing.T) {
	s := newStore(t)
	raw := tarRecords(t, "osv", "pypi", "pypa-advisory-database-vulns.tar.gz")
	st := importPath(t, s, "pypa", testenv.SharedData(t, "osv", "pypi", "pypa-advisory-database-vulns.tar.gz"))
	if st.Records+st.Skipped != len(raw) || st.Records == 0 {
		t.Fatalf("import: %d records + %d skipped of %d files; errors %v", st.Records, st.Skipped, len(raw), st.Errors)
	}
	if st.Skipped > 0 {
		t.Fatalf("%d PyPA records refused: %v", st.Skipped, st.Errors)
	}
	// Every stored record keeps the versions lists exactly as a plain
	// YAML decode of the file reads them.
	for name, b := range raw {
		var doc struct {
			ID       string `yaml:"id"`
			Affected []struct {
				Versions []string `yaml:"versions"`
			} `yaml:"affected"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a, err := s.Advisory(ctx, doc.ID)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var stored struct {
			Affected []struct {
				Versions []string `json:"versions"`
			} `json:"affected"`
		}
		if err := json.Unmarshal(a.Raw, &stored); err != nil {
			t.Fatal(err)
		}
		if len(stored.Affected) != len(doc.Affected) {
			t.Fatalf("%s: %d affected entries stored, %d in the file", doc.ID, len(stored.Affected), len(doc.Affected))
		}
		for i := range doc.Affected {
			if strings.Join(stored.Affected[i].Versions, ",") != strings.Join(doc.Affected[i].Versions, ",") {
				t.Fatalf("%s: versions %v stored as %v", doc.ID, doc.Affected[i].Versions, stored.Affected[i].Versions)
			}
		}
	}
}

// TestYAMLNumbersStayStrings: a hand-made record with unquoted versions
// that YAML would read as numbers.
func TestYAMLNumbersStayStrings(t *testing.T) {
	v, err := vuln.ParseOSVYAML([]byte(`id: HANDMADE-1
modified: 2024-01-01T00:00:00Z
affected:
- package:
    ecosystem: PyPI
    name: x
  ranges:
  - type: ECOSYSTEM
    events:
    - introduced: 0
    - fixed: 1.10
  versions:
  - 1.0
  - 1.10
`))
	if err != nil {
		t.Fatal(err)
	}
	a := v.GetAffected()[0]
	if got := a.GetRanges()[0].GetEvents()[1].GetFixed(); got != "1.10" {
		t.Fatalf("fixed = %q", got)
	}
	if got := strings.Join(a.GetVersions(), ","); got != "1.0,1.10" {
		t.Fatalf("versions = %q", got)
	}
}

// secfixes reads a vuln-list Alpine file the plain way.
func secfixes(t *testing.T, name string) map[string][]string {
	t.Helper()
	var d struct {
		Secfixes map[string][]string `json:"secfixes"`
	}
	if err := json.Unmarshal(testenv.ReadShared(t, "alpine", "vuln-list-alpine-3.10", name+".json"), &d); err != nil {
		t.Fatal(err)
	}
	return d.Secfixes
}

func TestAlpineSecDB(t *testing.T) {
	s := newStore(t)
	st := importPath(t, s, "vuln-list", testenv.SharedData(t, "alpine", "vuln-list-alpine-3.10"))
	if st.Skipped != 0 || st.Records == 0 {
		t.Fatalf("import: %+v", st)
	}
	m := vuln.NewMatcher(s)
	for _, pkg := range []string{"openssl", "musl", "busybox", "apk-tools"} {
		for fixed, ids := range secfixes(t, pkg) {
			for _, id := range ids {
				// Just below the fix is affected and names the fix; the
				// fix itself is not affected.
				rows, err := s.AffectedFor(ctx, "Alpine:v3.10", pkg)
				if err != nil {
					t.Fatal(err)
				}
				found := false
				for _, r := range rows {
					for _, a := range r.Aliases {
						found = found || a == id
					}
				}
				if !found {
					t.Fatalf("%s %s: no record", pkg, id)
				}
				active, _, err := m.Match(ctx, store.PackageKey{Ecosystem: "Alpine:v3.10", Name: pkg, Version: fixed})
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range active {
					for _, al := range a.Aliases {
						if al == id {
							t.Fatalf("%s %s: fixed version %s still affected", pkg, id, fixed)
						}
					}
				}
			}
		}
	}
	// The whole-branch format of alpine-secdb imports too.
	st = importPath(t, s, "alpine-secdb", testenv.SharedData(t, "alpine", "alpine-secdb-v3.10"))
	if st.Skipped != 0 || st.Records == 0 {
		t.Fatalf("alpine-secdb import: %+v", st)
	}
}

// TestAlpineImageFindings: the expected findings are computed from the
// vuln-list data and the image's package versions with semantic's Alpine
// ordering; socle must report exactly those.
func TestAlpineImageFindings(t *testing.T) {
	s := newStore(t)
	importPath(t, s, "vuln-list", testenv.SharedData(t, "alpine", "vuln-list-alpine-3.10"))
	inv := alpineInventory(t)
	findings, _, err := vuln.FindingsFor(ctx, vuln.NewMatcher(s), inv.Packages)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ pkg, id, fixed string }
	want := map[key]bool{}
	for _, p := range inv.Packages {
		origin := p.SourceName
		if _, err := os.Stat(testenv.SharedData(t, "alpine", "vuln-list-alpine-3.10")); err != nil {
			t.Fatal(err)
		}
		if origin != "openssl" && origin != "musl" && origin != "busybox" && origin != "apk-tools" {
			continue
		}
		for fixed, ids := range secfixes(t, origin) {
			v, err := semantic.Parse(p.Version, "Alpine")
			if err != nil {
				t.Fatal(err)
			}
			if c, _ := v.CompareStr(fixed); c < 0 && fixed != "0" {
				for _, id := range ids {
					want[key{p.Name, id, ""}] = true
				}
			}
		}
	}
	got := map[key]bool{}
	seenOrigins := map[string]bool{}
	for _, f := range findings {
		got[key{f.Package.Name, f.ID, ""}] = true
		seenOrigins[f.Package.SourceName] = true
		if f.FixedVersion == "" {
			t.Errorf("%s %s: no fixed version", f.Package.Name, f.ID)
		}
	}
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("%d findings, the data implies %d", len(got), len(want))
	}
	for k := range want {
		if !got[k] {
			t.Errorf("missing %v", k)
		}
	}
	for _, o := range []string{"openssl", "musl", "busybox", "apk-tools"} {
		if !seenOrigins[o] {
			t.Errorf("no finding for %s", o)
		}
	}
}

func alpineInventory(t *testing.T) *sbom.Inventory {
	t.Helper()
	return inventoryOf(t, "docker-archive:"+testenv.SharedData(t, "images", "alpine-310.tar.gz"))
}

func TestAliasesMergeAcrossDatabases(t *testing.T) {
	s := newStore(t)
	importPath(t, s, "ghsa", testenv.SharedData(t, "osv", "ghsa"))
	// A hand-made second record of the same vulnerability, as another
	// database would publish it (labelled: not real data).
	dir := t.TempDir()
	handMade := `{"id":"HANDMADE-2021-1","modified":"2024-01-01T00:00:00Z","aliases":["CVE-2021-44228"],
"summary":"hand-made duplicate for a test","affected":[{"package":{"ecosystem":"Maven","name":"org.apache.logging.log4j:log4j-core"},
"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.0"},{"fixed":"2.15.0"}]}]}]}`
	os.WriteFile(filepath.Join(dir, "handmade.json"), []byte(handMade), 0o644)
	importPath(t, s, "hand-made", dir)
	pkg := sbom.Package{Type: "maven", Namespace: "org.apache.logging.log4j", Name: "log4j-core", Version: "2.14.1", Ecosystem: "Maven"}
	fs, _, err := vuln.FindingsFor(ctx, vuln.NewMatcher(s), []sbom.Package{pkg})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].ID != "CVE-2021-44228" || len(fs[0].Advisories) != 2 || fs[0].Severity != vuln.SeverityCritical {
		t.Fatalf("findings = %+v, want one CVE-2021-44228 merging both records", fs)
	}
	if fs[0].FixedVersion == "" {
		t.Fatal("no fixed version")
	}
}

func TestWithdrawnReportedApart(t *testing.T) {
	s := newStore(t)
	importPath(t, s, "golang-vulndb", testenv.SharedData(t, "osv", "go", "golang-vulndb-data-osv.tar.gz"))
	// GO-2022-0617 is withdrawn in the data and names k8s.io/kubernetes
	// from version 0 on.
	a, err := s.Advisory(ctx, "GO-2022-0617")
	if err != nil {
		t.Fatal(err)
	}
	if a.Withdrawn.IsZero() {
		t.Fatal("GO-2022-0617 is withdrawn in the data")
	}
	pkg := sbom.Package{Type: "golang", Name: a.Affected[0].Name, Version: "1.0.0", Ecosystem: "Go"}
	fs, wd, err := vuln.FindingsFor(ctx, vuln.NewMatcher(s), []sbom.Package{pkg})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		for _, id := range f.Advisories {
			if id == "GO-2022-0617" {
				t.Fatal("withdrawn advisory reported as a finding")
			}
		}
	}
	found := false
	for _, f := range wd {
		for _, id := range f.Advisories {
			found = found || id == "GO-2022-0617"
		}
	}
	if !found {
		t.Fatal("withdrawn advisory not reported apart")
	}
}

func TestSeverityFromGHSA(t *testing.T) {
	// Each GHSA record states its severity and carries a CVSS vector:
	// socle's score of the vector must rate the same.
	for _, f := range []string{"GHSA-j8r2-6x86-q33q.json", "GHSA-jfh8-c2jp-5v3q.json", "GHSA-p6mc-m468-83gw.json", "GHSA-xvch-5gv4-984h.json"} {
		b := testenv.ReadShared(t, "osv", "ghsa", f)
		v, err := vuln.ParseOSV(b)
		if err != nil {
			t.Fatal(err)
		}
		a, err := vuln.ToAdvisory(v, "ghsa")
		if err != nil {
			t.Fatal(err)
		}
		var raw struct {
			DB struct {
				Severity string `json:"severity"`
			} `json:"database_specific"`
		}
		json.Unmarshal(b, &raw)
		if a.Severity != vuln.NormalizeSeverity(raw.DB.Severity) || a.Score == 0 {
			t.Errorf("%s: severity %s (score %.1f), the record says %s", f, a.Severity, a.Score, raw.DB.Severity)
		}
	}
}

func TestParseOSVErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not json", `{`, "parsing OSV JSON"},
		{"no id", `{"modified":"2024-01-01T00:00:00Z"}`, "invalid id"},
		{"bad id", `{"id":"../../etc"}`, "invalid id"},
		{"no ecosystem", `{"id":"X-1","affected":[{"package":{"name":"a"}}]}`, "no ecosystem"},
		{"empty range", `{"id":"X-1","affected":[{"package":{"ecosystem":"Go","name":"a"},"ranges":[{"type":"SEMVER"}]}]}`, "no events"},
		{"bad time", `{"id":"X-1","modified":"yesterday"}`, "parsing OSV JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := vuln.ParseOSV([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestImportKeepsGoodRecords: a bad record in a directory is reported
// with its file name, and the good ones are still imported.
func TestImportKeepsGoodRecords(t *testing.T) {
	dir := t.TempDir()
	good := testenv.ReadShared(t, "osv", "ghsa", "GHSA-j8r2-6x86-q33q.json")
	os.WriteFile(filepath.Join(dir, "good.json"), good, 0o644)
	os.WriteFile(filepath.Join(dir, "bad.json"), []byte(`{"id": 42}`), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o644)
	s := newStore(t)
	st := importPath(t, s, "mixed", dir)
	if st.Records != 1 || st.Skipped != 1 || len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "bad.json") {
		t.Fatalf("stats = %+v", st)
	}
	if _, err := s.Advisory(ctx, "GHSA-j8r2-6x86-q33q"); err != nil {
		t.Fatal(err)
	}
}
