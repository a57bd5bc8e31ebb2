package audit_test

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	_ "modernc.org/sqlite"

	"github.com/socle-dev/socle/internal/audit"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
)

var ctx = context.Background()

// logFixture is a real SQLite audit log with events, checkpoints in a
// directory, and the key that signs them (generated in the test).
type logFixture struct {
	path string
	st   store.Store
	cp   *audit.Checkpointer
	keys []*sign.Verifier
}

func newLog(t *testing.T, sink audit.Sink) *logFixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socle.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kp, err := sign.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sign.LoadSigner(kp.Private, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := sign.LoadVerifier("checkpoint.pub", kp.Public)
	if sink == nil {
		sink = audit.DirSink{Dir: filepath.Join(t.TempDir(), "checkpoints")}
	}
	return &logFixture{path: path, st: st, cp: &audit.Checkpointer{Log: st, Signer: signer, Sink: sink}, keys: []*sign.Verifier{v}}
}

func (f *logFixture) append(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := f.st.AppendAudit(ctx, store.AuditEvent{Actor: "alice", Action: "promotion.done", Subject: fmt.Sprintf("app@%d", i), Details: []byte(`{"env":"prod"}`)}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *logFixture) checkpoint(t *testing.T) {
	t.Helper()
	if _, err := f.cp.Checkpoint(ctx, "test"); err != nil {
		t.Fatal(err)
	}
}

func (f *logFixture) verify(t *testing.T) audit.Report {
	t.Helper()
	cps, err := f.cp.Sink.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(ctx, f.st, cps, f.keys)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// tamper runs SQL on the database file directly, as someone with access
// to it would, after dropping the append-only triggers.
func (f *logFixture) tamper(t *testing.T, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{"DROP TRIGGER IF EXISTS audit_log_no_update", "DROP TRIGGER IF EXISTS audit_log_no_delete"}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func wantProblem(t *testing.T, rep audit.Report, words string) {
	t.Helper()
	for _, p := range rep.Problems {
		if strings.Contains(p, words) {
			return
		}
	}
	t.Fatalf("verification did not find %q: %+v", words, rep)
}

func TestIntactLogVerifies(t *testing.T) {
	f := newLog(t, nil)
	f.append(t, 20)
	f.checkpoint(t)
	f.append(t, 5)
	f.checkpoint(t)
	rep := f.verify(t)
	if !rep.OK() || rep.Checkpoints != 2 || rep.Events != 27 {
		t.Fatalf("%+v", rep)
	}
}

// TestTailDeletionIsDetected: with the triggers dropped, the last events
// are deleted; the chain alone still verifies, the checkpoint does not.
func TestTailDeletionIsDetected(t *testing.T) {
	f := newLog(t, nil)
	f.append(t, 30)
	f.checkpoint(t)
	f.tamper(t, "DELETE FROM audit_log WHERE seq > 25")
	wantProblem(t, f.verify(t), "is no longer in the log")
}

// TestChainRewriteIsDetected: an event is changed and every hash after
// it recomputed, so the chain verifies; the checkpointed head does not.
func TestChainRewriteIsDetected(t *testing.T) {
	f := newLog(t, nil)
	f.append(t, 30)
	f.checkpoint(t)
	evs, _ := f.st.AuditEvents(ctx, 0, 1000)
	var stmts []string
	prev := ""
	for _, ev := range evs {
		if ev.Seq == 10 {
			ev.Actor = "mallory"
		}
		ev.PrevHash = prev
		ev.Hash = store.AuditHash(ev)
		prev = ev.Hash
		stmts = append(stmts, fmt.Sprintf("UPDATE audit_log SET actor = '%s', prev_hash = '%s', hash = '%s' WHERE seq = %d", ev.Actor, ev.PrevHash, ev.Hash, ev.Seq))
	}
	f.tamper(t, stmts...)
	rep := f.verify(t)
	for _, p := range rep.Problems {
		if strings.Contains(p, "broken") {
			t.Fatalf("the rewritten chain should verify on its own: %v", p)
		}
	}
	wantProblem(t, rep, "does not have the hash it was checkpointed with")
}

// TestRowEditIsDetected: editing one row breaks the chain, as before.
func TestRowEditIsDetected(t *testing.T) {
	f := newLog(t, nil)
	f.append(t, 10)
	f.tamper(t, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 4")
	wantProblem(t, f.verify(t), "audit log broken at event 4")
}

// TestForgedAndReusedCheckpoints: a checkpoint signed by another key, or
// one whose content was edited, does not count; two checkpoints of one
// sequence number with different heads are reported.
func TestForgedAndReusedCheckpoints(t *testing.T) {
	f := newLog(t, nil)
	f.append(t, 10)
	f.checkpoint(t)
	cps, _ := f.cp.Sink.List(ctx)
	edited := cps[0]
	edited.Head = strings.Repeat("0", 64)
	other := newLog(t, nil)
	other.append(t, 10)
	other.checkpoint(t)
	theirs, _ := other.cp.Sink.List(ctx)
	rep, _ := audit.Verify(ctx, f.st, append(cps, edited, theirs[0]), f.keys)
	wantProblem(t, rep, "does not verify with the trusted keys")
	// The trusted key signing two heads for one event: the log was
	// rewritten after a checkpoint and checkpointed again.
	forked := cps[0]
	forked.Head = strings.Repeat("1", 64)
	sig, _ := f.cp.Signer.SignBytes(forked.Payload())
	forked.Signature = base64.StdEncoding.EncodeToString(sig)
	rep, _ = audit.Verify(ctx, f.st, append(cps, forked), f.keys)
	wantProblem(t, rep, "checkpointed with two different hashes")
}

// TestHTTPAndOCISinks: checkpoints go to an HTTP endpoint and to a
// registry as artifacts, and verify from there.
func TestHTTPAndOCISinks(t *testing.T) {
	var mu sync.Mutex
	var kept []json.RawMessage
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			kept = append(kept, b)
			w.WriteHeader(http.StatusCreated)
			return
		}
		json.NewEncoder(w).Encode(kept)
	}))
	defer endpoint.Close()
	reg := registrytest.Start(t, registry.Options{})
	repo, _ := name.NewRepository(reg.Host + "/audit/checkpoints")
	for _, sink := range []audit.Sink{
		audit.HTTPSink{URL: endpoint.URL, Client: endpoint.Client()},
		audit.OCISink{Repo: repo},
	} {
		t.Run(sink.String(), func(t *testing.T) {
			f := newLog(t, sink)
			f.append(t, 12)
			f.checkpoint(t)
			f.append(t, 3)
			f.checkpoint(t)
			if rep := f.verify(t); !rep.OK() || rep.Checkpoints != 2 {
				t.Fatalf("%+v", rep)
			}
			f.tamper(t, "DELETE FROM audit_log WHERE seq > 14")
			wantProblem(t, f.verify(t), "is no longer in the log")
		})
	}
}

