package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

// warmRecorder is a real store that records when it was warmed.
type warmRecorder struct {
	store.Store
	conns atomic.Int64
}

func (w *warmRecorder) Warm(ctx context.Context, conns int) error {
	w.conns.Store(int64(conns))
	return w.Store.Warm(ctx, conns)
}

// TestServeWarmsStoreFirst checks that socle serve readies its store
// before it answers anything: the first /readyz answer finds it warmed.
func TestServeWarmsStoreFirst(t *testing.T) {
	rec := &warmRecorder{Store: openSQLite(t)}
	startApp(t, rec)
	if n := rec.conns.Load(); n <= 0 {
		t.Fatalf("socle serve answered before warming its store (conns %d)", n)
	}
}

// findingsRecorder is a real store that counts the image findings the
// API asks of it.
type findingsRecorder struct {
	store.Store
	asked atomic.Int64
}

func (f *findingsRecorder) ImageFindings(ctx context.Context, digest string) ([]store.Finding, error) {
	f.asked.Add(1)
	return f.Store.ImageFindings(ctx, digest)
}

// TestServeWarmsAnswers checks that socle serve computes the findings
// answers of the newest images before it answers anything, and keeps
// none of them: the first question about one is computed again, not
// served from the answer cache. Hand-made image records.
func TestServeWarmsAnswers(t *testing.T) {
	ctx := context.Background()
	rec := &findingsRecorder{Store: openSQLite(t)}
	var digests []string
	for i := range 2 {
		d := fmt.Sprintf("sha256:%064x", 0xa0+i)
		if _, err := rec.PutImage(ctx, store.Image{Digest: d, Repository: "apps/warm", ScannedAt: time.Now()}, nil); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	addr := startApp(t, rec)
	if n := rec.asked.Load(); n < int64(len(digests)) {
		t.Fatalf("socle serve answered before computing the newest images' findings (%d asked)", n)
	}
	secret, _, err := auth.Create(ctx, rec, auth.Spec{User: "viewer", Name: "viewer", Role: store.RoleViewer}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/v1/images/"+digests[0]+"/findings", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Socle-Cache") == "hit" {
		t.Fatalf("first question: %s, cache %q", resp.Status, resp.Header.Get("X-Socle-Cache"))
	}
}

// TestServeQueuesStaleChecks checks that a starting socle serve queues a
// check of an image whose last check ran other rules. A hand-made image
// record: the check itself may fail, its job is what is looked for.
func TestServeQueuesStaleChecks(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	const digest = "sha256:5e1f1e5e1f1e5e1f1e5e1f1e5e1f1e5e1f1e5e1f1e5e1f1e5e1f1e5e1f1e5e"
	if _, err := st.PutImage(ctx, store.Image{Digest: digest, Repository: "apps/stale", ScannedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.PutImageCheck(ctx, store.ImageCheck{Digest: digest, Repository: "apps/stale", RulesVersion: "older",
		CheckedAt: time.Now(), Result: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	startApp(t, st)
	key := "check:" + digest + ":" + check.RulesVersion()
	deadline := time.Now().Add(20 * time.Second)
	for {
		jobs, err := st.Jobs(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if j.Key == key {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job %s among %+v", key, jobs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openSQLite(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// startApp runs socle serve in process on st and returns its API
// address once /readyz answers 200.
func startApp(t *testing.T, st store.Store) string {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Parse("socle.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var out bytes.Buffer
	app, err := server.New(ctx, server.Config{File: cfg, Store: st, StoreLocation: "socle.db", DataDir: t.TempDir(), Addr: addr,
		RegistryAddr: freeAddr(t), Out: &out, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- app.Run(ctx) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		app.Shutdown(sctx)
		<-stopped
	})
	testenv.WaitOK(t, "http://"+addr+"/readyz", "socle serve", 20*time.Second)
	return addr
}
