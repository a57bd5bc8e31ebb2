package mutate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/mutate"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/testenv"
)

var ctx = context.Background()

func TestAppendAndRebase(t *testing.T) {
	// A hand-made parent and a directory of files to add (the real Go
	// binary and a hand-made config file).
	oldBase := testenv.Image(t, testenv.Layer(t, testenv.DebianBaseFiles(t)))
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin", "age-keygen"), testenv.ReadShared(t, "gobin", "age-keygen"), 0o755)
	os.WriteFile(filepath.Join(dir, "app.conf"), []byte("hand-made=1\n"), 0o644)
	os.Symlink("bin/age-keygen", filepath.Join(dir, "run"))
	spec := mutate.AppendSpec{
		Layers: []mutate.AppendLayer{{From: dir, To: "/opt/app"}, {From: filepath.Join(dir, "app.conf"), To: "/etc/app/"}},
		Config: mutate.Config{Entrypoint: []string{"/opt/app/run"}, Env: map[string]string{"APP_HOME": "/opt/app"}, User: "65532"},
		Epoch:  time.Unix(1700000000, 0),
	}
	img, err := mutate.Append(ctx, mutate.Base{Image: oldBase, Name: "test/base:1"}, spec)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := mutate.Append(ctx, mutate.Base{Image: oldBase, Name: "test/base:1"}, spec)
	d1, _ := img.Digest()
	d2, _ := again.Digest()
	if d1 != d2 {
		t.Fatal("the same append gave two digests")
	}
	files := testenv.LayerFiles(t, img)
	for _, want := range []string{"opt/app/bin/age-keygen", "opt/app/run", "etc/app/app.conf", "var/lib/dpkg/status"} {
		if !files[want] {
			t.Errorf("image lacks %s", want)
		}
	}
	mf, _ := img.Manifest()
	od, _ := oldBase.Digest()
	if mf.Annotations[oci.AnnotationBaseDigest] != od.String() || mf.Annotations[oci.AnnotationBaseName] != "test/base:1" {
		t.Fatalf("annotations %v", mf.Annotations)
	}
	cfg, _ := img.ConfigFile()
	if strings.Join(cfg.Config.Entrypoint, " ") != "/opt/app/run" || cfg.Config.User != "65532" {
		t.Fatalf("config %+v", cfg.Config)
	}

	// Rebase onto a new base (hand-made): the app layers move, the base
	// annotations follow.
	newBase := testenv.Image(t, testenv.Layer(t, append(testenv.DebianBaseFiles(t), testenv.File{Path: "etc/patched", Content: []byte("hand-made")})))
	rebased, err := mutate.Rebase(img, oldBase, mutate.Base{Image: newBase, Name: "test/base:2"})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := mutate.LayersPrefix(newBase, rebased); !ok {
		t.Fatal("the new base is not under the rebased image")
	}
	rf := testenv.LayerFiles(t, rebased)
	if !rf["etc/patched"] || !rf["opt/app/bin/age-keygen"] {
		t.Fatal("rebased image lost files")
	}
	rm, _ := rebased.Manifest()
	nd, _ := newBase.Digest()
	if rm.Annotations[oci.AnnotationBaseDigest] != nd.String() || rm.Annotations[oci.AnnotationBaseName] != "test/base:2" {
		t.Fatalf("rebased annotations %v", rm.Annotations)
	}
	// Rebasing from a base the image was not built on is refused.
	if _, err := mutate.Rebase(img, newBase, mutate.Base{Image: oldBase}); err == nil {
		t.Fatal("rebase from the wrong base accepted")
	}
}

func TestAppendRefusesEscapingLinks(t *testing.T) {
	dir := t.TempDir()
	os.Symlink("/etc/shadow", filepath.Join(dir, "evil"))
	base := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "hand-made", Content: []byte("x")}}))
	_, err := mutate.Append(ctx, mutate.Base{Image: base}, mutate.AppendSpec{Layers: []mutate.AppendLayer{{From: dir, To: "/opt"}}})
	if err == nil || !strings.Contains(err.Error(), "absolute symbolic link") {
		t.Fatalf("err = %v", err)
	}
	if _, err := mutate.Append(ctx, mutate.Base{Image: base}, mutate.AppendSpec{Layers: []mutate.AppendLayer{{From: dir, To: "relative"}}}); err == nil {
		t.Fatal("relative destination accepted")
	}
}

// TestDockerfileBuilderDetection: where BuildKit or a docker engine
// exists, a build runs; elsewhere detection says why not, clearly.
func TestDockerfileBuilderDetection(t *testing.T) {
	b, err := mutate.DetectDockerfileBuilder(ctx, "")
	if err != nil {
		if !errors.Is(err, mutate.ErrNoBuilder) || !strings.Contains(err.Error(), "docker") || !strings.Contains(err.Error(), "buildctl") {
			t.Fatalf("detection error does not explain itself: %v", err)
		}
		t.Skipf("no Dockerfile builder on this machine: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY f /f\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "f"), []byte("hand-made"), 0o644)
	img, err := b.Build(ctx, mutate.DockerfileSpec{Context: dir, Annotations: map[string]string{oci.AnnotationBaseName: "scratch"}})
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("built image has %d layers (%v), want the one COPY", len(layers), err)
	}
}
