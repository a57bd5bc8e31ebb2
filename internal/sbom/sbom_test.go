package sbom_test

import (
	"bufio"
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

var ctx = context.Background()

func analyze(t *testing.T, img v1.Image, cache sbom.LayerCache) *sbom.Inventory {
	t.Helper()
	a, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	inv, err := a.Inventory(ctx, img, cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func openArchive(t *testing.T, rel ...string) *source.Image {
	t.Helper()
	ref, err := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, rel...))
	if err != nil {
		t.Fatal(err)
	}
	img, err := source.Open(ctx, ref, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

// installedStanzas parses a package database into name -> version the
// simplest way, to check the extractor's answer against the data.
func installedStanzas(t *testing.T, db []byte, nameKey, versionKey, statusKey string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, stanza := range strings.Split(string(db), "\n\n") {
		fields := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(stanza))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, " ") {
				fields[k] = strings.TrimSpace(v)
			}
		}
		if fields[nameKey] == "" {
			continue
		}
		if statusKey != "" && !strings.HasSuffix(fields[statusKey], " installed") {
			continue
		}
		out[fields[nameKey]] = fields[versionKey]
	}
	return out
}

func TestAlpineImageInventory(t *testing.T) {
	img := openArchive(t, "images", "alpine-310.tar.gz")
	inv := analyze(t, img, nil)
	if inv.OS.ID != "alpine" || inv.OS.VersionID != "3.10.4" {
		t.Fatalf("OS = %+v", inv.OS)
	}
	// The expected packages come from the image's own apk database,
	// read from the layer with a plain parser.
	want := installedFromLayer(t, img, "lib/apk/db/installed", "P", "V")
	got := map[string]string{}
	for _, p := range inv.Packages {
		if p.Type != "apk" {
			t.Errorf("unexpected %s package %s", p.Type, p.Name)
			continue
		}
		got[p.Name] = p.Version
		if p.Ecosystem != "Alpine:v3.10" || !strings.HasPrefix(p.PURL, "pkg:apk/alpine/"+p.Name+"@") {
			t.Errorf("%s: ecosystem %q purl %q", p.Name, p.Ecosystem, p.PURL)
		}
		if p.Layer != inv.Layers[0].Digest {
			t.Errorf("%s: layer %q, want the only layer", p.Name, p.Layer)
		}
	}
	if len(want) == 0 || !equalMaps(got, want) {
		t.Fatalf("packages = %v\nwant %v", got, want)
	}
}

// installedFromLayer reads a file from the image's layers and parses it.
func installedFromLayer(t *testing.T, img v1.Image, path, nameKey, versionKey string) map[string]string {
	t.Helper()
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		data := readTarFile(t, rc, path)
		rc.Close()
		if data != nil {
			return installedStanzas(t, data, nameKey, versionKey, "")
		}
	}
	t.Fatalf("%s not in image", path)
	return nil
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// debianImage stacks the real bookworm minbase database (bottom layer)
// under a hand-made layer holding the real Go binary.
func debianImage(t *testing.T) v1.Image {
	t.Helper()
	base := testenv.Layer(t, append(testenv.DebianBaseFiles(t),
		testenv.File{Path: "usr/lib/os-release", Content: testenv.ReadShared(t, "debian", "bookworm-minbase-rootfs", "etc", "os-release")}))
	app := testenv.Layer(t, []testenv.File{testenv.GoBinaryFile(t, "usr/local/bin/age-keygen")})
	return testenv.Image(t, base, app)
}

func TestDebianAndGoInventory(t *testing.T) {
	img := debianImage(t)
	inv := analyze(t, img, nil)
	if inv.OS.ID != "debian" || inv.OS.VersionID != "12" || inv.OS.Release == "" {
		t.Fatalf("OS = %+v", inv.OS)
	}
	want := installedStanzas(t, testenv.ReadShared(t, "debian", "bookworm-minbase-rootfs", "var", "lib", "dpkg", "status"), "Package", "Version", "Status")
	got := map[string]string{}
	var goPkgs []sbom.Package
	sources := 0
	for _, p := range inv.Packages {
		switch p.Type {
		case "deb":
			got[p.Name] = p.Version
			if p.Ecosystem != "Debian:12" || p.LayerIndex != 0 {
				t.Errorf("%s: ecosystem %q layer %d", p.Name, p.Ecosystem, p.LayerIndex)
			}
			if p.SourceName != "" {
				sources++
			}
		case "golang":
			goPkgs = append(goPkgs, p)
		}
	}
	if !equalMaps(got, want) {
		t.Fatalf("deb packages: got %d, want %d from the status file", len(got), len(want))
	}
	if sources == 0 {
		t.Fatal("no Debian package carries its source package name")
	}
	var stdlib *sbom.Package
	for i := range goPkgs {
		if goPkgs[i].Name == "go" {
			stdlib = &goPkgs[i]
		}
	}
	if stdlib == nil || stdlib.Version != "1.19.8" || stdlib.LayerIndex != 1 || stdlib.Path != "usr/local/bin/age-keygen" || stdlib.Ecosystem != "Go" {
		t.Fatalf("Go toolchain package = %+v (the MANIFEST says go1.19.8)", stdlib)
	}
}

// countingCache is a real SQLite layer cache that counts the analyses
// stored.
type countingCache struct {
	store.LayerCache
	mu     sync.Mutex
	stores int
}

func newCountingCache(t testing.TB) *countingCache {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "cache.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &countingCache{LayerCache: st}
}

// ClaimLayerRead claims nothing: the tests read each layer from one
// goroutine.
func (c *countingCache) ClaimLayerRead(context.Context, string) (func(), error) {
	return func() {}, nil
}

