package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
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

var update = flag.Bool("update", false, "rewrite the golden files of the command tests")

// commandCase is one run of socle: the commands run first in the same
// data directory, the command, its exit status, and what its standard
// output must be (golden: testdata/commands/NAME.golden, with the data
// directory and times masked) or contain.
type commandCase struct {
	name   string
	setup  [][]string
	args   []string
	exit   int
	golden bool
	// contains are substrings of standard output; stderr of standard
	// error.
	contains []string
	stderr   []string
	// file, when set, is a file (relative to the data directory) the
	// command writes, checked by fileCheck.
	file      string
	fileCheck func(t *testing.T, b []byte)
}

// TestCommands runs socle's commands on the shared Alpine 3.10 image and
// its real vuln-list advisories, and on bad input.
func TestCommands(t *testing.T) {
	image := "docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz")
	importAlpine := []string{"db", "import", "--source", "vuln-list", testenv.SharedData(t, "alpine", "vuln-list-alpine-3.10")}
	scanned := [][]string{importAlpine, {"scan", image}}
	cases := []commandCase{
		{name: "db-import", args: importAlpine, exit: 0, contains: []string{"28 added"}},
		{name: "scan-table", setup: [][]string{importAlpine}, args: []string{"scan", image}, exit: 0, golden: true},
		{name: "scan-reuses-cached-layer", setup: scanned, args: []string{"scan", image}, exit: 0, contains: []string{"(1 reused from cache)"}},
		{name: "scan-exit-code-gate", setup: [][]string{importAlpine}, args: []string{"scan", "--exit-code", "7", image}, exit: 7},
		// The secdb data has no severities: nothing is HIGH, the gate opens.
		{name: "scan-severity-filter-opens-gate", setup: [][]string{importAlpine}, args: []string{"scan", "--severity", "HIGH,CRITICAL", "--exit-code", "7", image}, exit: 0},
		{name: "scan-sarif-file", setup: [][]string{importAlpine}, args: []string{"scan", "-o", "sarif", "--file", "{data}/scan.sarif", image}, exit: 0,
			file: "scan.sarif", fileCheck: func(t *testing.T, b []byte) {
				var log map[string]any
				if err := json.Unmarshal(b, &log); err != nil || log["version"] != "2.1.0" {
					t.Fatalf("sarif file: %v %v", err, log["version"])
				}
			}},
		{name: "db-status", setup: scanned, args: []string{"db", "status"}, exit: 0, golden: true},
		{name: "sbom-cyclonedx", args: []string{"sbom", "-o", "cyclonedx", image}, exit: 0, contains: []string{`"bomFormat": "CycloneDX"`, "pkg:apk/alpine/musl@1.1.22-r3"}},
		{name: "sbom-spdx", args: []string{"sbom", "-o", "spdx", image}, exit: 0, contains: []string{`"spdxVersion": "SPDX-2.3"`, "pkg:apk/alpine/musl@1.1.22-r3"}},
		{name: "usage-scan-bad-severity", args: []string{"scan", "--severity", "SEVERE", image}, exit: 2, stderr: []string{"SEVERE"}},
		{name: "usage-sbom-bad-format", args: []string{"sbom", "-o", "xml", image}, exit: 2, stderr: []string{"xml"}},
		{name: "usage-scan-no-argument", args: []string{"scan"}, exit: 2},
		{name: "usage-scan-two-arguments", args: []string{"scan", "a", "b"}, exit: 2},
		{name: "usage-unknown-command", args: []string{"nope"}, exit: 2, stderr: []string{"unknown command"}},
		{name: "usage-scan-bad-output", args: []string{"scan", "--output", "pdf", "x"}, exit: 2, stderr: []string{"pdf"}},
		{name: "usage-bad-log-level", args: []string{"--log-level", "loud", "version"}, exit: 2, stderr: []string{"--log-level"}},
		{name: "error-missing-archive", args: []string{"scan", "docker-archive:/nonexistent.tar"}, exit: 1, stderr: []string{"/nonexistent.tar"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t) })
	}
}

func (c commandCase) run(t *testing.T) {
	dir := t.TempDir()
	expand := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = strings.ReplaceAll(a, "{data}", dir)
		}
		return out
	}
	for _, s := range c.setup {
		if _, errOut, code := run(t, dir, expand(s)...); code != 0 {
			t.Fatalf("setup %v: exit %d: %s", s, code, errOut)
		}
	}
	out, errOut, code := run(t, dir, expand(c.args)...)
	if code != c.exit {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.exit, out, errOut)
	}
	for _, want := range c.contains {
		if !strings.Contains(out, want) {
			t.Errorf("standard output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range c.stderr {
		if !strings.Contains(errOut, want) {
			t.Errorf("standard error lacks %q:\n%s", want, errOut)
		}
	}
	if c.file != "" {
		b, err := os.ReadFile(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		c.fileCheck(t, b)
	}
	if c.golden {
		checkGolden(t, filepath.Join("testdata", "commands", c.name+".golden"), maskOutput(out, dir, testenv.SharedData(t)))
	}
}

var timestamps = regexp.MustCompile(`\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}Z)?`)

// maskOutput replaces what changes from run to run or machine to
// machine (the data directory, the shared data's place, dates and times)
// so that outputs compare.
func maskOutput(out, dataDir, shared string) string {
	out = strings.ReplaceAll(out, dataDir, "{data}")
	out = strings.ReplaceAll(out, shared, "{shared}")
	return timestamps.ReplaceAllString(out, "{time}")
}

// checkGolden compares got with a golden file, or rewrites it with -update.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if string(want) != got {
		t.Errorf("output differs from %s (go test -update rewrites it):\n--- want\n%s\n--- got\n%s", path, want, got)
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
