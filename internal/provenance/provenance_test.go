package provenance_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/socle-dev/socle/internal/provenance"
)

// TestDirDigest: the digest of a (hand-made) context follows its content
// and modes, not where it is.
func TestDirDigest(t *testing.T) {
	write := func(dir string, mode os.FileMode, content string) string {
		os.MkdirAll(filepath.Join(dir, "src"), 0o755)
		os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "src", "main.sh"), []byte(content), mode)
		os.Symlink("src/main.sh", filepath.Join(dir, "run"))
		d, err := provenance.DirDigest(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a := write(t.TempDir(), 0o755, "echo hi\n")
	b := write(t.TempDir(), 0o755, "echo hi\n")
	if a != b {
		t.Fatalf("the same tree in two places: %s, %s", a, b)
	}
	if c := write(t.TempDir(), 0o755, "echo bye\n"); c == a {
		t.Fatal("a changed file kept the digest")
	}
	if c := write(t.TempDir(), 0o644, "echo hi\n"); c == a {
		t.Fatal("a changed mode kept the digest")
	}
	if _, err := provenance.DirDigest(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing context has a digest")
	}
}
