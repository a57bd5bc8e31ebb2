package catalog_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
)

// Hand-made Dockerfiles, in the shapes platform repositories have.
var dockerfiles = map[string]string{
	// A runtime image on a base, through an ARG with a default.
	"runtimes/java/Dockerfile": `# syntax=docker/dockerfile:1
ARG BASE_IMAGE=registry.example/my/debian:12.8
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.version="17.0.9"
COPY jdk /opt/java
`,
	// An app: multi-stage, builder image, COPY --from an image, final
	// stage on the java runtime.
	"apps/billing/Dockerfile": `ARG GO_VERSION=1.22
FROM golang:${GO_VERSION} AS build
RUN go build -o /out/app .
FROM registry.example/tools/migrate:3 AS migrate
FROM registry.example/my/java:17-debian12 AS runtime
COPY --from=build /out/app /app
COPY --from=migrate /migrate /usr/bin/migrate
COPY --from=registry.example/certs/bundle:1 /ca.pem /etc/ssl/ca.pem
COPY --from=0 /out/app /app2
`,
	// The final stage derives from an earlier stage.
	"apps/ledger/Dockerfile.prod": `FROM registry.example/my/java:17 AS base
RUN true
FROM base
COPY . /app
`,
	// ARG without default: unresolvable.
	"apps/report/Containerfile": `ARG BASE
FROM $BASE
`,
	"apps/static/Dockerfile": "FROM scratch\nCOPY site /site\n",
	// Not a Dockerfile: ignored.
	"apps/static/README.md": "FROM nothing",
	// Skipped directory.
	"node_modules/x/Dockerfile": "FROM nope:1\n",
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, s := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDiscover(t *testing.T) {
	dir := writeTree(t, dockerfiles)
	dfs, errs := catalog.Discover(dir)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := map[string]*catalog.Dockerfile{}
	for _, df := range dfs {
		got[df.Path] = df
	}
	if len(got) != 5 {
		t.Fatalf("found %d Dockerfiles: %v", len(got), got)
	}
	java := got["runtimes/java/Dockerfile"]
	if java.Parent != "registry.example/my/debian:12.8" || java.ParentArg != "BASE_IMAGE" || java.Version != "17.0.9" {
		t.Fatalf("java = %+v", java)
	}
	billing := got["apps/billing/Dockerfile"]
	if billing.Parent != "registry.example/my/java:17-debian12" || len(billing.Stages) != 3 {
		t.Fatalf("billing = %+v", billing)
	}
	if billing.Stages[0].Base != "golang:1.22" || billing.Stages[0].From != "golang:${GO_VERSION}" {
		t.Fatalf("ARG expansion: %+v", billing.Stages[0])
	}
	wantBuild := []string{"golang:1.22", "registry.example/certs/bundle:1", "registry.example/tools/migrate:3"}
	if !reflect.DeepEqual(billing.BuildImages, wantBuild) {
		t.Fatalf("build images = %v, want %v", billing.BuildImages, wantBuild)
	}
	ledger := got["apps/ledger/Dockerfile.prod"]
	if ledger.Parent != "registry.example/my/java:17" || ledger.Stages[1].Stage != "base" {
		t.Fatalf("ledger = %+v", ledger)
	}
	report := got["apps/report/Containerfile"]
	if report.Parent != "" || len(report.Unresolved) != 1 {
		t.Fatalf("report = %+v", report)
	}
	if static := got["apps/static/Dockerfile"]; static.Parent != "" {
		t.Fatalf("scratch is no parent: %+v", static)
	}

	// The catalog it writes is valid socle.yaml, and links the apps to
	// the discovered java runtime.
	out, err := catalog.DiscoveredCatalog(dfs, "platform")
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse(filepath.Join(dir, "socle.yaml"), out)
	if err != nil {
		t.Fatalf("discovered catalog does not parse: %v\n%s", err, out)
	}
	c, err := catalog.New(f)
	if err != nil {
		t.Fatalf("discovered catalog is invalid: %v\n%s", err, out)
	}
	b, ok := c.Get("billing")
	if !ok || b.ParentImage == nil || b.ParentImage.Name != "java" {
		t.Fatalf("billing's parent is not the discovered java image:\n%s", out)
	}
	if j, _ := c.Get("java"); j.Parent != "registry.example/my/debian:12.8" || j.Build.Dockerfile.ParentArg != "BASE_IMAGE" || j.Version != "17.0.9" {
		t.Fatalf("java entry: %+v", j.Image)
	}
	if l, _ := c.Get("ledger-prod"); l == nil || l.Build.Dockerfile.File != "Dockerfile.prod" {
		t.Fatalf("ledger entry missing or without its file name:\n%s", out)
	}
	for _, want := range []string{"TODO FROM $BASE", "build-time images: golang:1.22", "TODO version"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("discovered catalog lacks %q:\n%s", want, out)
		}
	}
}

func TestDiscoverReportsBadFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"good/Dockerfile": "FROM debian:12\n",
		"bad/Dockerfile":  "RUN echo no from\n",
	})
	dfs, errs := catalog.Discover(dir)
	if len(dfs) != 1 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "bad/Dockerfile") {
		t.Fatalf("dfs = %v errs = %v", dfs, errs)
	}
}
