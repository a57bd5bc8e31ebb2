package server_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

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

// startApp runs socle serve in process on st and returns once /readyz
// answers 200.
func startApp(t *testing.T, st store.Store) {
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
}
