package cli_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestAuditCheckpointsThroughServe: socle serve signs a checkpoint of the
// audit log at start, and on demand (socle audit checkpoint, admin);
// socle audit verify checks them; once the log's tail is deleted (the
// triggers dropped first), verify fails and says so.
func TestAuditCheckpointsThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the socle binary")
	}
	dataDir := t.TempDir()
	srv := startServe(t, dataDir)
	t.Setenv("SOCLE_SERVER", "http://"+srv.api)
	t.Setenv("SOCLE_TOKEN", srv.token)
	// Some events: tokens made through the command line.
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, errOut, code := run(t, dataDir, "token", "create", "--user", u, "--role", "viewer"); code != 0 {
			t.Fatalf("token: %s", errOut)
		}
	}
	out, errOut, code := run(t, dataDir, "audit", "checkpoint")
	if code != 0 || !strings.Contains(out, "checkpoint at event") {
		t.Fatalf("audit checkpoint: %d %s %s", code, out, errOut)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		matches, _ := filepath.Glob(filepath.Join(dataDir, "audit-checkpoints", "checkpoint-*.json"))
		if len(matches) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Verified through the API, as an auditor away from the database
	// would: the checkpoints and the public key are the auditor's own.
	verify := []string{"audit", "verify", "--checkpoints", filepath.Join(dataDir, "audit-checkpoints"), "--key", filepath.Join(dataDir, "keys", "socle.pub")}
	if _, errOut, code := run(t, dataDir, "audit", "verify"); code != 2 || !strings.Contains(errOut, "--checkpoints") {
		t.Fatalf("a remote verify without the auditor's checkpoints and key: %d %s", code, errOut)
	}
	out, errOut, code = run(t, dataDir, verify...)
	if code != 0 || !strings.Contains(out, "intact") || strings.Contains(out, " 0 checkpoints") {
		t.Fatalf("audit verify: %d %s %s", code, out, errOut)
	}
	db, err := sql.Open("sqlite", filepath.Join(dataDir, "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{"DROP TRIGGER audit_log_no_delete", "DELETE FROM audit_log WHERE seq > 2"} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	_, errOut, code = run(t, dataDir, verify...)
	if code == 0 || !strings.Contains(errOut, "is no longer in the log") {
		t.Fatalf("audit verify after the tail was deleted: %d %s", code, errOut)
	}
}
