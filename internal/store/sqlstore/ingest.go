package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// Ingest commits concurrent PutImage calls together (group commit): the
// first caller to find no batch running writes every image waiting, up to
// maxIngestBatch, in one transaction, while the next ones queue. A
// registry receiving pushes in parallel then costs one commit, one
// generation bump and one write of each shared index page per batch
// instead of per image. A batch that fails is retried image by image, so
// one bad image fails only its own call.
type ingestQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending []*putRequest
	leading bool
}

type putRequest struct {
	ctx      context.Context
	img      store.Image
	pkgs     []store.ImagePackage
	fresh    []store.PackageRow
	err      error
	finished bool
}

const (
	maxIngestBatch = 64
	// ingestTimeout bounds one batch's transaction; it does not depend on
	// any one caller's context, so that a caller going away does not fail
	// the others.
	ingestTimeout = 2 * time.Minute
)

func (s *DB) PutImage(ctx context.Context, img store.Image, pkgs []store.ImagePackage) ([]store.PackageRow, error) {
	q := &s.ingest
	r := &putRequest{ctx: ctx, img: img, pkgs: pkgs}
	q.mu.Lock()
	if q.cond == nil {
		q.cond = sync.NewCond(&q.mu)
	}
	q.pending = append(q.pending, r)
	for !r.finished {
		if q.leading {
			q.cond.Wait()
			continue
		}
		q.leading = true
		n := min(len(q.pending), maxIngestBatch)
		batch := q.pending[:n:n]
		q.pending = q.pending[n:]
		q.mu.Unlock()
		s.putBatch(batch)
		q.mu.Lock()
		for _, b := range batch {
			b.finished = true
		}
		q.leading = false
		q.cond.Broadcast()
	}
	q.mu.Unlock()
	return r.fresh, r.err
}

// putBatch writes a batch in one transaction, or each image in its own
// when the batch fails.
func (s *DB) putBatch(batch []*putRequest) {
	var live []*putRequest
	for _, r := range batch {
		if r.err = r.ctx.Err(); r.err == nil {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(live[0].ctx), ingestTimeout)
	defer cancel()
	err := s.putAll(ctx, live)
	if err == nil || len(live) == 1 {
		for _, r := range live {
			if r.err = err; err != nil {
				r.fresh = nil
			}
		}
		return
	}
	for _, r := range live {
		r.err = s.putAll(ctx, []*putRequest{r})
	}
}

func (s *DB) putAll(ctx context.Context, rs []*putRequest) error {
	var names []binaryName
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		names = names[:0]
		for _, r := range rs {
			fresh, ns, err := s.putImage(ctx, tx, r.img, r.pkgs)
			if err != nil {
				return err
			}
			r.fresh = fresh
			names = append(names, ns...)
		}
		// The images and their findings are new or changed: cached answers go.
		return s.bump(ctx, tx, findingsGenKey)
	})
	if err == nil {
		s.packages.rememberNames(names)
	}
	return err
}

// packageIDs caches the IDs of package versions already matched. A
// package row never changes its ID nor goes away, so every server may
// keep its own; a version never matched is read again, so that the
// caller still learns it must be matched.
type packageIDs struct {
	mu    sync.RWMutex
	ids   map[store.PackageKey]int64
	names map[binaryName]bool // package_names rows known to be stored
}

type binaryName struct {
	name string
	id   int64
}

// maxCachedPackages bounds the cache (about 100 bytes an entry).
const maxCachedPackages = 1 << 21

func (c *packageIDs) get(k store.PackageKey) (int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.ids[k]
	return id, ok
}

func (c *packageIDs) knownName(name string, id int64) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.names[binaryName{name, id}]
}

// rememberNames records package_names rows once their transaction has
// committed.
func (c *packageIDs) rememberNames(ns []binaryName) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.names == nil || len(c.names)+len(ns) > maxCachedPackages {
		c.names = map[binaryName]bool{}
	}
	for _, n := range ns {
		c.names[n] = true
	}
}

func (c *packageIDs) put(k store.PackageKey, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil || len(c.ids) >= maxCachedPackages {
		c.ids = map[store.PackageKey]int64{}
	}
	c.ids[k] = id
}
