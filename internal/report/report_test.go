package report_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/report"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

var update = flag.Bool("update", false, "rewrite golden files")

var ctx = context.Background()

var clock = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// alpineResult scans the real Alpine 3.10 image against the real
// vuln-list records.
func alpineResult(t *testing.T) *scan.Result {
	t.Helper()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	im := vuln.NewImporter(st, "vuln-list-alpine-3.10")
	if err := im.ImportPath(ctx, testenv.SharedData(t, "alpine", "vuln-list-alpine-3.10")); err != nil {
		t.Fatal(err)
	}
	if _, err := im.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	ref, _ := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz"))
	img, err := source.Open(ctx, ref, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	an, err := sbom.NewAnalyzer(sbom.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	res, err := scan.New(st, an, scan.WithClock(clock)).Scan(ctx, img, scan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res.Ref = "docker-archive:alpine-310.tar.gz" // machine-independent
	return res
}

func render(t *testing.T, format string, res *scan.Result) []byte {
	t.Helper()
	var buf bytes.Buffer
	note := report.AdvisoryNote{Lines: []string{"Alpine:v3.10: test data"}}
	if err := report.Write(&buf, format, res, note); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from the golden file (go test -update to accept):\n%s", name, got)
	}
}

func TestGoldenTableAndJSON(t *testing.T) {
	res := alpineResult(t)
	golden(t, "alpine-310.table.golden", render(t, "table", res))
	golden(t, "alpine-310.json.golden", render(t, "json", res))
}

func compileSchema(t *testing.T, resources map[string]string, main string) *jsonschema.Schema {
	return testenv.CompileSchema(t, resources, main)
}

func validate(t *testing.T, s *jsonschema.Schema, doc []byte) {
	t.Helper()
	if err := testenv.Validate(s, doc); err != nil {
		t.Fatalf("document does not validate: %v", err)
	}
}

// moduleDir finds a module in the module cache.
func moduleDir(t *testing.T, mod string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", mod, err)
	}
	return strings.TrimSpace(string(out))
}

func TestCycloneDXValidatesAgainstSchema(t *testing.T) {
	dir := filepath.Join(moduleDir(t, "github.com/CycloneDX/cyclonedx-go"), "schema")
	s := compileSchema(t, map[string]string{
		"http://cyclonedx.org/schema/bom-1.6.schema.json":  filepath.Join(dir, "bom-1.6.schema.json"),
		"http://cyclonedx.org/schema/spdx.schema.json":     filepath.Join(dir, "spdx.schema.json"),
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": filepath.Join(dir, "jsf-0.82.schemax.json"),
	}, "http://cyclonedx.org/schema/bom-1.6.schema.json")
	res := alpineResult(t)
	doc := render(t, "cyclonedx", res)
	validate(t, s, doc)
	var bom struct {
		SpecVersion     string `json:"specVersion"`
		Components      []any  `json:"components"`
		Vulnerabilities []any  `json:"vulnerabilities"`
	}
	json.Unmarshal(doc, &bom)
	ids := map[string]bool{}
	for _, f := range res.Findings {
		ids[f.ID] = true
	}
	// One component per package plus the operating system.
	if bom.SpecVersion != "1.6" || len(bom.Components) != len(res.Inventory.Packages)+1 || len(bom.Vulnerabilities) != len(ids) {
		t.Fatalf("spec %s, %d components, %d vulnerabilities; want %d packages, %d vulnerabilities",
			bom.SpecVersion, len(bom.Components), len(bom.Vulnerabilities), len(res.Inventory.Packages), len(ids))
	}
	// The plain SBOM validates too.
	var buf bytes.Buffer
	if err := sbom.WriteCycloneDX(&buf, sbom.CycloneDX(res.Inventory, sbom.ImageName{Repository: "alpine", Tag: "3.10"})); err != nil {
		t.Fatal(err)
	}
	validate(t, s, buf.Bytes())
}

func TestSARIFValidatesAgainstSchema(t *testing.T) {
	s := compileSchema(t, map[string]string{"sarif-2.1.0.json": testenv.SARIFSchema(t)}, "sarif-2.1.0.json")
	res := alpineResult(t)
	doc := render(t, "sarif", res)
	validate(t, s, doc)
	var log struct {
		Runs []struct {
			Results []any `json:"results"`
		} `json:"runs"`
	}
	json.Unmarshal(doc, &log)
	if len(log.Runs) != 1 || len(log.Runs[0].Results) != len(res.Findings) {
		t.Fatalf("SARIF has %d results, want %d", len(log.Runs[0].Results), len(res.Findings))
	}
	// A scan with no findings is still valid SARIF.
	res.Findings = nil
	validate(t, s, render(t, "sarif", res))
}

func TestSPDXReadsBack(t *testing.T) {
	res := alpineResult(t)
	doc, err := spdxjson.Read(bytes.NewReader(render(t, "spdx", res)))
	if err != nil {
		t.Fatal(err)
	}
	if err := spdxlib.ValidateDocument(doc); err != nil {
		t.Fatal(err)
	}
	// Beside the inventory's packages (LIBRARY) the document has the image
	// (CONTAINER), the operating system and the source packages.
	purposes := map[string]int{}
	for _, p := range doc.Packages {
		purposes[p.PrimaryPackagePurpose]++
	}
	if doc.SPDXVersion != "SPDX-2.3" || purposes["LIBRARY"] != len(res.Inventory.Packages) ||
		purposes["CONTAINER"] != 1 || purposes["OPERATING_SYSTEM"] != 1 || purposes["SOURCE"] == 0 {
		t.Fatalf("version %s, packages by purpose %v, inventory %d", doc.SPDXVersion, purposes, len(res.Inventory.Packages))
	}
}

func TestFilterAndExitCode(t *testing.T) {
	res := alpineResult(t)
	if len(res.Findings) == 0 {
		t.Fatal("no findings to filter")
	}
	all := report.Filter{}.Apply(res.Findings)
	if report.ExitCode(all, 3) != 3 || report.ExitCode(all, 0) != 0 {
		t.Fatal("exit code gate")
	}
	// The secdb data has no severities: filtering on HIGH leaves nothing,
	// and the gate opens.
	high := report.Filter{Severities: map[string]bool{vuln.SeverityHigh: true}}.Apply(res.Findings)
	if len(high) != 0 || report.ExitCode(high, 3) != 0 {
		t.Fatalf("HIGH filter kept %d", len(high))
	}
	unfixed := 0
	for _, f := range res.Findings {
		if f.FixedVersion == "" {
			unfixed++
		}
	}
	if got := len(report.Filter{IgnoreUnfixed: true}.Apply(res.Findings)); got != len(res.Findings)-unfixed {
		t.Fatalf("ignore-unfixed kept %d", got)
	}
}

// TestJUnitReadsBack: the JUnit report of the real Alpine scan parses as
// XML, has a test case per package, and fails one for each package with
// findings, carrying every finding.
func TestJUnitReadsBack(t *testing.T) {
	res := alpineResult(t)
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Suites   []struct {
			Cases []struct {
				Name     string `xml:"name,attr"`
				Failures []struct {
					Message string `xml:"message,attr"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(render(t, "junit", res), &doc); err != nil {
		t.Fatal(err)
	}
	failures, failed := 0, map[string]bool{}
	for _, c := range doc.Suites[0].Cases {
		failures += len(c.Failures)
		if len(c.Failures) > 0 {
			failed[c.Name] = true
		}
	}
	pkgs := map[string]bool{}
	for _, f := range res.Findings {
		pkgs[f.Package.Name+"@"+f.Package.Version] = true
	}
	if failures != len(res.Findings) || doc.Failures != len(pkgs) || len(failed) != len(pkgs) || doc.Tests < len(pkgs) {
		t.Fatalf("JUnit: %d tests, %d failed cases, %d failures; want %d findings in %d packages", doc.Tests, doc.Failures, failures, len(res.Findings), len(pkgs))
	}
}
