package admission

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/sign"
)

// Signatures verifies, in the background, that promoted digests carry a
// signature by an environment's keys, and remembers the answers: the
// request path only reads them.
type Signatures struct {
	// Verify checks one digest against keys (sign.VerifySignature by
	// default).
	Verify func(ctx context.Context, ref name.Digest, keys []*sign.Verifier) (string, error)
	Remote []remote.Option
	Log    *slog.Logger
	// Retry is how long a digest found unsigned waits before it is
	// checked again (default 1m).
	Retry time.Duration

	mu      sync.RWMutex
	results map[sigKey]sigResult
	queue   chan sigJob
	pending map[sigKey]bool
}

// sigKey is a digest and a key set (an environment's name).
type sigKey struct{ digest, keys string }

type sigResult struct {
	ok      bool
	key     string
	checked time.Time
}

type sigJob struct {
	key  sigKey
	ref  name.Digest
	keys []*sign.Verifier
}

func (s *Signatures) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.results == nil {
		s.results, s.pending, s.queue = map[sigKey]sigResult{}, map[sigKey]bool{}, make(chan sigJob, 4096)
	}
}

// Verified reports whether digest was found signed by the key set.
func (s *Signatures) Verified(digest, keySet string) (ok, checked bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, found := s.results[sigKey{digest, keySet}]
	return r.ok, found
}

// want queues digest, stored in repository, for checking against keys
// unless it is known signed, queued, or was found unsigned recently.
func (s *Signatures) want(repository, digest, keySet string, keys []*sign.Verifier) {
	k := sigKey{digest, keySet}
	s.mu.Lock()
	r, found := s.results[k]
	if s.pending[k] || (found && (r.ok || time.Since(r.checked) < s.retry())) {
		s.mu.Unlock()
		return
	}
	ref, err := name.NewDigest(repository+"@"+digest, name.WeakValidation)
	if err != nil {
		s.mu.Unlock()
		return
	}
	s.pending[k] = true
	s.mu.Unlock()
	select {
	case s.queue <- sigJob{k, ref, keys}:
	default: // full: the next refresh asks again
		s.mu.Lock()
		delete(s.pending, k)
		s.mu.Unlock()
	}
}

func (s *Signatures) retry() time.Duration {
	if s.Retry > 0 {
		return s.Retry
	}
	return time.Minute
}

// run checks queued digests with a few workers until ctx ends.
func (s *Signatures) run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-s.queue:
					s.check(ctx, j)
				}
			}
		}()
	}
	wg.Wait()
}

func (s *Signatures) check(ctx context.Context, j sigJob) {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	verify := s.Verify
	if verify == nil {
		verify = func(ctx context.Context, ref name.Digest, keys []*sign.Verifier) (string, error) {
			return sign.VerifySignature(ctx, ref, keys, s.Remote...)
		}
	}
	key, err := verify(cctx, j.ref, j.keys)
	if err != nil && !errors.Is(err, sign.ErrNoSignature) && s.Log != nil {
		s.Log.Warn("admission: checking a signature", "image", j.ref.String(), "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, j.key)
	s.results[j.key] = sigResult{ok: err == nil, key: key, checked: time.Now()}
}
