package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/socle-dev/socle/internal/scan"
)

// JUnit XML, as CI systems (Jenkins, GitLab, GitHub test reporters) read
// it: one test suite for the image, one test case per package, failed
// by each of its findings.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Name    string       `xml:"name,attr"`
	Tests   int          `xml:"tests,attr"`
	Failure int          `xml:"failures,attr"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string         `xml:"name,attr"`
	Classname string         `xml:"classname,attr"`
	Failures  []junitFailure `xml:"failure"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func writeJUnit(w io.Writer, res *scan.Result) error {
	image := res.Ref
	if res.Repository != "" {
		image = res.Repository
		if res.Tag != "" {
			image += ":" + res.Tag
		}
	}
	suite := junitSuite{Name: image + "@" + res.Inventory.Digest}
	byPkg := map[string]int{}
	for _, p := range res.Inventory.Packages {
		key := p.Name + "@" + p.Version
		if _, seen := byPkg[key]; seen {
			continue
		}
		byPkg[key] = len(suite.Cases)
		suite.Cases = append(suite.Cases, junitCase{Name: key, Classname: p.Type + ":" + p.Path})
	}
	for _, f := range res.Findings {
		key := f.Package.Name + "@" + f.Package.Version
		i, ok := byPkg[key]
		if !ok {
			i = len(suite.Cases)
			byPkg[key] = i
			suite.Cases = append(suite.Cases, junitCase{Name: key, Classname: f.Package.Type})
		}
		fixed := "no fixed version yet"
		if f.FixedVersion != "" {
			fixed = "fixed in " + f.FixedVersion
		}
		suite.Cases[i].Failures = append(suite.Cases[i].Failures, junitFailure{
			Type:    f.Severity,
			Message: fmt.Sprintf("%s (%s): %s", f.ID, f.Severity, fixed),
			Text:    strings.TrimSpace(f.Summary + "\nadvisories: " + strings.Join(f.Advisories, ", ")),
		})
	}
	for _, c := range suite.Cases {
		suite.Tests++
		if len(c.Failures) > 0 {
			suite.Failures++
		}
	}
	out := junitSuites{Name: "socle scan", Tests: suite.Tests, Failure: suite.Failures, Suites: []junitSuite{suite}}
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
