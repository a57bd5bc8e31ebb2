package report

import (
	"io"
	"sort"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/vuln"
)

// writeCycloneDX writes the inventory as a CycloneDX BOM with one
// vulnerability entry per finding ID, affecting each component it was
// found in.
func writeCycloneDX(w io.Writer, res *scan.Result) error {
	bom := sbom.CycloneDX(res.Inventory, imageName(res))
	refs := map[string]string{}
	for i := range res.Inventory.Packages {
		p := &res.Inventory.Packages[i]
		refs[p.PURL+"\x00"+p.Path+"\x00"+p.Name+"\x00"+p.Version] = sbom.ComponentRef(i, p)
	}
	byID := map[string]*cdx.Vulnerability{}
	var order []string
	add := func(f vuln.Finding, analysis *cdx.VulnerabilityAnalysis) {
		ref := refs[f.Package.PURL+"\x00"+f.Package.Path+"\x00"+f.Package.Name+"\x00"+f.Package.Version]
		v, ok := byID[f.ID]
		if !ok {
			v = &cdx.Vulnerability{
				BOMRef:      "vuln:" + f.ID,
				ID:          f.ID,
				Description: f.Summary,
				Analysis:    analysis,
			}
			if !f.Published.IsZero() {
				v.Published = f.Published.UTC().Format("2006-01-02T15:04:05Z")
			}
			rating := cdx.VulnerabilityRating{Severity: cdxSeverity(f.Severity)}
			if f.Score > 0 {
				s := f.Score
				rating.Score = &s
				rating.Method = cdx.ScoringMethodCVSSv31
			}
			v.Ratings = &[]cdx.VulnerabilityRating{rating}
			if len(f.Aliases) > 0 {
				var refsList []cdx.VulnerabilityReference
				for _, a := range f.Aliases {
					refsList = append(refsList, cdx.VulnerabilityReference{ID: a, Source: &cdx.Source{Name: sourceOf(a)}})
				}
				v.References = &refsList
			}
			if f.FixedVersion != "" {
				v.Recommendation = "Upgrade " + f.Package.Name + " to " + f.FixedVersion + " or later."
			}
			v.Affects = &[]cdx.Affects{}
			byID[f.ID] = v
			order = append(order, f.ID)
		}
		if ref != "" {
			st := cdx.VulnerabilityStatusAffected
			if analysis != nil {
				st = cdx.VulnerabilityStatusNotAffected
			}
			*v.Affects = append(*v.Affects, cdx.Affects{Ref: ref, Range: &[]cdx.AffectedVersions{{Version: f.Package.Version, Status: st}}})
		}
	}
	for _, f := range res.Findings {
		add(f, nil)
	}
	for _, f := range res.Suppressed {
		add(f, &cdx.VulnerabilityAnalysis{State: cdx.IASNotAffected, Detail: f.Suppressed})
	}
	sort.Strings(order)
	vulns := make([]cdx.Vulnerability, 0, len(order))
	for _, id := range order {
		vulns = append(vulns, *byID[id])
	}
	bom.Vulnerabilities = &vulns
	return sbom.WriteCycloneDX(w, bom)
}

func cdxSeverity(s string) cdx.Severity {
	switch s {
	case vuln.SeverityCritical:
		return cdx.SeverityCritical
	case vuln.SeverityHigh:
		return cdx.SeverityHigh
	case vuln.SeverityMedium:
		return cdx.SeverityMedium
	case vuln.SeverityLow:
		return cdx.SeverityLow
	}
	return cdx.SeverityUnknown
}

// sourceOf names the database an identifier comes from.
func sourceOf(id string) string {
	for _, p := range []struct{ prefix, name string }{
		{"CVE-", "NVD"}, {"GHSA-", "GitHub Advisory Database"}, {"GO-", "Go Vulnerability Database"},
		{"PYSEC-", "PyPA Advisory Database"}, {"DSA-", "Debian"}, {"DLA-", "Debian"}, {"DEBIAN-", "Debian"},
		{"ALPINE-", "Alpine secdb"},
	} {
		if len(id) > len(p.prefix) && id[:len(p.prefix)] == p.prefix {
			return p.name
		}
	}
	return "OSV"
}
