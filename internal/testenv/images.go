package testenv

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of a layer built for a test. Layers built from
// Files are hand-made: their content is either copied from the shared
// data or written in the test, which must say so.
type File struct {
	Path    string
	Content []byte
	Mode    int64
	// Link makes a symbolic link; Hardlink a hard link.
	Link     string
	Hardlink string
	Dir      bool
	// Raw keeps Path exactly as given (for unsafe-name tests).
	Raw bool
}

// epoch is the fixed time of every test layer entry.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// TarBytes writes files as an uncompressed tar stream.
func TarBytes(t testing.TB, files []File) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.Path, ModTime: epoch, Mode: f.Mode, Format: tar.FormatPAX}
		switch {
		case f.Dir:
			h.Typeflag = tar.TypeDir
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
			h.Mode = 0o777
		case f.Hardlink != "":
			h.Typeflag, h.Linkname = tar.TypeLink, f.Hardlink
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Content))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Content); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Layer builds a gzip-compressed layer from files.
func Layer(t testing.TB, files []File) v1.Layer {
	t.Helper()
	b := TarBytes(t, files)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Image stacks layers on an empty linux/amd64 image.
func Image(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// ReadShared reads a file of the shared data.
func ReadShared(t testing.TB, rel ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(SharedData(t, rel...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// DebianBaseFiles returns the real bookworm minbase package database and
// OS identification files from the shared data, as layer entries.
func DebianBaseFiles(t testing.TB) []File {
	t.Helper()
	root := filepath.Join("debian", "bookworm-minbase-rootfs")
	return []File{
		{Path: "etc/", Dir: true},
		{Path: "etc/os-release", Content: ReadShared(t, root, "etc", "os-release")},
		{Path: "etc/debian_version", Content: ReadShared(t, root, "etc", "debian_version")},
		{Path: "var/lib/dpkg/status", Content: ReadShared(t, root, "var", "lib", "dpkg", "status")},
	}
}

// GoBinaryFile returns the real Go binary of the shared data as an
// executable at path.
func GoBinaryFile(t testing.TB, path string) File {
	t.Helper()
	return File{Path: path, Content: ReadShared(t, "gobin", "age-keygen"), Mode: 0o755}
}

// LayerFiles lists the paths of every entry in every layer of img.
func LayerFiles(t testing.TB, img v1.Image) map[string]bool {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = true
		}
		rc.Close()
	}
	return out
}

// FileContent returns the content of a regular file of img's flattened
// filesystem, failing the test when there is none.
func FileContent(t testing.TB, img v1.Image, path string) []byte {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("the image has no file %s", path)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "./") == path && h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// ForgeDiffID returns img with its config claiming diffID for layer i:
// an attacker's image, whose config lies about a layer's content. The
// manifest still names the real layer blob.
func ForgeDiffID(t testing.TB, img v1.Image, i int, diffID v1.Hash) v1.Image {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.RootFS.DiffIDs[i] = diffID
	forged, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return forged
}

// DiffID returns the real DiffID of a layer.
func DiffID(t testing.TB, l v1.Layer) v1.Hash {
	t.Helper()
	d, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// NPMPackage is a hand-made layer holding one npm package.json: name at
// version, under app/node_modules.
func NPMPackage(t testing.TB, name, version string) v1.Layer {
	t.Helper()
	return Layer(t, []File{{Path: "app/node_modules/" + name + "/package.json", Content: []byte(`{"name":"` + name + `","version":"` + version + `"}`)}})
}
