package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Cosign returns the real cosign binary (.ci/run builds it), or skips
// the test when SOCLE_SKIP_COSIGN is set.
func Cosign(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SOCLE_COSIGN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	if os.Getenv("SOCLE_SKIP_COSIGN") != "" {
		t.Skip("SOCLE_SKIP_COSIGN is set")
	}
	t.Fatal("cosign not found (.ci/run installs it; set SOCLE_COSIGN, or SOCLE_SKIP_COSIGN=1)")
	return ""
}

// RunCosign runs cosign with the tests' key password, non-interactive,
// in a home of its own, and returns its output.
func RunCosign(t testing.TB, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=test password", "COSIGN_YES=true", "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}
