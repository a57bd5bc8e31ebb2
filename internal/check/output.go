package check

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Formats are the output formats of Write.
var Formats = []string{"table", "json", "sarif", "junit"}

// Write renders a report.
func Write(w io.Writer, format string, r *Report) error {
	switch format {
	case "table":
		return writeTable(w, r)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if r.Findings == nil {
			r.Findings = []Finding{}
		}
		return enc.Encode(r)
	case "sarif":
		return writeSARIF(w, r)
	case "junit":
		return writeJUnit(w, r)
	}
	return fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

func writeTable(w io.Writer, r *Report) error {
	if len(r.Findings) == 0 {
		fmt.Fprintf(w, "No finding (%s).\n", checkedLine(r))
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tLINE\tOBJECT\tRULE\tSEVERITY\tMESSAGE")
	for _, f := range r.Findings {
		line := "-"
		if f.Line > 0 {
			line = fmt.Sprint(f.Line)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.File, line, f.Object, f.Rule, f.Severity, f.Message)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	counts := map[string]int{}
	for _, f := range r.Findings {
		counts[f.Severity]++
	}
	fmt.Fprintf(w, "\n%d findings (CRITICAL: %d, HIGH: %d, MEDIUM: %d, LOW: %d); %s", len(r.Findings),
		counts[Critical], counts[High], counts[Medium], counts[Low], checkedLine(r))
	if len(r.Ignored) > 0 {
		fmt.Fprintf(w, "; %d ignored", len(r.Ignored))
	}
	fmt.Fprintln(w)
	return nil
}

func checkedLine(r *Report) string {
	var parts []string
	keys := make([]string, 0, len(r.Checked))
	for k := range r.Checked {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %ss checked", r.Checked[k], k))
	}
	if len(parts) == 0 {
		return "nothing checked"
	}
	return strings.Join(parts, ", ")
}

func sarifLevel(sev string) string {
	switch sev {
	case Critical, High:
		return "error"
	case Medium:
		return "warning"
	}
	return "note"
}

func writeSARIF(w io.Writer, r *Report) error {
	type msg struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID                   string            `json:"id"`
		ShortDescription     msg               `json:"shortDescription"`
		Help                 msg               `json:"help"`
		DefaultConfiguration map[string]string `json:"defaultConfiguration"`
		Properties           map[string]any    `json:"properties"`
	}
	type region struct {
		StartLine int `json:"startLine"`
	}
	type physical struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region *region `json:"region,omitempty"`
	}
	type location struct {
		PhysicalLocation physical `json:"physicalLocation"`
	}
	type result struct {
		RuleID    string     `json:"ruleId"`
		Level     string     `json:"level"`
		Message   msg        `json:"message"`
		Locations []location `json:"locations"`
	}
	used := map[string]bool{}
	results := []result{}
	for _, f := range r.Findings {
		used[f.Rule] = true
		var loc location
		loc.PhysicalLocation.ArtifactLocation.URI = f.File
		if f.Line > 0 {
			loc.PhysicalLocation.Region = &region{StartLine: f.Line}
		}
		results = append(results, result{RuleID: f.Rule, Level: sarifLevel(f.Severity),
			Message: msg{f.Object + ": " + f.Message}, Locations: []location{loc}})
	}
	ruleList := []rule{}
	for _, rl := range Rules() {
		if used[rl.ID] {
			ruleList = append(ruleList, rule{ID: rl.ID, ShortDescription: msg{rl.Why}, Help: msg{rl.Fix},
				DefaultConfiguration: map[string]string{"level": sarifLevel(rl.Severity)},
				Properties:           map[string]any{"severity": rl.Severity, "tags": rl.Sets}})
		}
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool":    map[string]any{"driver": map[string]any{"name": "socle check", "informationUri": "https://github.com/socle-dev/socle", "rules": ruleList}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

func writeJUnit(w io.Writer, r *Report) error {
	type failure struct {
		Message string `xml:"message,attr"`
		Type    string `xml:"type,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Failure   *failure `xml:"failure,omitempty"`
	}
	type suite struct {
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	type suites struct {
		XMLName  xml.Name `xml:"testsuites"`
		Name     string   `xml:"name,attr"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []suite  `xml:"testsuite"`
	}
	byFile := map[string]*suite{}
	var order []string
	for _, f := range r.Findings {
		s, ok := byFile[f.File]
		if !ok {
			s = &suite{Name: f.File}
			byFile[f.File] = s
			order = append(order, f.File)
		}
		s.Cases = append(s.Cases, testcase{Name: f.Rule + " " + f.Object, Classname: f.File,
			Failure: &failure{Message: f.Message, Type: f.Severity, Text: f.Why + "\nfix: " + f.Fix}})
		s.Tests++
		s.Failures++
	}
	out := suites{Name: "socle check"}
	for _, name := range order {
		out.Suites = append(out.Suites, *byFile[name])
		out.Tests += byFile[name].Tests
		out.Failures += byFile[name].Failures
	}
	if len(out.Suites) == 0 {
		out.Suites = append(out.Suites, suite{Name: "socle check", Tests: 1, Cases: []testcase{{Name: checkedLine(r), Classname: "socle check"}}})
		out.Tests = 1
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// ExitCode is code when any finding remains, else 0 (socle scan's
// --exit-code convention).
func ExitCode(r *Report, code int) int {
	if len(r.Findings) > 0 {
		return code
	}
	return 0
}