func (c *countingCache) StoreLayerAnalysis(ctx context.Context, digest, diffID string, b []byte) error {
	c.mu.Lock()
	c.stores++
	c.mu.Unlock()
	return c.LayerCache.StoreLayerAnalysis(ctx, digest, diffID, b)
}

func TestLayerCacheReusesSharedBase(t *testing.T) {
	cache := newCountingCache(t)
	first := analyze(t, debianImage(t), cache)
	if first.ReusedLayers != 0 || cache.stores != 2 {
		t.Fatalf("first scan: reused %d, stored %d", first.ReusedLayers, cache.stores)
	}
	// A second image on the same base, with another top layer (hand-made).
	base := testenv.Layer(t, append(testenv.DebianBaseFiles(t),
		testenv.File{Path: "usr/lib/os-release", Content: testenv.ReadShared(t, "debian", "bookworm-minbase-rootfs", "etc", "os-release")}))
	other := testenv.Image(t, base, testenv.Layer(t, []testenv.File{{Path: "srv/app.txt", Content: []byte("hand-made")}}))
	second := analyze(t, other, cache)
	if second.ReusedLayers != 1 || !second.Layers[0].Cached || second.Layers[1].Cached || cache.stores != 3 {
		t.Fatalf("second scan: reused %d (layers %+v), stores %d", second.ReusedLayers, second.Layers, cache.stores)
	}
	if len(second.Packages) != len(first.Packages)-countType(first.Packages, "golang") {
		t.Fatalf("second image has %d packages", len(second.Packages))
	}
}

func countType(ps []sbom.Package, typ string) int {
	n := 0
	for _, p := range ps {
		if p.Type == typ {
			n++
		}
	}
	return n
}

// TestWhiteoutsAndReplacement checks the merge on hand-made layers built
// from real package data: a package database replaced in a higher layer
// keeps the introducing layer of unchanged packages; whiteouts and opaque
// directories remove what is below them.
func TestWhiteoutsAndReplacement(t *testing.T) {
	status := testenv.ReadShared(t, "debian", "bookworm-minbase-rootfs", "var", "lib", "dpkg", "status")
	all := installedStanzas(t, status, "Package", "Version", "Status")
	// The second layer rewrites the database without its first stanza.
	stanzas := strings.Split(strings.TrimSpace(string(status)), "\n\n")
	droppedName := installedStanzas(t, []byte(stanzas[0]), "Package", "Version", "Status")
	rest := []byte(strings.Join(stanzas[1:], "\n\n") + "\n")
	osRelease := testenv.ReadShared(t, "debian", "bookworm-minbase-rootfs", "etc", "os-release")
	l0 := testenv.Layer(t, []testenv.File{
		{Path: "usr/lib/os-release", Content: osRelease},
		{Path: "etc/os-release", Link: "../usr/lib/os-release"},
		{Path: "var/lib/dpkg/status", Content: status},
		testenv.GoBinaryFile(t, "opt/tools/age-keygen"),
		testenv.GoBinaryFile(t, "usr/bin/age-keygen"),
	})
	l1 := testenv.Layer(t, []testenv.File{
		{Path: "var/lib/dpkg/status", Content: rest},
		{Path: "opt/.wh..wh..opq"},
		{Path: "usr/bin/.wh.age-keygen"},
	})
	inv := analyze(t, testenv.Image(t, l0, l1), nil)
	if inv.OS.ID != "debian" {
		t.Fatalf("os-release through a symbolic link: %+v", inv.OS)
	}
	for _, p := range inv.Packages {
		if p.Type == "golang" {
			t.Errorf("Go package %s from %s survived its whiteout", p.Name, p.Path)
		}
		if p.Type == "deb" && p.LayerIndex != 0 {
			t.Errorf("%s: unchanged package attributed to layer %d", p.Name, p.LayerIndex)
		}
	}
	if got := countType(inv.Packages, "deb"); got != len(all)-len(droppedName) {
		t.Fatalf("%d deb packages, want %d", got, len(all)-len(droppedName))
	}
	removedDeb, removedGo := 0, 0
	for _, p := range inv.Removed {
		if p.RemovedBy != inv.Layers[1].Digest {
			t.Errorf("%s removed by %q, want layer 1", p.Name, p.RemovedBy)
		}
		switch p.Type {
		case "deb":
			removedDeb++
			if _, ok := droppedName[p.Name]; !ok {
				t.Errorf("removed %s, which layer 1 kept", p.Name)
			}
		case "golang":
			removedGo++
		}
	}
	if removedDeb != len(droppedName) || removedGo == 0 {
		t.Fatalf("removed deb=%d go=%d", removedDeb, removedGo)
	}
}

func TestEncodeDecodeLayerAnalysis(t *testing.T) {
	a, _ := sbom.NewAnalyzer()
	tarb := testenv.TarBytes(t, []testenv.File{{Path: "etc/alpine-release", Content: []byte("3.10.4\n")}})
	an, err := a.AnalyzeLayer(ctx, "sha256:x", bytes.NewReader(tarb), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sbom.EncodeLayerAnalysis(an)
	if err != nil {
		t.Fatal(err)
	}
	back, err := sbom.DecodeLayerAnalysis(b)
	if err != nil || back.Meta["etc/alpine-release"] != "3.10.4\n" || back.Analyzer != sbom.AnalyzerVersion {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	if _, err := sbom.DecodeLayerAnalysis([]byte("garbage")); err == nil {
		t.Fatal("garbage decoded")
	}
}
