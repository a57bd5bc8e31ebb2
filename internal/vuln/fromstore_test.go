package vuln

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
)

// fromStoreRows is hand-made: two binaries of one source package and a
// third package, their rows interleaved; on the first binary a Debian
// record and a CVE record name one vulnerability (merged into one
// finding), another CVE stands alone.
func fromStoreRows() []store.Finding {
	t0 := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	bin := func(name, path string) store.ImagePackage {
		return store.ImagePackage{Key: store.PackageKey{Ecosystem: "Debian:12", Name: "openssl", Version: "3.0.1"},
			Name: name, Version: "3.0.1", Type: "deb", PURL: "pkg:deb/debian/" + name + "@3.0.1", Path: path, Layer: "sha256:l0"}
	}
	zlib := store.ImagePackage{Key: store.PackageKey{Ecosystem: "Debian:12", Name: "zlib", Version: "1.2"},
		Name: "zlib1g", Version: "1.2", Type: "deb", Path: "var/lib/dpkg/status", LayerIndex: 1}
	row := func(p store.ImagePackage, id string, aliases []string, sev string, fixed string) store.Finding {
		return store.Finding{AdvisoryID: id, Aliases: aliases, Severity: sev, FixedVersion: fixed, Package: p,
			Summary: "summary of " + id, Published: t0, RatingFacts: store.RatingFacts{Ratings: []store.Rating{{ID: id, Source: "nvd", Severity: sev}}}}
	}
	ssl, crypto := bin("libssl3", "var/lib/dpkg/status"), bin("openssl", "var/lib/dpkg/status")
	return []store.Finding{
		row(ssl, "DSA-5000-1", []string{"CVE-2024-1"}, "HIGH", "3.0.2"),
		row(zlib, "CVE-2024-9", nil, "LOW", ""),
		row(crypto, "CVE-2024-1", nil, "MEDIUM", "3.0.3"),
		row(ssl, "CVE-2024-1", []string{"DSA-5000-1"}, "MEDIUM", "3.0.3"),
		row(ssl, "CVE-2024-2", nil, "CRITICAL", ""),
	}
}

// TestFromStoreMergesByBinaryAndAlias compares FromStore with the
// straightforward grouping: the rows of each binary package merged by
// MergeAliases, then sorted.
func TestFromStoreMergesByBinaryAndAlias(t *testing.T) {
	rows := fromStoreRows()
	var want []Finding
	done := map[string]bool{}
	for _, r := range rows {
		k := fmt.Sprint(r.Package.Type, r.Package.Name, r.Package.Version, r.Package.Path)
		if done[k] {
			continue
		}
		done[k] = true
		var ms []Match
		for _, o := range rows {
			if fmt.Sprint(o.Package.Type, o.Package.Name, o.Package.Version, o.Package.Path) == k {
				ms = append(ms, Match{AffectedRow: store.AffectedRow{AdvisoryID: o.AdvisoryID, Aliases: o.Aliases, Summary: o.Summary,
					Severity: o.Severity, Score: o.Score, Published: o.Published, RatingFacts: o.RatingFacts}, FixedVersion: o.FixedVersion, Severity: o.Severity})
			}
		}
		p := r.Package
		pkg := sbom.Package{Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL, Path: p.Path, Layer: p.Layer,
			LayerIndex: p.LayerIndex, Ecosystem: p.Key.Ecosystem}
		if p.Key.Name != p.Name {
			pkg.SourceName = p.Key.Name
		}
		want = append(want, MergeAliases(pkg, p.Key, ms)...)
	}
	SortFindings(want)
	got := FromStore(rows)
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		t.Fatalf("FromStore:\n%s\nwant:\n%s", a, b)
	}
	// The Debian record and the CVE are one finding of libssl3, by its CVE.
	var merged *Finding
	for i := range got {
		if got[i].Package.Name == "libssl3" && got[i].ID == "CVE-2024-1" {
			merged = &got[i]
		}
	}
	if len(got) != 4 || merged == nil || len(merged.Advisories) != 2 || merged.FixedVersion != "3.0.3" || merged.Severity != "HIGH" {
		t.Fatalf("findings %+v", got)
	}
}

func BenchmarkFromStore(b *testing.B) {
	base := fromStoreRows()
	var rows []store.Finding
	for i := range 60 { // 300 rows, 180 binaries
		for _, r := range base {
			r.Package.Path = fmt.Sprintf("opt/%d/status", i)
			rows = append(rows, r)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		FromStore(rows)
	}
}

// TestSortFindingsAsStableSort compares SortFindings and SortByRisk with
// stable sorts of the same orders on random findings (hand-made: few
// names, versions, paths, severities, IDs and risks, so that ties are
// common; Summary tells equal findings apart, so stability is checked).
func TestSortFindingsAsStableSort(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	pick := func(vs ...string) string { return vs[rnd.IntN(len(vs))] }
	less := func(a, b *Finding) bool {
		if a.Package.Name != b.Package.Name {
			return a.Package.Name < b.Package.Name
		}
		if a.Package.Version != b.Package.Version {
			return a.Package.Version < b.Package.Version
		}
		if a.Package.Path != b.Package.Path {
			return a.Package.Path < b.Package.Path
		}
		if ra, rb := SeverityRank(a.Severity), SeverityRank(b.Severity); ra != rb {
			return ra > rb
		}
		return a.ID < b.ID
	}
	same := func(t *testing.T, what string, got, want []Finding) {
		t.Helper()
		for i := range got {
			if got[i].Summary != want[i].Summary {
				t.Fatalf("%s, %d findings: position %d holds %+v, want %+v", what, len(got), i, got[i], want[i])
			}
		}
	}
	for n := range 200 {
		fs := make([]Finding, n%60)
		for i := range fs {
			fs[i] = Finding{ID: pick("CVE-1", "CVE-2", "GHSA-x"), Severity: pick("LOW", "HIGH", "CRITICAL", "", "UNKNOWN"),
				Package: sbom.Package{Name: pick("a", "b", "c"), Version: pick("1", "2"), Path: pick("p", "q")},
				Summary: fmt.Sprint(i), Risk: float64(rnd.IntN(4)) / 2}
		}
		want := slices.Clone(fs)
		sort.SliceStable(want, func(i, j int) bool { return less(&want[i], &want[j]) })
		byRisk := slices.Clone(want)
		sort.SliceStable(byRisk, func(i, j int) bool { return byRisk[i].Risk > byRisk[j].Risk })
		got := slices.Clone(fs)
		SortFindings(got)
		same(t, "SortFindings", got, want)
		got = slices.Clone(fs)
		SortByRisk(got)
		same(t, "SortByRisk", got, byRisk)
	}
}
