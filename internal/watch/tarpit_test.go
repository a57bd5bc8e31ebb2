package watch_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/jobs"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/watch"
)

// TestTarpitsDoNotHoldWorkers: scan jobs against two hand-made tarpits,
// a registry that accepts connections and never answers, and one that
// answers and then trickles a byte at a time, each end failed within
// their deadlines (the transport's, then the job's maximum run time);
// a second job queued behind them on the one worker runs.
func TestTarpitsDoNotHoldWorkers(t *testing.T) {
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection, say nothing
		}
	}()
	trickle := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.WriteHeader(http.StatusOK)
		for i := 0; r.Context().Err() == nil; i++ {
			w.Write([]byte(" "))
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer trickle.Close()

	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	an, _ := sbom.NewAnalyzer()
	w := watch.New(st, scan.New(st, an), watch.Options{Remote: source.Options{
		InsecureRegistryUnsafe: true,
		Transport:              source.NewTransport(source.Timeouts{Connect: time.Second, Response: time.Second, Idle: time.Second}),
	}})
	digest := "sha256:" + strings.Repeat("ab", 32)
	var ids []int64
	for _, host := range []string{silent.Addr().String(), strings.TrimPrefix(trickle.URL, "http://")} {
		id, err := w.Enqueue(ctx, watch.ScanRequest{Repository: host + "/tarpit/app", Digest: digest})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	okID, _, err := st.EnqueueJob(ctx, "after", "after", nil)
	if err != nil {
		t.Fatal(err)
	}
	runner := jobs.NewRunner(st, map[string]jobs.Handler{
		watch.KindScan: w.HandleScan,
		"after":        func(context.Context, *store.Job, jobs.Progress) error { return nil },
	}, jobs.Options{Owner: "test", Workers: 1, Poll: 20 * time.Millisecond, MaxRunTime: 3 * time.Second})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { runner.Run(runCtx, ctx); close(done) }()
	defer func() { stop(); <-done }()
	for _, id := range append(ids, okID) {
		for {
			j, err := st.JobByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			// A tarpit job's first attempt ends with its error recorded.
			if j.State == store.JobDone || j.Error != "" {
				if id != okID && j.Error == "" {
					t.Fatalf("tarpit job %d ended without an error: %+v", id, j)
				}
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if j, _ := st.JobByID(ctx, okID); j.State != store.JobDone {
		t.Fatalf("the job queued behind the tarpits: %+v", j)
	}
}
