package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/testenv"
)

func writeFile(t *testing.T, p string, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func TestCatalogCheckErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "socle.yaml")
	writeFile(t, cfg, `images:
  - name: a
    repository: x/a
    parent: b
    version: "1"
    build: {append: {layers: [{from: f, to: /f}]}}
  - name: b
    repository: x/b
    parent: a
    version: "1"
    build: {append: {layers: [{from: f, to: /f}]}}
  - name: c
    repository: x/c
    parent: nowhere
    version: "1"
    build: {append: {layers: [{from: f, to: /f}]}}
`, 0o644)
	_, errOut, code := run(t, dir, "catalog", "check", "--config", cfg)
	if code == 0 {
		t.Fatal("a cyclic catalog passed the check")
	}
	for _, want := range []string{"a → b → a", "socle.yaml:14", "nowhere"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the errors lack %q:\n%s", want, errOut)
		}
	}
}

func TestCatalogDiscover(t *testing.T) {
	dir := t.TempDir()
	// Hand-made Dockerfiles: a runtime on an external base, and an app
	// on the runtime through an ARG.
	writeFile(t, filepath.Join(dir, "java", "Dockerfile"), "FROM debian:12 AS base\nLABEL org.opencontainers.image.version=17.0.9\n", 0o644)
	writeFile(t, filepath.Join(dir, "apps", "billing", "Dockerfile"), "ARG RUNTIME=platform/java:17\nFROM golang:1.26 AS build\nRUN true\nFROM ${RUNTIME}\nCOPY --from=build /out /app\n", 0o644)
	out, errOut, code := run(t, dir, "catalog", "discover", "--repository-prefix", "platform/", dir)
	if code != 0 {
		t.Fatalf("discover: %d %s", code, errOut)
	}
	// The output is a catalog the check accepts once its TODOs are
	// answered: here, it must at least parse and name both images.
	for _, want := range []string{"name: java", "name: billing", "parent: java", "17.0.9"} {
		if !strings.Contains(out, want) {
			t.Errorf("discovered catalog lacks %q:\n%s", want, out)
		}
	}
}

// TestPlanBuildLineageCommands runs plan, build and lineage against an
// in-process registry, on a hand-made external base.
func TestPlanBuildLineageCommands(t *testing.T) {
	dir := t.TempDir()
	reg := registrytest.Start(t, registry.Options{})
	base := testenv.Image(t, testenv.Layer(t, testenv.DebianBaseFiles(t)))
	ref, _ := name.ParseReference(reg.Host + "/ext/debian:12")
	if err := remote.Write(ref, base); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "bin", "age-keygen"), string(testenv.ReadShared(t, "gobin", "age-keygen")), 0o755)
	writeFile(t, filepath.Join(dir, "app", "hello.txt"), "hand-made\n", 0o644)
	cfg := filepath.Join(dir, "socle.yaml")
	writeFile(t, cfg, `images:
  - name: tools
    repository: socle/tools
    parent: `+reg.Host+`/ext/debian:12
    version: 1.2.0
    build: {append: {layers: [{from: bin/age-keygen, to: /usr/local/bin/age-keygen}]}}
  - name: hello
    repository: apps/hello
    parent: tools
    version: 0.1.0
    build: {append: {layers: [{from: app, to: /srv}]}}
`, 0o644)
	flags := []string{"--config", cfg, "--registry", reg.Host, "--local"}
	out, errOut, code := run(t, dir, append([]string{"plan", "-o", "json"}, flags...)...)
	if code != 0 {
		t.Fatalf("plan: %s", errOut)
	}
	var plan struct {
		Steps []struct {
			Name    string
			Level   int
			Reasons []string
		}
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatal(err)
	}
	if len(plan.Steps) != 2 || plan.Steps[0].Name != "tools" || plan.Steps[1].Level != 1 {
		t.Fatalf("plan: %+v", plan)
	}
	out, errOut, code = run(t, dir, append([]string{"build"}, flags...)...)
	if code != 0 {
		t.Fatalf("build %d: %s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "hello        pushed") || !strings.Contains(out, "0.1.0-tools1.2.0") {
		t.Errorf("build output:\n%s\n%s", out, errOut)
	}
	out, _, _ = run(t, dir, append([]string{"plan"}, flags...)...)
	if !strings.Contains(out, "Nothing to build") {
		t.Errorf("second plan:\n%s", out)
	}
	out, _, _ = run(t, dir, append([]string{"build"}, flags...)...)
	if !strings.Contains(out, "up to date") {
		t.Errorf("second build:\n%s", out)
	}
	out, errOut, code = run(t, dir, "lineage", reg.Host+"/apps/hello:0")
	if code != 0 {
		t.Fatalf("lineage: %s", errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[1], "socle/tools") || !strings.Contains(lines[2], "ext/debian") {
		t.Errorf("lineage:\n%s", out)
	}
}

// TestSyncRemediateExposureCommands: a feed of real GHSA records is
// synced, a catalog app with a vulnerable npm package (hand-made) gets
// the finding, and remediate explains that the fix is the app's own.
func TestSyncRemediateExposureCommands(t *testing.T) {
	dir := t.TempDir()
	reg := registrytest.Start(t, registry.Options{})
	base := testenv.Image(t, testenv.Layer(t, testenv.DebianBaseFiles(t)))
	ref, _ := name.ParseReference(reg.Host + "/ext/debian:12")
	if err := remote.Write(ref, base); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "web", "node_modules", "minimist", "package.json"), `{"name":"minimist","version":"1.2.5"}`, 0o644)
	cfg := filepath.Join(dir, "socle.yaml")
	writeFile(t, cfg, `feeds:
  - name: ghsa
    url: `+testenv.SharedData(t, "osv", "ghsa")+`
environments:
  - name: prod
images:
  - name: web
    repository: apps/web
    parent: `+reg.Host+`/ext/debian:12
    version: 1.0.0
    build: {append: {layers: [{from: web, to: /srv/web}]}}
`, 0o644)
	flags := []string{"--config", cfg, "--registry", reg.Host, "--local"}
	if out, errOut, code := run(t, dir, append([]string{"build"}, flags...)...); code != 0 {
		t.Fatalf("build: %s %s", out, errOut)
	}
	out, errOut, code := run(t, dir, "db", "sync", "--config", cfg)
	if code != 0 || !strings.Contains(out, "ghsa") || !strings.Contains(out, "ok") {
		t.Fatalf("db sync: %d\n%s\n%s", code, out, errOut)
	}
	out, _, _ = run(t, dir, "db", "sync", "--config", cfg)
	if !strings.Contains(out, " 4 ") {
		t.Errorf("second sync should report 4 unchanged records:\n%s", out)
	}
	out, errOut, code = run(t, dir, append([]string{"remediate", "--dry-run"}, flags...)...)
	if code != 0 || !strings.Contains(out, "strategy  none") || !strings.Contains(out, "GHSA-xvch-5gv4-984h") || !strings.Contains(out, "own content") {
		t.Fatalf("remediate: %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = run(t, dir, "exposure", "--config", cfg, "-o", "json")
	if code != 0 || !strings.Contains(out, `"environment": "prod"`) {
		t.Fatalf("exposure: %s", out)
	}
}
