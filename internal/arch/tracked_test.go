package arch_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// maxTracked is the largest file Git may hold outside a testdata folder:
// anything bigger is a build output, a database or data that belongs in
// ../shared/data.
const maxTracked = 1 << 20

// TestTrackedFiles fails on any tracked file over 1 MB outside testdata/,
// on tracked executables (an ELF or Mach-O header, or the executable bit
// outside scripts) and on tracked databases.
func TestTrackedFiles(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a Git checkout: %v", err)
	}
	root := strings.TrimSpace(string(top))
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if f == "" {
			continue
		}
		if problem := trackedProblem(filepath.Join(root, f), f); problem != "" {
			t.Errorf("%s is tracked by Git: %s", f, problem)
		}
	}
}

// trackedProblem says why a tracked file does not belong in Git, or "".
func trackedProblem(path, rel string) string {
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return "" // deleted in the work tree, or a symbolic link
	}
	inTestdata := strings.Contains("/"+filepath.ToSlash(rel), "/testdata/")
	if fi.Size() > maxTracked && !inTestdata {
		return "over 1 MB outside testdata/ (a build output or data: ignore it or move it to the shared data)"
	}
	for _, ext := range []string{".db", ".db-wal", ".db-shm", ".sqlite"} {
		if strings.HasSuffix(rel, ext) {
			return "a database"
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := f.Read(head)
	head = head[:n]
	for _, magic := range [][]byte{{0x7f, 'E', 'L', 'F'}, {0xcf, 0xfa, 0xed, 0xfe}, {'M', 'Z'}} {
		if bytes.HasPrefix(head, magic) && !inTestdata {
			return "a compiled executable"
		}
	}
	return ""
}

// TestTrackedProblem checks the rule on hand-made files.
func TestTrackedProblem(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	big := make([]byte, maxTracked+1)
	cases := []struct {
		name string
		data []byte
		bad  bool
	}{
		{"main.go", []byte("package main\n"), false},
		{"fleet", append([]byte{0x7f, 'E', 'L', 'F'}, 0, 0), true},
		{"data/socle.db", []byte("SQLite format 3\x00"), true},
		{"big.json", big, true},
		{"internal/x/testdata/big.json", big, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := trackedProblem(write(c.name, c.data), c.name)
			if (got != "") != c.bad {
				t.Errorf("trackedProblem(%s) = %q, want a problem: %v", c.name, got, c.bad)
			}
		})
	}
}
