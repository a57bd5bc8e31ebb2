package check

import (
	"fmt"
	"sort"
	"strings"
)

// Severities, from most to least severe (those of socle scan).
const (
	Critical = "CRITICAL"
	High     = "HIGH"
	Medium   = "MEDIUM"
	Low      = "LOW"
)

// Rule is one check.
type Rule struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	// Why is the one-line reason the rule exists; Fix how to satisfy it.
	Why string `json:"why"`
	Fix string `json:"fix"`
	// Sets are the rule sets it belongs to ("baseline", "restricted",
	// "hardening", "dockerfile", "image", "schema").
	Sets []string `json:"sets"`
}

// Finding is one rule failed by one object.
type Finding struct {
	File string `json:"file"`
	// Line is the line of the object (or instruction) in File, 1-based,
	// 0 when unknown.
	Line int `json:"line,omitempty"`
	// Object names what failed: "Deployment/web", "FROM golang:1.26",
	// the image reference.
	Object   string `json:"object"`
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Why      string `json:"why"`
	Fix      string `json:"fix"`
	// Layer is the layer that brought what an image finding is about,
	// and Base the base image that layer belongs to, when it is one.
	Layer string `json:"layer,omitempty"`
	Base  string `json:"base,omitempty"`
}

// Report is the outcome of a check run.
type Report struct {
	Findings []Finding `json:"findings"`
	// Ignored are findings an ignore comment or option suppressed, with
	// the reason.
	Ignored []Ignored `json:"ignored,omitempty"`
	// Checked counts the objects checked, by kind of input.
	Checked map[string]int `json:"checked"`
	// Images are the layer reports of the images checked, by reference.
	Images map[string]LayerReport `json:"images,omitempty"`
}

// Ignored is a suppressed finding.
type Ignored struct {
	Finding
	Reason string `json:"reason"`
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

func (r *Report) count(kind string) {
	if r.Checked == nil {
		r.Checked = map[string]int{}
	}
	r.Checked[kind]++
}

// Sort orders findings by file, line, severity and rule.
func (r *Report) Sort() {
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if SeverityRank(a.Severity) != SeverityRank(b.Severity) {
			return SeverityRank(a.Severity) > SeverityRank(b.Severity)
		}
		return a.Rule < b.Rule
	})
}

// SeverityRank orders severities: higher is more severe.
func SeverityRank(s string) int {
	switch s {
	case Critical:
		return 4
	case High:
		return 3
	case Medium:
		return 2
	case Low:
		return 1
	}
	return 0
}

// Filter keeps the findings of the given severities (all when empty).
func (r *Report) Filter(severities map[string]bool) {
	if len(severities) == 0 {
		return
	}
	kept := r.Findings[:0]
	for _, f := range r.Findings {
		if severities[f.Severity] {
			kept = append(kept, f)
		}
	}
	r.Findings = kept
}

// finding makes a finding of rule id.
func finding(id, file string, line int, object, format string, args ...any) Finding {
	r, ok := rules[id]
	if !ok {
		panic("check: unknown rule " + id)
	}
	return Finding{File: file, Line: line, Object: object, Rule: id, Severity: r.Severity,
		Message: fmt.Sprintf(format, args...), Why: r.Why, Fix: r.Fix}
}

// Rules returns every rule, by ID.
func Rules() []Rule {
	out := make([]Rule, 0, len(rules))
	for _, r := range rules {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// RulesOf returns the IDs of the rules in the named sets ("restricted"
// includes "baseline").
func RulesOf(sets []string) (map[string]bool, error) {
	want := map[string]bool{}
	for _, s := range sets {
		s = strings.TrimSpace(s)
		if s == "restricted" {
			want["baseline"] = true
		}
		want[s] = true
	}
	out := map[string]bool{}
	for _, r := range rules {
		for _, s := range r.Sets {
			if want[s] {
				out[r.ID] = true
			}
		}
	}
	for s := range want {
		if !knownSet(s) {
			return nil, fmt.Errorf("unknown rule set %q (want some of %s)", s, strings.Join(ruleSets, ", "))
		}
	}
	return out, nil
}

var ruleSets = []string{"baseline", "restricted", "hardening", "dockerfile", "image", "schema"}

func knownSet(s string) bool {
	for _, x := range ruleSets {
		if x == s {
			return true
		}
	}
	return false
}