// TestConfigLoads: each start records the configuration's digest, and
// says when it differs from the previous start's.
func TestConfigLoads(t *testing.T) {
	f := newLog(t, nil)
	// Hand-made configurations: one empty, one with a webhook.
	a, err := config.Parse("socle.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Parse("socle.yaml", []byte("webhooks:\n  - url: https://hooks.test.invalid/socle\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*config.File{a, a, b} {
		if err := audit.RecordConfig(ctx, f.st, c.Path(), c.Digest(), "socle serve test"); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := f.st.AuditEvents(ctx, 0, 100)
	var changed []bool
	for _, e := range evs {
		if e.Action != audit.ConfigLoad {
			continue
		}
		var d struct {
			Digest, Previous string
			Changed          bool
		}
		json.Unmarshal(e.Details, &d)
		if e.Subject != "socle.yaml" || !strings.HasPrefix(d.Digest, "sha256:") {
			t.Fatalf("config event: %+v %s", e, e.Details)
		}
		changed = append(changed, d.Changed)
	}
	if fmt.Sprint(changed) != "[true false true]" || a.Digest() == b.Digest() {
		t.Fatalf("changed flags %v", changed)
	}
	if rep := f.verify(t); !rep.OK() {
		t.Fatalf("verify: %+v", rep)
	}
}
