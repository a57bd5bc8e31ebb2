package layer_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/layer"
	"github.com/socle-dev/socle/internal/testenv"
)

// fuzzLimits keep each input cheap: a fuzzer finds sparse files that
// claim gigabytes.
var fuzzLimits = layer.Limits{MaxTotalSize: 1 << 22, MaxFileSize: 1 << 22, MaxEntries: 1000}

func seedLayers(f *testing.F) {
	f.Add(testenv.TarBytes(f, []testenv.File{{Path: "etc/os-release", Content: []byte("ID=alpine\n")}, {Path: "etc/.wh.x"}}))
	f.Add(testenv.TarBytes(f, []testenv.File{{Path: "a", Link: "../../x"}, {Path: "a/b", Content: []byte("x")}}))
	f.Add(testenv.TarBytes(f, []testenv.File{{Path: "../x", Content: []byte("x")}}))
	f.Add(testenv.TarBytes(f, []testenv.File{{Path: "d/.wh..wh..opq"}, {Path: "h", Hardlink: "d/x"}}))
	f.Add([]byte("not a tar"))
}

// FuzzWalk: any byte stream either walks or fails with an error; every
// reported path is clean and inside the root.
func FuzzWalk(f *testing.F) {
	seedLayers(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		v := &checker{t: t}
		_ = layer.Walk(bytes.NewReader(data), int64(len(data)), fuzzLimits, v)
	})
}

type checker struct{ t *testing.T }

func (c *checker) check(p string) {
	if p == "" || strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") {
		c.t.Fatalf("unsafe path reported: %q", p)
	}
}

func (c *checker) Entry(e *layer.Entry, content io.Reader) error {
	c.check(e.Path)
	if e.Kind == layer.KindHardlink {
		c.check(e.Link)
	}
	if content != nil {
		_, err := io.Copy(io.Discard, content)
		return err
	}
	return nil
}

func (c *checker) Whiteout(w layer.Whiteout) error {
	if !w.Opaque || w.Path != "" {
		c.check(w.Path)
	}
	return nil
}

// FuzzExtract: extracting any stream never creates anything outside
// the root directory.
func FuzzExtract(f *testing.F) {
	seedLayers(f)
	// One directory for every input, emptied each time: a fresh random
	// temporary directory per input would make the coverage the fuzzer
	// sees change from run to run.
	base := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(base, "root")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(dir, 0o755)
		root, err := os.OpenRoot(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		_ = layer.Extract(bytes.NewReader(data), int64(len(data)), fuzzLimits, root)
		entries, _ := os.ReadDir(base)
		if len(entries) != 1 {
			t.Fatalf("extraction escaped its root: %v", entries)
		}
	})
}
