package server_test

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
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
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rec := &warmRecorder{Store: st}
	cfg, err := config.Parse("socle.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	var out bytes.Buffer
	app, err := server.New(ctx, server.Config{File: cfg, Store: rec, StoreLocation: "socle.db", DataDir: dir, Addr: addr,
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("socle serve not ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := rec.conns.Load(); n <= 0 {
		t.Fatalf("socle serve answered before warming its store (conns %d)", n)
	}
}
