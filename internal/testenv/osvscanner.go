package testenv

import "testing"

// OSVScanner returns the real osv-scanner binary (.ci/run builds it).
func OSVScanner(t testing.TB) string { return PeerTool(t, "osv-scanner") }
