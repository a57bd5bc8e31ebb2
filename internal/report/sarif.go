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

// SARIF 2.1.0 objects, as much of them as socle writes.
type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	Version        string      `json:"version,omitempty"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name,omitempty"`
	ShortDescription     sarifText         `json:"shortDescription"`
	FullDescription      sarifText         `json:"fullDescription"`
	Help                 sarifHelp         `json:"help"`
	DefaultConfiguration sarifRuleConfig   `json:"defaultConfiguration"`
	Properties           sarifRuleProperty `json:"properties"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifHelp struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown"`
}

type sarifRuleConfig struct {
	Level string `json:"level"`
}

type sarifRuleProperty struct {
	SecuritySeverity string   `json:"security-severity"`
	Tags             []string `json:"tags"`
}

type sarifResult struct {
	RuleID    string          `json:"ruleId"`
	RuleIndex int             `json:"ruleIndex"`
	Level     string          `json:"level"`
	Message   sarifText       `json:"message"`
	Locations []sarifLocation `json:"locations"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
	Message          sarifText     `json:"message"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn"`
	EndLine     int `json:"endLine"`
	EndColumn   int `json:"endColumn"`
}

// sarifLevel maps a severity to a SARIF level, and securitySeverity to
// the score code-scanning services sort by.
func sarifLevel(sev string) (level, securitySeverity string) {
	switch sev {
	case vuln.SeverityCritical:
		return "error", "9.5"
	case vuln.SeverityHigh:
		return "error", "8.0"
	case vuln.SeverityMedium:
		return "warning", "5.5"
	case vuln.SeverityLow:
		return "note", "2.0"
	}
	return "note", "0.0"
}

func writeSARIF(w io.Writer, res *scan.Result) error {
	ruleIndex := map[string]int{}
	var rules []sarifRule
	var results []sarifResult
	for _, f := range res.Findings {
		i, ok := ruleIndex[f.ID]
		if !ok {
			level, sec := sarifLevel(f.Severity)
			if f.Score > 0 {
				sec = fmt.Sprintf("%.1f", f.Score)
			}
			summary := f.Summary
			if summary == "" {
				summary = f.ID
			}
			i = len(rules)
			ruleIndex[f.ID] = i
			rules = append(rules, sarifRule{
				ID:                   f.ID,
				Name:                 "Vulnerability",
				ShortDescription:     sarifText{Text: f.ID + ": " + summary},
				FullDescription:      sarifText{Text: summary},
				Help:                 sarifHelp{Text: helpText(f), Markdown: helpMarkdown(f)},
				DefaultConfiguration: sarifRuleConfig{Level: level},
				Properties:           sarifRuleProperty{SecuritySeverity: sec, Tags: []string{"vulnerability", "security", f.Severity}},
			})
		}
		level, _ := sarifLevel(f.Severity)
		fixed := "no fixed version is known"
		if f.FixedVersion != "" {
			fixed = "fixed in " + f.FixedVersion
		}
		msg := fmt.Sprintf("Package %s %s is affected by %s (%s, %s). Layer %d %s.",
			f.Package.Name, f.Package.Version, f.ID, f.Severity, fixed, f.Package.LayerIndex, f.Package.Layer)
		results = append(results, sarifResult{
			RuleID: f.ID, RuleIndex: i, Level: level, Message: sarifText{Text: msg},
			Locations: []sarifLocation{{
				PhysicalLocation: sarifPhysical{
					ArtifactLocation: sarifArtifact{URI: uriPath(f.Package.Path)},
					Region:           sarifRegion{StartLine: 1, StartColumn: 1, EndLine: 1, EndColumn: 1},
				},
				Message: sarifText{Text: res.Ref + ": " + f.Package.Path},
			}},
		})
	}
	if rules == nil {
		rules = []sarifRule{}
	}
	if results == nil {
		results = []sarifResult{}
	}
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
		Runs: []sarifRun{{
			Tool: sarifTool{Driver: sarifDriver{
				Name: sbom.ToolName, Version: sbom.ToolVersion,
				InformationURI: "https://github.com/socle-dev/socle", Rules: rules,
			}},
			Results: results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

func uriPath(p string) string {
	if p == "" {
		return "image"
	}
	return strings.ReplaceAll(p, " ", "%20")
}

func helpText(f vuln.Finding) string {
	aliases := append([]string(nil), f.Aliases...)
	sort.Strings(aliases)
	s := fmt.Sprintf("Vulnerability %s\nSeverity: %s\nPackage: %s %s\nFixed version: %s",
		f.ID, f.Severity, f.Package.Name, f.Package.Version, orDash(f.FixedVersion))
	if len(aliases) > 0 {
		s += "\nAliases: " + strings.Join(aliases, ", ")
	}
	return s
}

func helpMarkdown(f vuln.Finding) string {
	return fmt.Sprintf("**Vulnerability %s**\n\n| Severity | Package | Version | Fixed version |\n| --- | --- | --- | --- |\n| %s | %s | %s | %s |",
		f.ID, f.Severity, f.Package.Name, f.Package.Version, orDash(f.FixedVersion))
}
