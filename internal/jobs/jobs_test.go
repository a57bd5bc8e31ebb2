package jobs_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/jobs"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
)

func newStore(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func waitState(t *testing.T, s store.Store, id int64, state string) store.Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		j, err := s.JobByID(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State == state {
			return j
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %d never reached %s", id, state)
	return store.Job{}
}

func TestRunsRetriesAndFails(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	var flaky atomic.Int32
	handlers := map[string]jobs.Handler{
		"ok": func(ctx context.Context, j *store.Job, p jobs.Progress) error {
			p(0, 2, "starting")
			p(2, 2, "finished")
			return nil
		},
		"flaky": func(ctx context.Context, j *store.Job, p jobs.Progress) error {
			if flaky.Add(1) < 3 {
				return errors.New("transient")
			}
			return nil
		},
		"broken": func(ctx context.Context, j *store.Job, p jobs.Progress) error {
			return jobs.Permanent(errors.New("bad input"))
		},
		"panics": func(ctx context.Context, j *store.Job, p jobs.Progress) error { panic("boom") },
	}
	r := jobs.NewRunner(s, handlers, jobs.Options{Owner: "t", Workers: 2, Poll: 10 * time.Millisecond, RetryBackoff: 10 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(runCtx, ctx); close(done) }()
	ids := map[string]int64{}
	for _, k := range []string{"ok", "flaky", "broken", "panics"} {
		id, _, err := s.EnqueueJob(ctx, k, k, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[k] = id
	}
	r.Wake()
	if j := waitState(t, s, ids["ok"], store.JobDone); j.Done != 2 || j.Total != 2 || j.Message != "finished" {
		t.Fatalf("progress not recorded: %+v", j)
	}
	if j := waitState(t, s, ids["flaky"], store.JobDone); j.Attempts != 3 {
		t.Fatalf("flaky job took %d attempts", j.Attempts)
	}
	if j := waitState(t, s, ids["broken"], store.JobFailed); j.Attempts != 1 || j.Error != "bad input" {
		t.Fatalf("permanent failure: %+v", j)
	}
	if j := waitState(t, s, ids["panics"], store.JobFailed); j.Error == "" {
		t.Fatalf("panic not recorded: %+v", j)
	}
	stop()
	<-done
}

// TestShutdownLetsJobsFinish: stopping the runner stops claiming, and a
// running job completes.
func TestShutdownLetsJobsFinish(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	started := make(chan struct{})
	release := make(chan struct{})
	r := jobs.NewRunner(s, map[string]jobs.Handler{
		"slow": func(ctx context.Context, j *store.Job, p jobs.Progress) error {
			close(started)
			<-release
			return nil
		},
	}, jobs.Options{Owner: "t", Workers: 1, Poll: 10 * time.Millisecond})
	id, _, _ := s.EnqueueJob(ctx, "slow", "a", nil)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(runCtx, ctx); close(done) }()
	<-started
	id2, _, _ := s.EnqueueJob(ctx, "slow", "b", nil)
	stop()
	close(release)
	<-done
	if j, _ := s.JobByID(ctx, id); j.State != store.JobDone {
		t.Fatalf("in-flight job: %s", j.State)
	}
	if j, _ := s.JobByID(ctx, id2); j.State != store.JobPending {
		t.Fatalf("a job was claimed after shutdown began: %s", j.State)
	}
}

// TestInterruptedJobResumes: a job cut off by the hard stop keeps its
// lease and is taken over once the lease expires.
func TestInterruptedJobResumes(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	id, _, _ := s.EnqueueJob(ctx, "long", "x", nil)
	hard, kill := context.WithCancel(ctx)
	r1 := jobs.NewRunner(s, map[string]jobs.Handler{
		"long": func(ctx context.Context, j *store.Job, p jobs.Progress) error {
			kill()
			<-ctx.Done()
			return ctx.Err()
		},
	}, jobs.Options{Owner: "first", Workers: 1, Lease: 300 * time.Millisecond, Poll: 10 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	go func() { time.Sleep(100 * time.Millisecond); stop() }()
	r1.Run(runCtx, hard)
	if j, _ := s.JobByID(ctx, id); j.State != store.JobRunning || j.Owner != "first" {
		t.Fatalf("after interruption: %+v", j)
	}
	r2 := jobs.NewRunner(s, map[string]jobs.Handler{
		"long": func(ctx context.Context, j *store.Job, p jobs.Progress) error { return nil },
	}, jobs.Options{Owner: "second", Workers: 1, Lease: time.Second, Poll: 20 * time.Millisecond})
	run2, stop2 := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r2.Run(run2, ctx); close(done) }()
	j := waitState(t, s, id, store.JobDone)
	stop2()
	<-done
	if j.Owner != "second" || j.Attempts != 2 {
		t.Fatalf("resumed job: %+v", j)
	}
}
