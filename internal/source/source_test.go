package source_test

import (
	"archive/tar"
	"bytes"
	"context"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/testenv"
)

var ctx = context.Background()

func open(t *testing.T, ref string) *source.Image {
	t.Helper()
	r, err := oci.ParseImageRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := source.Open(ctx, r, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func diffIDs(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.RootFS.DiffIDs
}

func TestDockerArchiveGzip(t *testing.T) {
	img := open(t, "docker-archive:"+testenv.SharedData(t, "images", "alpine-310.tar.gz"))
	if img.Repository != "alpine" || img.Tag != "3.10" {
		t.Fatalf("repository/tag = %q/%q, want RepoTags as written", img.Repository, img.Tag)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v %v", len(layers), err)
	}
	// docker save layers are uncompressed: their digest is their DiffID,
	// and the content hashes to it.
	d, _ := layers[0].Digest()
	rc, _ := layers[0].Uncompressed()
	h, _, err := v1.SHA256(rc)
	rc.Close()
	if err != nil || h != diffIDs(t, img)[0] || d != h {
		t.Fatalf("layer digest %s, content %s, diff id %s", d, h, diffIDs(t, img)[0])
	}
	if _, err := img.Manifest(); err != nil {
		t.Fatal(err)
	}
}

func TestHelloWorldBothLayouts(t *testing.T) {
	tarPath := testenv.SharedData(t, "images", "hello-world-v25.tar")
	fromArchive := open(t, "docker-archive:"+tarPath)
	// The file also carries an OCI layout whose index lists no manifest:
	// opening it says so.
	dir := t.TempDir()
	untar(t, tarPath, dir)
	r, _ := oci.ParseImageRef("oci:" + dir)
	if _, err := source.Open(ctx, r, source.Options{}); err == nil || !strings.Contains(err.Error(), "holds no image") {
		t.Fatalf("empty layout: %v", err)
	}
	// Written into a fresh layout, the image reads back the same.
	out := t.TempDir()
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(fromArchive); err != nil {
		t.Fatal(err)
	}
	fromLayout := open(t, "oci:"+out)
	a, b := diffIDs(t, fromArchive), diffIDs(t, fromLayout)
	if len(a) != 1 || a[0] != b[0] {
		t.Fatalf("archive diff ids %v, layout %v", a, b)
	}
}

func untar(t *testing.T, path, dir string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		var buf bytes.Buffer
		buf.ReadFrom(tr)
		os.WriteFile(p, buf.Bytes(), 0o644)
	}
}

// TestOCILayoutSelection writes a layout of two hand-made images and
// picks each by tag and by digest.
func TestOCILayoutSelection(t *testing.T) {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	imgs := map[string]v1.Image{}
	for _, tag := range []string{"one", "two"} {
		img := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: tag, Content: []byte(tag)}}))
		imgs[tag] = img
		if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := oci.ParseImageRef("oci:" + dir)
	if _, err := source.Open(ctx, r, source.Options{}); err == nil || !strings.Contains(err.Error(), "holds 2 images") {
		t.Fatalf("ambiguous layout: %v", err)
	}
	for tag, want := range imgs {
		wd, _ := want.Digest()
		for _, ref := range []string{"oci:" + dir + ":" + tag, "oci:" + dir + "@" + wd.String()} {
			got := open(t, ref)
			gd, _ := got.Digest()
			if gd != wd {
				t.Fatalf("%s: digest %s, want %s", ref, gd, wd)
			}
		}
	}
	r, _ = oci.ParseImageRef("oci:" + dir + ":three")
	if _, err := source.Open(ctx, r, source.Options{}); err == nil || !strings.Contains(err.Error(), "has no image") {
		t.Fatalf("missing tag: %v", err)
	}
}

// TestRegistry pushes a hand-made multi-platform index into an in-process
// registry and opens one platform.
func TestRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	amd := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "arch", Content: []byte("amd64")}}))
	armCfg, _ := amd.ConfigFile()
	armCfg = armCfg.DeepCopy()
	armCfg.Architecture = "arm64"
	arm, _ := mutate.ConfigFile(testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "arch", Content: []byte("arm64")}})), armCfg)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	ref, _ := name.ParseReference(host + "/team/app:1.0")
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	r, _ := oci.ParseImageRef(host + "/team/app:1.0")
	img, err := source.Open(ctx, r, source.Options{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	gd, _ := img.Digest()
	wd, _ := arm.Digest()
	id, _ := idx.Digest()
	if gd != wd || img.Index != id.String() || img.Tag != "1.0" || !strings.HasSuffix(img.Repository, "team/app") {
		t.Fatalf("opened %s (index %s, %s:%s), want %s", gd, img.Index, img.Repository, img.Tag, wd)
	}
	u, _ := url.Parse(srv.URL)
	r, _ = oci.ParseImageRef(u.Host + "/team/missing:1")
	if _, err := source.Open(ctx, r, source.Options{}); err == nil {
		t.Fatal("missing repository opened")
	}
}

func archiveWith(t *testing.T, files []testenv.File) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(p, testenv.TarBytes(t, files), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDockerArchiveErrors(t *testing.T) {
	img := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "x", Content: []byte("x")}}))
	good := filepath.Join(t.TempDir(), "good.tar")
	tag, _ := name.NewTag("hand/made:1")
	if err := tarball.WriteToFile(good, tag, img); err != nil {
		t.Fatal(err)
	}
	if got := open(t, "docker-archive:"+good+":1"); got.Repository != "hand/made" {
		t.Fatalf("repository = %q", got.Repository)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"no manifest", archiveWith(t, []testenv.File{{Path: "x", Content: []byte("x")}}), "not a docker save tarball"},
		{"bad json", archiveWith(t, []testenv.File{{Path: "manifest.json", Content: []byte("{")}}), "manifest.json"},
		{"empty list", archiveWith(t, []testenv.File{{Path: "manifest.json", Content: []byte("[]")}}), "lists no image"},
		{"escaping layer", archiveWith(t, []testenv.File{{Path: "manifest.json", Content: []byte(`[{"Config":"c.json","Layers":["../../etc/passwd"]}]`)}}), "unsafe path"},
		{"missing config", archiveWith(t, []testenv.File{{Path: "manifest.json", Content: []byte(`[{"Config":"c.json","Layers":["l.tar"]}]`)}}), "no file"},
		{"not a tar", filepath.Join(testenv.RepoRoot(t), "go.mod"), "docker archive"},
		{"unknown tag", good + ":2", "has no image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := oci.ParseImageRef("docker-archive:" + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = source.Open(ctx, r, source.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
