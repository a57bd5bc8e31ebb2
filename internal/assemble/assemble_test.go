package assemble_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/mutate"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/testenv"
)

var ctx = context.Background()

// sharedCache keeps downloaded indexes and packages across the tests of
// a run (and between runs on one machine).
func sharedCache(t testing.TB) string {
	d := filepath.Join(os.TempDir(), "socle-apt-test-cache")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func newAssembler(t testing.TB) *assemble.Assembler {
	t.Helper()
	a, err := assemble.New(assemble.Options{Cache: sharedCache(t)})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// smallBase is about ten packages, ca-certificates among them, from the
// Debian mirror the host's apt configuration names.
var smallBase = assemble.Spec{
	Suite:    "bookworm",
	Packages: []string{"base-files", "ca-certificates", "tzdata", "netbase", "libc6", "zlib1g", "libssl3", "media-types", "mailcap", "libgcc-s1"},
	Security: true,
	Epoch:    time.Unix(1700000000, 0),
	Config:   mutate.Config{Labels: map[string]string{"org.opencontainers.image.title": "socle test base"}},
}

// TestAssembleScanReproduce assembles a small bookworm base from the real
// archive, scans it with socle, and assembles it again.
func TestAssembleScanReproduce(t *testing.T) {
	a := newAssembler(t)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	img, res, err := a.Assemble(ctx, smallBase)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Packages) < len(smallBase.Packages) {
		t.Fatalf("resolved %d packages", len(res.Packages))
	}
	an, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := an.Inventory(ctx, &source.Image{Image: img, Ref: oci.ImageRef{Transport: oci.TransportRegistry, Path: "assembled"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The scan sees exactly the resolved packages, with their versions.
	want := res.Versions()
	got := map[string]string{}
	for _, p := range inv.Packages {
		if p.Type != "deb" {
			continue
		}
		got[p.Name] = p.Version
	}
	if len(got) != len(want) {
		t.Fatalf("scan found %d Debian packages, the assembly installed %d", len(got), len(want))
	}
	for n, v := range want {
		if got[n] != v {
			t.Errorf("%s: scan says %q, assembled %q", n, got[n], v)
		}
	}
	if inv.OS.ID != "debian" || inv.OS.VersionID != "12" {
		t.Fatalf("OS = %+v", inv.OS)
	}
	cfg, _ := img.ConfigFile()
	if cfg.Config.User != "65532" || cfg.Config.Labels["org.opencontainers.image.title"] != "socle test base" || !cfg.Created.Time.Equal(smallBase.Epoch) {
		t.Fatalf("config: %+v", cfg.Config)
	}
	hasSecurity := false
	for _, p := range res.Packages {
		hasSecurity = hasSecurity || strings.HasSuffix(p.Suite, "-security")
	}
	t.Logf("%d packages, %d from the security suite: %v", len(res.Packages), countSecurity(res), hasSecurity)

	// Again, from a fresh assembler: the same digest.
	img2, _, err := newAssembler(t).Assemble(ctx, smallBase)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := img.Digest()
	d2, _ := img2.Digest()
	if d1 != d2 {
		t.Fatalf("two assemblies of the same input: %s and %s", d1, d2)
	}
	// Files: the CA bundle, the nonroot user, merged /usr.
	files := testenv.LayerFiles(t, img)
	for _, want := range []string{"etc/ssl/certs/ca-certificates.crt", "etc/passwd", "home/nonroot/", "usr/share/zoneinfo/UTC", "bin", "usr/lib/os-release"} {
		if !files[want] {
			t.Errorf("image lacks %s", want)
		}
	}
}

func countSecurity(res *assemble.Resolution) int {
	n := 0
	for _, p := range res.Packages {
		if strings.HasSuffix(p.Suite, "-security") {
			n++
		}
	}
	return n
}

// TestAssemblePin pins a package to the version of the main suite when
// the security suite has a newer one (the real bookworm pairs of the
// shared data's derived table name such packages).
func TestAssemblePin(t *testing.T) {
	a := newAssembler(t)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	spec := assemble.Spec{Suite: "bookworm", Packages: []string{"libpcre2-8-0"}, Security: true}
	latest, err := a.Resolve(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	// The main suite's version, from a resolution without security.
	spec.Security = false
	mainRes, err := a.Resolve(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	newest, old := latest.Versions()["libpcre2-8-0"], mainRes.Versions()["libpcre2-8-0"]
	if newest == old {
		t.Skipf("bookworm-security has no newer libpcre2-8-0 than bookworm today (%s)", old)
	}
	spec.Security, spec.Packages = true, []string{"libpcre2-8-0=" + old}
	pinned, err := a.Resolve(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := pinned.Versions()["libpcre2-8-0"]; got != old {
		t.Fatalf("pinned to %s, resolved %s", old, got)
	}
	spec.Packages = []string{"libpcre2-8-0=0.0-not-there"}
	if _, err := a.Resolve(ctx, spec); err == nil || !strings.Contains(err.Error(), "not in bookworm") {
		t.Fatalf("a pin to a missing version: %v", err)
	}
}
