package testenv

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// DebianChangelogPair is one row of the shared data's derived table:
// a CVE named in a Debian changelog, and the source version that fixes it.
type DebianChangelogPair struct {
	Source    string
	Installed string
	CVE       string
	Fixed     string
	Status    string
}

// DebianChangelogPairs reads debian/derived/bookworm-minbase-changelog-cves.tsv.
// Its rows come from real Debian changelogs; the table itself is derived
// for this project, and so is every advisory made from it.
func DebianChangelogPairs(path string) ([]DebianChangelogPair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []DebianChangelogPair
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "source\t") || line == "" {
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) != 5 {
			return nil, fmt.Errorf("%s: bad row %q", path, line)
		}
		out = append(out, DebianChangelogPair{Source: c[0], Installed: c[1], CVE: c[2], Fixed: c[3], Status: c[4]})
	}
	return out, sc.Err()
}

// DerivedDebianOSV turns changelog pairs into OSV records for Debian:12,
// one per CVE, affected below the fixed version. The records are
// labelled DERIVED in their ID and summary: they are not Debian security
// tracker data.
func DerivedDebianOSV(pairs []DebianChangelogPair) [][]byte {
	type aff struct{ source, fixed string }
	byCVE := map[string][]aff{}
	var order []string
	for _, p := range pairs {
		if p.Status != "affected_fix_available" && p.Status != "fixed_in_installed" {
			continue
		}
		if _, ok := byCVE[p.CVE]; !ok {
			order = append(order, p.CVE)
		}
		byCVE[p.CVE] = append(byCVE[p.CVE], aff{p.Source, p.Fixed})
	}
	var out [][]byte
	for _, cve := range order {
		rec := map[string]any{
			"schema_version": "1.6.0",
			"id":             "SOCLE-DERIVED-DEBIAN-" + cve,
			"modified":       "2026-11-22T00:00:00Z",
			"published":      "2026-11-22T00:00:00Z",
			"aliases":        []string{cve},
			"summary":        "DERIVED from Debian changelogs for socle's tests (not security tracker data)",
		}
		var affected []any
		for _, a := range byCVE[cve] {
			affected = append(affected, map[string]any{
				"package": map[string]string{"ecosystem": "Debian:12", "name": a.source},
				"ranges": []any{map[string]any{"type": "ECOSYSTEM", "events": []any{
					map[string]string{"introduced": "0"}, map[string]string{"fixed": a.fixed},
				}}},
			})
		}
		rec["affected"] = affected
		b, _ := json.Marshal(rec)
		out = append(out, b)
	}
	return out
}
