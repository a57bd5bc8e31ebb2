package purl_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/socle-dev/socle/internal/purl"
	"github.com/socle-dev/socle/internal/testenv"
)

type specTest struct {
	Description     string          `json:"description"`
	Group           string          `json:"test_group"`
	Type            string          `json:"test_type"`
	Input           json.RawMessage `json:"input"`
	ExpectedOutput  json.RawMessage `json:"expected_output"`
	ExpectedFailure bool            `json:"expected_failure"`
}

type parts struct {
	Type       string            `json:"type"`
	Namespace  *string           `json:"namespace"`
	Name       string            `json:"name"`
	Version    *string           `json:"version"`
	Qualifiers map[string]string `json:"qualifiers"`
	Subpath    *string           `json:"subpath"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestSpecification runs the purl specification's own tests (shared
// data, from package-url/purl-spec) for every type socle writes: parse,
// build and canonical string. Every required test must pass; the
// recommended ones are counted.
func TestSpecification(t *testing.T) {
	root := testenv.SharedData(t, "sbom-interop", "purl", "tests")
	files, _ := filepath.Glob(filepath.Join(root, "types", "*-test.json"))
	spec, _ := filepath.Glob(filepath.Join(root, "spec", "*.json"))
	files = append(files, spec...)
	if len(files) < 13 {
		t.Fatalf("%d test files", len(files))
	}
	ran, recommendedFailed := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Tests []specTest `json:"tests"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		for _, tc := range doc.Tests {
			ran++
			if msg := runSpec(tc); msg != "" {
				if tc.Group == "required" {
					t.Errorf("%s: %s (%s): %s", filepath.Base(f), tc.Description, tc.Type, msg)
				} else {
					recommendedFailed++
				}
			}
		}
	}
	t.Logf("%d specification tests, %d recommended ones not followed", ran, recommendedFailed)
}

func runSpec(tc specTest) string {
	switch tc.Type {
	case "parse", "validate":
		var in string
		json.Unmarshal(tc.Input, &in)
		u, err := purl.Parse(in)
		if tc.ExpectedFailure {
			if err == nil {
				return "accepted " + in
			}
			return ""
		}
		if err != nil {
			return err.Error()
		}
		if tc.Type == "validate" {
			var want string
			json.Unmarshal(tc.ExpectedOutput, &want)
			if got := u.ToString(); got != want {
				return "canonical " + got + ", want " + want
			}
			return ""
		}
		var want parts
		json.Unmarshal(tc.ExpectedOutput, &want)
		q := u.Qualifiers.Map()
		if u.Type != want.Type || u.Namespace != str(want.Namespace) || u.Name != want.Name || u.Version != str(want.Version) ||
			len(q) != len(want.Qualifiers) || u.Subpath != str(want.Subpath) {
			return "parsed " + u.ToString()
		}
		for k, v := range want.Qualifiers {
			if q[k] != v {
				return "qualifier " + k
			}
		}
	case "build":
		var in parts
		json.Unmarshal(tc.Input, &in)
		got, err := purl.Build(in.Type, str(in.Namespace), in.Name, str(in.Version), in.Qualifiers, str(in.Subpath))
		if tc.ExpectedFailure {
			if err == nil {
				return "built " + got
			}
			return ""
		}
		if err != nil {
			return err.Error()
		}
		var want string
		json.Unmarshal(tc.ExpectedOutput, &want)
		if got != want {
			return "built " + got + ", want " + want
		}
	}
	return ""
}
