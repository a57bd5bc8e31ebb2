package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// Queue is the part of the store the runner uses.
type Queue interface {
	ClaimJob(ctx context.Context, owner string, kinds []string, lease time.Duration) (*store.Job, error)
	ExtendJob(ctx context.Context, id int64, owner string, lease time.Duration, done, total int, msg string) error
	FinishJob(ctx context.Context, id int64, owner string, errMsg string, retry bool, retryAfter time.Duration) error
}

// Progress reports how far a job is.
type Progress func(done, total int, msg string)

// Handler does one kind of job. An error fails the attempt; wrap it with
// Permanent when retrying cannot help.
type Handler func(ctx context.Context, j *store.Job, progress Progress) error

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// Permanent marks an error that retrying will not fix.
func Permanent(err error) error { return &permanentError{err} }

// Runner claims and runs jobs.
type Runner struct {
	q        Queue
	owner    string
	handlers map[string]Handler
	kinds    []string
	workers  int
	lease    time.Duration
	poll     time.Duration
	maxRun   time.Duration
	// retryBackoff is the wait before a failed job's second attempt.
	retryBackoff time.Duration
	log          *slog.Logger
	wake         chan struct{}
	onFinish     func(kind string, d time.Duration, err error)
}

// Options configure a Runner.
type Options struct {
	// Owner names this process in leases; it must be unique.
	Owner   string
	Workers int
	// Lease is how long a claim lasts without renewal (default 30s); it
	// bounds how long a crashed server's job waits before another takes it.
	Lease time.Duration
	// Poll is how often an idle runner looks for work (default 1s).
	Poll   time.Duration
	Logger *slog.Logger
	// OnFinish, when set, is told of every finished attempt (for metrics).
	OnFinish func(kind string, d time.Duration, err error)
	// MaxRunTime bounds one attempt of a job (default 30m): a registry or
	// feed that stops answering cannot hold a worker longer.
	MaxRunTime time.Duration
	// RetryBackoff is the wait before a failed job's second attempt
	// (default 5s), doubled for each further one.
	RetryBackoff time.Duration
}

// NewRunner returns a Runner for the given handlers, by job kind.
func NewRunner(q Queue, handlers map[string]Handler, o Options) *Runner {
	r := &Runner{
		q: q, owner: o.Owner, handlers: handlers, workers: o.Workers,
		lease: o.Lease, poll: o.Poll, log: o.Logger, wake: make(chan struct{}, 1), onFinish: o.OnFinish,
		maxRun: o.MaxRunTime, retryBackoff: o.RetryBackoff,
	}
	if r.retryBackoff <= 0 {
		r.retryBackoff = 5 * time.Second
	}
	if r.maxRun <= 0 {
		r.maxRun = 30 * time.Minute
	}
	if r.workers <= 0 {
		r.workers = 2
	}
	if r.lease <= 0 {
		r.lease = 30 * time.Second
	}
	if r.poll <= 0 {
		r.poll = time.Second
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for k := range handlers {
		r.kinds = append(r.kinds, k)
	}
	return r
}

// Wake makes an idle runner look for work now, after an enqueue.
func (r *Runner) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run claims jobs until ctx is done, then waits for the jobs it runs to
// finish. Running jobs see hardStop: when it is done they are cancelled,
// and their leases run out so that another runner takes them over.
func (r *Runner) Run(ctx, hardStop context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < r.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.loop(ctx, hardStop)
		}()
	}
	wg.Wait()
}

func (r *Runner) loop(ctx, hardStop context.Context) {
	for {
		if ctx.Err() != nil {
			return
		}
		j, err := r.q.ClaimJob(ctx, r.owner, r.kinds, r.lease)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Error("claiming a job", "err", err)
			}
		}
		if j == nil {
			select {
			case <-ctx.Done():
				return
			case <-r.wake:
			case <-time.After(r.poll):
			}
			continue
		}
		r.run(hardStop, j)
	}
}

// run executes one job, renewing its lease until it ends.
func (r *Runner) run(hardStop context.Context, j *store.Job) {
	h := r.handlers[j.Kind]
	jctx, cancel := context.WithCancel(hardStop)
	defer cancel()
	var mu sync.Mutex
	done, total, msg := j.Done, j.Total, j.Message
	lost := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(r.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				mu.Lock()
				d, tt, m := done, total, msg
				mu.Unlock()
				if err := r.q.ExtendJob(jctx, j.ID, r.owner, r.lease, d, tt, m); err != nil {
					if errors.Is(err, store.ErrConflict) {
						r.log.Warn("job lease lost", "job", j.ID)
						close(lost)
						cancel()
						return
					}
				}
			}
		}
	}()
	progress := func(d, t int, m string) {
		mu.Lock()
		done, total, msg = d, t, m
		mu.Unlock()
	}
	start := time.Now()
	log := r.log.With("job", j.ID, "kind", j.Kind, "key", j.Key, "attempt", j.Attempts)
	log.Info("job started")
	rctx, stopRun := context.WithTimeout(jctx, r.maxRun)
	defer stopRun()
	err := safeRun(rctx, h, j, func(d, t int, m string) {
		progress(d, t, m)
		// Progress is written at once when it starts or ends a phase, so
		// that the UI sees it without waiting for a renewal.
		if d == 0 || d == t {
			mu.Lock()
			_ = r.q.ExtendJob(jctx, j.ID, r.owner, r.lease, d, t, m)
			mu.Unlock()
		}
	})
	if err != nil && errors.Is(rctx.Err(), context.DeadlineExceeded) && hardStop.Err() == nil {
		err = fmt.Errorf("stopped after its maximum run time of %s: %w", r.maxRun, err)
	}
	cancel()
	<-renewed
	select {
	case <-lost:
		return // someone else owns the job now
	default:
	}
	if r.onFinish != nil {
		r.onFinish(j.Kind, time.Since(start), err)
	}
	if hardStop.Err() != nil && err != nil {
		// Stopped by shutdown: leave the lease to expire so that the job
		// resumes after restart, rather than counting a failure.
		log.Warn("job interrupted by shutdown; it will resume", "err", err)
		return
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(hardStop), 10*time.Second)
	defer fcancel()
	if err == nil {
		log.Info("job done", "duration", time.Since(start))
		if ferr := r.q.FinishJob(fctx, j.ID, r.owner, "", false, 0); ferr != nil {
			log.Error("recording job completion", "err", ferr)
		}
		return
	}
	var perm *permanentError
	retry := !errors.As(err, &perm)
	log.Warn("job failed", "err", err, "retry", retry)
	if ferr := r.q.FinishJob(fctx, j.ID, r.owner, err.Error(), retry, r.backoff(j.Attempts)); ferr != nil {
		log.Error("recording job failure", "err", ferr)
	}
}

// backoff is how long a job waits before its next attempt: RetryBackoff
// doubled at each attempt, at most ten minutes, so that a failing job
// does not take a worker again at once.
func (r *Runner) backoff(attempts int) time.Duration {
	d := r.retryBackoff
	for i := 1; i < attempts && d < 10*time.Minute; i++ {
		d *= 2
	}
	return min(d, 10*time.Minute)
}

func safeRun(ctx context.Context, h Handler, j *store.Job, p Progress) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = Permanent(fmt.Errorf("job panicked: %v", v))
		}
	}()
	if h == nil {
		return Permanent(fmt.Errorf("no handler for job kind %q", j.Kind))
	}
	return h(ctx, j, p)
}
