package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// PeerTool returns a real peer tool .ci/run builds (SOCLE_NAME, or NAME
// on the PATH), or skips the test when SOCLE_SKIP_NAME is set.
func PeerTool(t testing.TB, name string) string {
	t.Helper()
	env := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	if p := os.Getenv("SOCLE_" + env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("SOCLE_SKIP_"+env) != "" {
		t.Skip("SOCLE_SKIP_" + env + " is set")
	}
	t.Fatalf("%s not found (.ci/run installs it; set SOCLE_%s, or SOCLE_SKIP_%s=1)", name, env, env)
	return ""
}
