package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/vuln"
)

// Formats lists the output formats of socle scan.
var Formats = []string{"table", "json", "sarif", "junit", "cyclonedx", "spdx"}

// Filter narrows the findings a report shows.
type Filter struct {
	// Severities keeps only these severities; empty keeps all.
	Severities map[string]bool
	// IgnoreUnfixed drops findings with no fixed version.
	IgnoreUnfixed bool
}

// Apply returns the findings the filter keeps.
func (f Filter) Apply(fs []vuln.Finding) []vuln.Finding {
	var out []vuln.Finding
	for _, x := range fs {
		if len(f.Severities) > 0 && !f.Severities[x.Severity] {
			continue
		}
		if f.IgnoreUnfixed && x.FixedVersion == "" {
			continue
		}
		out = append(out, x)
	}
	return out
}

// AdvisoryNote tells the reader which advisories the result is based on.
type AdvisoryNote struct {
	// Lines are shown under the table, such as "Go: 4291 records (golang/vulndb)".
	Lines []string
	// Warning is shown when the data is known to be incomplete.
	Warning string
}

// Write writes res in format. The findings in res are the ones to show.
func Write(w io.Writer, format string, res *scan.Result, note AdvisoryNote) error {
	switch format {
	case "table", "":
		return writeTable(w, res, note)
	case "json":
		return writeJSON(w, res, note)
	case "sarif":
		return writeSARIF(w, res)
	case "junit":
		return writeJUnit(w, res)
	case "cyclonedx":
		return writeCycloneDX(w, res)
	case "spdx":
		return sbom.WriteSPDX(w, sbom.SPDX(res.Inventory, imageName(res)))
	}
	return fmt.Errorf("unknown output format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

func imageName(res *scan.Result) sbom.ImageName {
	return sbom.ImageName{Repository: res.Repository, Tag: res.Tag}
}

// jsonReport is the JSON output: stable field names, documented in
// docs/output.md.
type jsonReport struct {
	SchemaVersion int              `json:"schema_version"`
	Ref           string           `json:"ref"`
	Repository    string           `json:"repository,omitempty"`
	Tag           string           `json:"tag,omitempty"`
	Digest        string           `json:"digest"`
	Platform      string           `json:"platform,omitempty"`
	OS            sbom.OS          `json:"os"`
	Layers        []sbom.LayerInfo `json:"layers"`
	ReusedLayers  int              `json:"reused_layers"`
	Packages      int              `json:"packages"`
	Findings      []vuln.Finding   `json:"findings"`
	Withdrawn     []vuln.Finding   `json:"withdrawn"`
	Suppressed    []vuln.Finding   `json:"suppressed"`
	Summary       map[string]int   `json:"summary"`
	Advisories    []string         `json:"advisories,omitempty"`
	Warning       string           `json:"warning,omitempty"`
}

func writeJSON(w io.Writer, res *scan.Result, note AdvisoryNote) error {
	r := jsonReport{
		SchemaVersion: 1,
		Ref:           res.Ref,
		Repository:    res.Repository,
		Tag:           res.Tag,
		Digest:        res.Inventory.Digest,
		Platform:      res.Inventory.Platform,
		OS:            res.Inventory.OS,
		Layers:        res.Inventory.Layers,
		ReusedLayers:  res.Inventory.ReusedLayers,
		Packages:      len(res.Inventory.Packages),
		Findings:      nonNil(res.Findings),
		Withdrawn:     nonNil(res.Withdrawn),
		Suppressed:    nonNil(res.Suppressed),
		Summary:       Summary(res.Findings),
		Advisories:    note.Lines,
		Warning:       note.Warning,
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func nonNil(fs []vuln.Finding) []vuln.Finding {
	if fs == nil {
		return []vuln.Finding{}
	}
	return fs
}

// Summary counts findings by severity.
func Summary(fs []vuln.Finding) map[string]int {
	m := map[string]int{}
	for _, s := range vuln.Severities {
		m[s] = 0
	}
	for _, f := range fs {
		m[f.Severity]++
	}
	return m
}

// SummaryLine renders "Total: 5 (CRITICAL: 1, HIGH: 2, ...)".
func SummaryLine(fs []vuln.Finding) string {
	m := Summary(fs)
	parts := make([]string, 0, len(vuln.Severities))
	for _, s := range vuln.Severities {
		parts = append(parts, fmt.Sprintf("%s: %d", s, m[s]))
	}
	return fmt.Sprintf("Total: %d (%s)", len(fs), strings.Join(parts, ", "))
}

// packageGroup is the findings of one installed package.
type packageGroup struct {
	pkg      sbom.Package
	findings []vuln.Finding
}

func groupByPackage(fs []vuln.Finding) []packageGroup {
	idx := map[string]int{}
	var out []packageGroup
	for _, f := range fs {
		k := f.Package.Type + "\x00" + f.Package.Name + "\x00" + f.Package.Version + "\x00" + f.Package.Path
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, packageGroup{pkg: f.Package})
		}
		out[i].findings = append(out[i].findings, f)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		ra, rb := maxRank(a.findings), maxRank(b.findings)
		if ra != rb {
			return ra > rb
		}
		return a.pkg.Name < b.pkg.Name
	})
	return out
}

func maxRank(fs []vuln.Finding) int {
	r := 0
	for _, f := range fs {
		if x := vuln.SeverityRank(f.Severity); x > r {
			r = x
		}
	}
	return r
}

// ExitCode returns code when any finding remains after the filter, the
// way trivy's --exit-code and grype's --fail-on gate a pipeline.
func ExitCode(fs []vuln.Finding, code int) int {
	if code != 0 && len(fs) > 0 {
		return code
	}
	return 0
}
