package mutate

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// TestLoadOCIArchive reads back an OCI layout tarball, the output both
// docker buildx and buildctl give with type=oci, here written by
// go-containerregistry from a random (hand-made) image.
func TestLoadOCIArchive(t *testing.T) {
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lp, err := layout.Write(filepath.Join(dir, "src"), empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(archive, tarDir(t, filepath.Join(dir, "src")), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := loadOCIArchive(archive, filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Fatalf("loaded %s, wrote %s", d, want)
	}
	// Two images in one archive is not a build's output.
	img2, _ := random.Image(64, 1)
	if err := lp.AppendImage(mutate.MediaType(img2, "application/vnd.oci.image.manifest.v1+json")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(archive, tarDir(t, filepath.Join(dir, "src")), 0o644)
	if _, err := loadOCIArchive(archive, filepath.Join(dir, "out2")); err == nil {
		t.Fatal("an archive of two images was accepted")
	}
}

func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.AddFS(os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	return buf.Bytes()
}
