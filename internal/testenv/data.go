package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// SharedData returns the path of a file or directory in the shared test
// data, failing the test if it is not there.
func SharedData(t testing.TB, rel ...string) string {
	t.Helper()
	root := sharedDataRoot()
	if root == "" {
		t.Fatalf("shared test data not found: set SOCLE_SHARED_DATA or check out the repository next to shared/data")
	}
	p := filepath.Join(append([]string{root}, rel...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shared test data: %v", err)
	}
	return p
}

func sharedDataRoot() string {
	if d := os.Getenv("SOCLE_SHARED_DATA"); d != "" {
		return d
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	// Walk up from this file: the data sits in shared/data beside the
	// repository (../shared/data from its root) or above it.
	for dir := filepath.Dir(file); ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "shared", "data")
		if fi, err := os.Stat(filepath.Join(cand, "MANIFEST.txt")); err == nil && !fi.IsDir() {
			return cand
		}
		if parent := filepath.Dir(dir); parent == dir {
			return ""
		}
	}
}

// RepoRoot returns the root of the socle module.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Step is one named step of an end-to-end test.
type Step struct {
	Name string
	Run  func(t *testing.T)
}

// RunSteps runs steps in order as subtests, so that a failure names its
// step; a failed step stops the ones after it, which build on it.
func RunSteps(t *testing.T, steps []Step) {
	t.Helper()
	for _, s := range steps {
		if !t.Run(s.Name, s.Run) {
			t.FailNow()
		}
	}
}
