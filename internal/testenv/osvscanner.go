package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// OSVScanner returns the real osv-scanner binary (.ci/run builds it), or
// skips the test when SOCLE_SKIP_OSV_SCANNER is set.
func OSVScanner(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SOCLE_OSV_SCANNER"); p != "" {
		return p
	}
	if p, err := exec.LookPath("osv-scanner"); err == nil {
		return p
	}
	if os.Getenv("SOCLE_SKIP_OSV_SCANNER") != "" {
		t.Skip("SOCLE_SKIP_OSV_SCANNER is set")
	}
	t.Fatal("osv-scanner not found (.ci/run installs it; set SOCLE_OSV_SCANNER, or SOCLE_SKIP_OSV_SCANNER=1)")
	return ""
}
