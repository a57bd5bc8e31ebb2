package cli_test

import (
	"bufio"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	_ "modernc.org/sqlite"

	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/testenv"
)

// pushHandMade pushes a hand-made image whose only file names i.
func pushHandMade(t *testing.T, host string, i int) string {
	t.Helper()
	img := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "etc/release", Content: []byte(fmt.Sprintf("hand-made %d\n", i))}}))
	ref, _ := name.NewTag(fmt.Sprintf("%s/apps/killed:%d", host, i))
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.Context().Digest(d.String()).String()
}

func tagDigest(t *testing.T, ref string) string {
	t.Helper()
	r, _ := name.ParseReference(ref)
	desc, err := remote.Head(r)
	if err != nil {
		return ""
	}
	return desc.Digest.String()
}

// TestPromotionKilledMidway kills `socle promote` with SIGKILL at random
// moments, many times, then settles what was left: no tag is ever moved
// without its record, nor a record left without its tag. Then it edits
// an audit row by hand in SQLite and `socle audit verify` finds it.
func TestPromotionKilledMidway(t *testing.T) {
	bin := socleBinary(t)
	reg := registrytest.Start(t, registry.Options{})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "socle.yaml")
	// qa keeps its tag in a repository of its own: a copy, then a tag.
	writeFile(t, cfg, `environments:
  - name: dev
  - name: qa
    repository: "{{.Registry}}/qa/{{.Path}}"
`, 0o644)
	token, errOut, code := run(t, dir, "token", "create", "--local", "--role", "admin", "--name", "ci")
	if code != 0 {
		t.Fatalf("token: %s", errOut)
	}
	token = strings.TrimSpace(token)
	socle := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"--data-dir", dir}, args...)...)
		cmd.Env = append(cmd.Environ(), "SOCLE_TOKEN="+token)
		return cmd
	}
	rng := rand.New(rand.NewPCG(1, 2))
	killed, finished, settledDone, settledAborted := 0, 0, 0, 0
	for i := 0; i < 24; i++ {
		img := pushHandMade(t, reg.Host, i)
		for _, env := range []string{"dev", "qa"} {
			// Kill at a random moment, or at a given stage of the tag
			// move (the fault hook pauses there and says so).
			stage := []string{"", "moving", "copied", "tagged"}[rng.IntN(4)]
			cmd := socle("promote", img, "--to", env, "--config", cfg)
			cmd.Env = append(cmd.Env, "SOCLE_FAULT_PROMOTION_PAUSE="+stage)
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			paused := make(chan struct{}, 1)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					if strings.HasPrefix(sc.Text(), "fault: paused at") {
						paused <- struct{}{}
					}
				}
			}()
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var timer <-chan time.Time
			if stage == "" {
				timer = time.After(time.Duration(rng.IntN(120)) * time.Millisecond)
			}
			select {
			case <-done:
				finished++
			case <-paused:
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				killed++
			case <-timer:
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				killed++
			}
			// Settle an interrupted promotion before the next one of the
			// same tag (nothing else runs here).
			out, err := socle("promote", "reconcile", "--stale", "0s", "--config", cfg).CombinedOutput()
			if err != nil {
				t.Fatalf("reconcile: %v\n%s", err, out)
			}
			var d, a int
			fmt.Sscanf(string(out), "%d settled as done, %d aborted", &d, &a)
			settledDone, settledAborted = settledDone+d, settledAborted+a
		}
	}
	t.Logf("%d promotions finished, %d killed; reconciliation settled %d as done (killed after the tag moved), %d as aborted",
		finished, killed, settledDone, settledAborted)

	db, err := sql.Open("sqlite", filepath.Join(dir, "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var moving int
	db.QueryRow(`SELECT COUNT(*) FROM promotions WHERE state = 'moving'`).Scan(&moving)
	if moving != 0 {
		t.Fatalf("%d promotions left moving", moving)
	}
	// For each tag: where it points is the newest done record, and
	// every done record's tag moved (it pointed there when recorded, and
	// the next record of the tag names it as its previous).
	for _, env := range []string{"dev", "qa"} {
		rows, err := db.Query(`SELECT target, digest, previous FROM promotions WHERE environment = ? AND state = 'done' ORDER BY id`, env)
		if err != nil {
			t.Fatal(err)
		}
		var targets, digests, previous []string
		for rows.Next() {
			var tg, d, p string
			rows.Scan(&tg, &d, &p)
			targets, digests, previous = append(targets, tg), append(digests, d), append(previous, p)
		}
		rows.Close()
		if len(digests) == 0 {
			continue
		}
		last := len(digests) - 1
		if got := tagDigest(t, targets[last]+":"+env); got != digests[last] {
			t.Errorf("%s tag at %s, newest record says %s", env, got, digests[last])
		}
		for i := 1; i < len(digests); i++ {
			if previous[i] != "" && previous[i] != digests[i-1] {
				// The tag moved between two records: a move without its
				// record.
				t.Errorf("%s: record %d found the tag at %s, the record before says %s", env, i, previous[i], digests[i-1])
			}
		}
		var deployed string
		db.QueryRow(`SELECT digest FROM deployments_current WHERE environment = ?`, env).Scan(&deployed)
		if deployed != digests[last] {
			t.Errorf("%s: deployment %s, record %s", env, deployed, digests[last])
		}
	}
	out, errOut, code := run(t, dir, "audit", "verify")
	if code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %s %s", out, errOut)
	}
	// An edit by hand: the triggers refuse it, so the editor drops them
	// first, as someone with the database file could.
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'mallory' WHERE seq = 3`); err == nil {
		t.Fatal("the database let the audit log be edited")
	}
	trows, _ := db.Query(`SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'`)
	var triggers []string
	for trows.Next() {
		var n string
		trows.Scan(&n)
		triggers = append(triggers, n)
	}
	trows.Close()
	for _, n := range triggers {
		if _, err := db.Exec(`DROP TRIGGER ` + n); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'mallory' WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = run(t, dir, "audit", "verify")
	if code == 0 || !strings.Contains(errOut, "broken at event 3") {
		t.Fatalf("audit verify after an edit: %d %s", code, errOut)
	}
}

// TestPromoteApproveHistoryCommands drives promote, approve, history,
// rollback and drift from the command line, with tokens of three roles.
func TestPromoteApproveHistoryCommands(t *testing.T) {
	reg := registrytest.Start(t, registry.Options{})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "socle.yaml")
	writeFile(t, cfg, `environments:
  - name: dev
  - name: prod
    roles: [approver, admin]
    gates:
      approvals: 1
`, 0o644)
	tokens := map[string]string{}
	for _, role := range []string{"developer", "approver", "admin"} {
		// --local: this test is the host of the data directory, which has
		// no database yet.
		out, errOut, code := run(t, dir, "token", "create", "--local", "--role", role, "--name", role+"-cli")
		if code != 0 {
			t.Fatalf("token: %s", errOut)
		}
		tokens[role] = strings.TrimSpace(out)
	}
	as := func(role string, args ...string) (string, string, int) {
		return run(t, dir, append(args, "--config", cfg, "--token", tokens[role])...)
	}
	a := pushHandMade(t, reg.Host, 1)
	b := pushHandMade(t, reg.Host, 2)
	if _, errOut, code := run(t, dir, "promote", a, "--to", "dev", "--config", cfg); code != 2 || !strings.Contains(errOut, "--token") {
		t.Fatalf("without a token: %d %s", code, errOut)
	}
	for _, img := range []string{a, b} {
		if out, errOut, code := as("developer", "promote", img, "--to", "dev"); code != 0 || !strings.Contains(out, "promotion") {
			t.Fatalf("dev: %d %s %s", code, out, errOut)
		}
	}
	if _, errOut, code := as("developer", "promote", a, "--to", "prod"); code == 0 || !strings.Contains(errOut, "may not promote to prod") {
		t.Fatalf("developer to prod: %d %s", code, errOut)
	}
	for i, img := range []string{a, b} {
		out, _, code := as("admin", "promote", img, "--to", "prod")
		if code != 0 || !strings.Contains(out, "awaits approval") {
			t.Fatalf("prod request: %d %s", code, out)
		}
		id := strings.Fields(out[strings.Index(out, "socle approve ")+len("socle approve "):])[0]
		if list, _, _ := run(t, dir, "promote", "list", "--state", "awaiting-approval"); !strings.Contains(list, "\n"+id+" ") {
			t.Fatalf("promote list does not show %s:\n%s", id, list)
		}
		if _, errOut, code := as("developer", "approve", id); code == 0 || !strings.Contains(errOut, "forbidden") {
			t.Fatalf("developer approval: %d %s", code, errOut)
		}
		out, errOut, code := as("approver", "approve", id)
		if code != 0 || !strings.Contains(out, "→ sha256:") {
			t.Fatalf("approval %d: %d %s %s", i, code, out, errOut)
		}
	}
	if got := tagDigest(t, reg.Host+"/apps/killed:prod"); !strings.HasSuffix(b, got) {
		t.Fatalf("prod at %s, want %s", got, b)
	}
	out, _, _ := as("admin", "rollback", reg.Host+"/apps/killed", "--env", "prod", "--override", "--note", "bad release")
	if !strings.Contains(out, "override") {
		t.Fatalf("rollback: %s", out)
	}
	if got := tagDigest(t, reg.Host+"/apps/killed:prod"); !strings.HasSuffix(a, got) {
		t.Fatalf("after rollback prod at %s, want %s", got, a)
	}
	out, _, code := run(t, dir, "history", reg.Host+"/apps/killed", "--config", cfg)
	if code != 0 || !strings.Contains(out, "rollback (override)") || strings.Count(out, "done") < 5 {
		t.Fatalf("history:\n%s", out)
	}
	out, _, code = run(t, dir, "drift", "--config", cfg)
	if code != 0 || !strings.Contains(out, "no drift") {
		t.Fatalf("drift: %d %s", code, out)
	}
}
