package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/cli"
	"github.com/socle-dev/socle/internal/testenv"
)

// run executes socle with args against dataDir and returns its output
// and exit status.
func run(t *testing.T, dataDir string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := cli.NewRoot(&out, &errOut)
	root.SetArgs(append([]string{"--data-dir", dataDir}, args...))
	err := root.ExecuteContext(context.Background())
	code := cli.Exit(&errOut, err)
	return out.String(), errOut.String(), code
}

func TestScanAlpineEndToEnd(t *testing.T) {
	dir := t.TempDir()
	image := "docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz")
	out, _, code := run(t, dir, "db", "import", "--source", "vuln-list", testenv.SharedData(t, "alpine", "vuln-list-alpine-3.10"))
	if code != 0 || !strings.Contains(out, "added") {
		t.Fatalf("import: code %d\n%s", code, out)
	}
	out, _, code = run(t, dir, "scan", image)
	if code != 0 {
		t.Fatalf("scan exit %d", code)
	}
	for _, want := range []string{"openssl", "musl", "busybox", "apk-tools", "FIXED IN", "vuln-list"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// A second scan reuses the cached layer.
	out, _, _ = run(t, dir, "scan", image)
	if !strings.Contains(out, "(1 reused from cache)") {
		t.Errorf("second scan did not reuse the layer:\n%s", out)
	}
	// The gate: findings remain, so --exit-code is returned.
	_, _, code = run(t, dir, "scan", "--exit-code", "7", image)
	if code != 7 {
		t.Errorf("--exit-code 7 gave %d", code)
	}
	// Nothing HIGH in secdb data (it has no severities): the gate opens.
	_, _, code = run(t, dir, "scan", "--severity", "HIGH,CRITICAL", "--exit-code", "7", image)
	if code != 0 {
		t.Errorf("--severity HIGH,CRITICAL --exit-code 7 gave %d", code)
	}
	_, _, code = run(t, dir, "scan", "--severity", "SEVERE", image)
	if code != 2 {
		t.Errorf("bad --severity gave %d, want the usage status 2", code)
	}
	sarif := filepath.Join(dir, "scan.sarif")
	if _, _, code = run(t, dir, "scan", "-o", "sarif", "--file", sarif, image); code != 0 {
		t.Fatalf("sarif: %d", code)
	}
	var log map[string]any
	b, _ := os.ReadFile(sarif)
	if err := json.Unmarshal(b, &log); err != nil || log["version"] != "2.1.0" {
		t.Fatalf("sarif file: %v %v", err, log["version"])
	}
	out, _, code = run(t, dir, "db", "status")
	if code != 0 || !strings.Contains(out, "Alpine:v3.10") || !strings.Contains(out, "vuln-list") || !strings.Contains(out, "Images indexed: 1") {
		t.Fatalf("db status (%d):\n%s", code, out)
	}
}

func TestVEXSuppresses(t *testing.T) {
	dir := t.TempDir()
	image := "docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz")
	run(t, dir, "db", "import", testenv.SharedData(t, "alpine", "vuln-list-alpine-3.10", "musl.json"))
	out, _, _ := run(t, dir, "scan", "-o", "json", image)
	var before struct{ Findings []struct{ ID string } }
	json.Unmarshal([]byte(out), &before)
	if len(before.Findings) == 0 {
		t.Fatal("no musl findings to suppress")
	}
	// A hand-made OpenVEX document declaring the first one not_affected.
	vex := filepath.Join(dir, "vex.json")
	os.WriteFile(vex, []byte(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"`+before.Findings[0].ID+`"},
"products":[{"@id":"pkg:apk/alpine/musl"},{"@id":"pkg:apk/alpine/musl-utils"}],"status":"not_affected","justification":"vulnerable_code_not_present"}]}`), 0o644)
	out, _, code := run(t, dir, "scan", "-o", "json", "--vex", vex, image)
	var after struct {
		Findings   []struct{ ID string }
		Suppressed []struct{ ID, Suppressed string }
	}
	json.Unmarshal([]byte(out), &after)
	if code != 0 || len(after.Suppressed) == 0 || len(after.Findings) >= len(before.Findings) {
		t.Fatalf("VEX: %d findings before, %d after, %d suppressed", len(before.Findings), len(after.Findings), len(after.Suppressed))
	}
	for _, f := range after.Findings {
		if f.ID == before.Findings[0].ID {
			t.Fatalf("%s still reported", f.ID)
		}
	}
	// Stored: socle vex apply closes the stored findings; applying it again
	// finds them closed (the store suite shows a re-match keeps them so).
	run(t, dir, "scan", "--index", image)
	out, errOut, code := run(t, dir, "vex", "apply", vex)
	if code != 0 || !strings.Contains(out, "in 1 images") || strings.Contains(out, "closed 0 findings") {
		t.Fatalf("vex apply: %d %s %s", code, out, errOut)
	}
	out, _, _ = run(t, dir, "vex", "apply", vex)
	if !strings.Contains(out, "closed 0 findings") {
		t.Fatalf("a second apply closed again: %s", out)
	}
}

func TestScanWithoutAdvisoriesLoadsSample(t *testing.T) {
	dir := t.TempDir()
	// The Debian minbase and the Go binary, stacked as two layers.
	img := testenv.Image(t,
		testenv.Layer(t, testenv.DebianBaseFiles(t)),
		testenv.Layer(t, []testenv.File{testenv.GoBinaryFile(t, "usr/bin/age-keygen")}))
	layoutDir := writeLayout(t, img)
	out, errOut, code := run(t, dir, "scan", "oci:"+layoutDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "bundled SAMPLE") || !strings.Contains(out, "only the bundled SAMPLE advisories") {
		t.Fatalf("no sample warning:\n%s\n%s", errOut, out)
	}
	if !strings.Contains(out, "no advisories are loaded for Debian:12") {
		t.Fatalf("no warning about Debian:\n%s", out)
	}
	if !strings.Contains(out, "stdlib") && !strings.Contains(out, "go ") {
		t.Fatalf("the Go toolchain is not reported against the sample:\n%s", out)
	}
}

func TestSBOMFormats(t *testing.T) {
	dir := t.TempDir()
	image := "docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz")
	for format, marker := range map[string]string{"cyclonedx": `"bomFormat": "CycloneDX"`, "spdx": `"spdxVersion": "SPDX-2.3"`} {
		out, errOut, code := run(t, dir, "sbom", "-o", format, image)
		if code != 0 || !strings.Contains(out, marker) || !strings.Contains(out, "pkg:apk/alpine/musl@1.1.22-r3") {
			t.Fatalf("%s (exit %d): %s\n%.400s", format, code, errOut, out)
		}
	}
	if _, _, code := run(t, dir, "sbom", "-o", "xml", image); code != 2 {
		t.Fatalf("bad format exit %d", code)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"scan"}, {"scan", "a", "b"}, {"nope"}, {"scan", "--output", "pdf", "x"}, {"--log-level", "loud", "version"}} {
		if _, _, code := run(t, dir, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if _, _, code := run(t, dir, "scan", "docker-archive:/nonexistent.tar"); code != 1 {
		t.Errorf("missing file: exit %d, want 1", code)
	}
}
