package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"sync"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// Ingest commits concurrent PutImage and PutTag calls together (group
// commit): the first caller to find no batch running writes every image
// and tag move waiting, up to maxIngestBatch, in one transaction, while
// the next ones queue. A registry receiving pushes in parallel then costs
// one commit, one generation bump and one write of each shared index page
// per batch instead of per image. A batch that fails is retried item by
// item, so one bad image fails only its own call. The tag moves that
// follow each push ride in the next batch of images rather than in
// transactions of their own: with two groups, one for each, an ingesting
// process committed two transactions a round, each with its own
// round trips, commit and generation bump.
//
// One batch is written at a time, on every database: on PostgreSQL too,
// whose transactions could run in parallel, because the batches are then
// larger, so that an image costs fewer round trips, commits and WAL
// flushes (with up to four batches at once, two ingesting processes on
// a 2-core machine took 414 images/s against 570: bench/README.md). A
// batch's statements do not grow
// with its size there (putImages), so a remote database's latency is
// paid once a batch, not once an image. The cost is at a light load: two
// concurrent callers wait for each other's batch (BenchmarkStore/
// PutImageParallel on PostgreSQL, 2 callers: 6.2 ms an image against 3.9
// ms with four at once). Writing in parallel while few values are queued
// lost the batching under a heavy load, whose callers come back one by
// one after a batch: 778 images/s against 966.
type group[T any] struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending []*groupItem[T]
	writing bool
}

type groupItem[T any] struct {
	v        T
	finished bool
}

// run queues v and returns once a batch holding it was written: by this
// caller, when it finds no batch being written, or by another. write gets
// up to maxBatch values.
func (g *group[T]) run(v T, maxBatch int, write func([]T)) {
	it := &groupItem[T]{v: v}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	g.pending = append(g.pending, it)
	for !it.finished {
		if g.writing || len(g.pending) == 0 {
			g.cond.Wait()
			continue
		}
		g.writing = true
		n := min(len(g.pending), maxBatch)
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		vs := make([]T, n)
		for i, b := range batch {
			vs[i] = b.v
		}
		g.mu.Unlock()
		write(vs)
		g.mu.Lock()
		for _, b := range batch {
			b.finished = true
		}
		g.writing = false
		g.cond.Broadcast()
	}
}

type putRequest struct {
	ctx   context.Context
	img   store.Image
	pkgs  []store.ImagePackage
	refs  imageRefs
	fresh []store.PackageRow
	err   error
}

const (
	maxIngestBatch = 64
	// ingestTimeout bounds one batch's transaction; it does not depend on
	// any one caller's context, so that a caller going away does not fail
	// the others.
	ingestTimeout = 2 * time.Minute
)

func (s *DB) PutImage(ctx context.Context, img store.Image, pkgs []store.ImagePackage) ([]store.PackageRow, error) {
	// What the caches know is looked up here, by each caller at once, not
	// by the one writer.
	r := &putRequest{ctx: ctx, img: img, pkgs: pkgs, refs: s.packages.resolve(pkgs)}
	s.writes.run(writeRequest{img: r}, maxIngestBatch, s.writeBatch)
	return r.fresh, r.err
}

// writeRequest is one write of the ingest group: an image (PutImage) or
// a tag move (PutTag).
type writeRequest struct {
	img *putRequest
	tag *tagRequest
}

func (w writeRequest) context() context.Context {
	if w.img != nil {
		return w.img.ctx
	}
	return w.tag.ctx
}

// finish hands the caller its outcome; an image whose write failed
// returns no fresh package versions.
func (w writeRequest) finish(err error) {
	if w.img == nil {
		w.tag.err = err
		return
	}
	if w.img.err = err; err != nil {
		w.img.fresh = nil
	}
}

// writeBatch writes a batch of images and tag moves (see writeLive).
func (s *DB) writeBatch(batch []writeRequest) {
	writeLive(batch, writeRequest.context, writeRequest.finish, s.writeAll)
}

// writeAll writes ws in one transaction: the images first, then the tag
// moves, then the generation bumps, in that order in every transaction.
func (s *DB) writeAll(ctx context.Context, ws []writeRequest) error {
	var rs []*putRequest
	var evs []store.TagEvent
	for _, w := range ws {
		if w.img != nil {
			rs = append(rs, w.img)
		} else {
			evs = append(evs, w.tag.ev)
		}
	}
	// Tags in tag order: concurrent batches then lock rows in one order.
	slices.SortStableFunc(evs, func(a, b store.TagEvent) int {
		return cmp.Or(cmp.Compare(a.Repository, b.Repository), cmp.Compare(a.Tag, b.Tag))
	})
	var learned learnedIDs
	err := s.inTxRetry(ctx, func(tx *sql.Tx) error {
		var bumps []string
		if len(rs) > 0 {
			var err error
			if learned, err = s.putAll(ctx, tx, rs); err != nil {
				return err
			}
			// The images and their findings are new or changed: cached
			// answers go.
			bumps = append(bumps, findingsGenKey)
		}
		if len(evs) > 0 {
			moved, err := s.moveTags(ctx, tx, evs)
			if err != nil {
				return err
			}
			if moved {
				bumps = append(bumps, tagsGenKey)
			}
		}
		return s.bump(ctx, tx, bumps...)
	})
	if err == nil {
		s.packages.rememberBinaries(learned.bins)
		s.packages.rememberExtras(learned.extras)
		s.groups.remember(learned.groups)
	}
	return err
}

// learnedIDs are the IDs a transaction read or wrote of rows that never
// change (binaries, extra data, link groups), cached once it commits.
type learnedIDs struct {
	bins   map[binaryKey]int64
	extras map[string]int64
	groups map[[32]byte]int64
}

// writeLive writes the items whose callers still wait, all in one call
// of write or, when that fails, each in its own, so that one bad item
// fails only its own call. write runs under a deadline of its own: a
// caller going away does not fail the others. done gets each item's
// outcome.
func writeLive[T any](items []T, ctxOf func(T) context.Context, done func(T, error), write func(context.Context, []T) error) {
	var live []T
	for _, it := range items {
		if err := ctxOf(it).Err(); err != nil {
			done(it, err)
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctxOf(live[0])), ingestTimeout)
	defer cancel()
	err := write(ctx, live)
	if err == nil || len(live) == 1 {
		for _, it := range live {
			done(it, err)
		}
		return
	}
	for _, it := range live {
		done(it, write(ctx, []T{it}))
	}
}

// putAll writes rs in tx and returns the binaries, extra data and link
// groups it read (to cache once tx commits). The batch's package versions and binaries
// are resolved first, each kind in one sorted pass, so that concurrent
// transactions take the unique indexes' locks in the same order (no
// deadlock on PostgreSQL).
func (s *DB) putAll(ctx context.Context, tx *sql.Tx, rs []*putRequest) (learnedIDs, error) {
	// Only what the callers' lookups did not find is read or written.
	var unknown []store.ImagePackage
	for _, r := range rs {
		for i, p := range r.pkgs {
			if !r.refs.known(i, p) {
				unknown = append(unknown, p)
			}
		}
	}
	ids, fresh, err := s.ensurePackages(ctx, tx, unknown)
	if err != nil {
		return learnedIDs{}, err
	}
	bins, readBins, err := s.ensureBinaries(ctx, tx, unknown, ids)
	if err != nil {
		return learnedIDs{}, err
	}
	extras, readExtras, err := s.ensureExtras(ctx, tx, unknown)
	if err != nil {
		return learnedIDs{}, err
	}
	var links batchLinks
	freshBy := make(map[store.PackageKey]store.PackageRow, len(fresh))
	for _, f := range fresh {
		freshBy[f.PackageKey] = f
	}
	refs := make([]imageRefs, len(rs))
	for i, r := range rs {
		// A transaction retried starts from the callers' lookups.
		refs[i] = r.refs.clone()
		r.fresh = refs[i].fill(r.pkgs, ids, bins, extras, freshBy)
	}
	if s.d.Arrays && distinct(rs, func(r *putRequest) string { return r.img.Digest }) {
		err = s.putImages(ctx, tx, rs, refs, &links)
	} else {
		for i, r := range rs {
			if err = s.putImage(ctx, tx, r.img, r.pkgs, &refs[i], &links); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = links.flush(ctx, s, tx)
	}
	return learnedIDs{bins: readBins, extras: readExtras, groups: links.learned}, err
}

// packageIDs caches the IDs of package versions already matched, and of
// binaries. Those rows never change their ID nor go away, so every server
// may keep its own; a version never matched is read again, so that the
// caller still learns it must be matched, and a binary is kept only once
// the transaction that wrote it has committed.
type packageIDs struct {
	mu       sync.RWMutex
	ids      map[store.PackageKey]int64
	binaries map[binaryKey]int64
	// extras: binary_extras IDs by their data.
	extras map[string]int64
	// The same rows by ID, for reads.
	keyOf    map[int64]store.PackageKey
	binaryOf map[int64]binaryKey
}

// maxCachedPackages bounds each map (about 100 bytes an entry).
const maxCachedPackages = 1 << 21

func (c *packageIDs) get(k store.PackageKey) (int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.ids[k]
	return id, ok
}

func (c *packageIDs) put(k store.PackageKey, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil || len(c.ids) >= maxCachedPackages {
		c.ids = map[store.PackageKey]int64{}
	}
	c.ids[k] = id
}

// lookup returns the cached package keys and binaries of ids, and the
// IDs it does not hold.
func (c *packageIDs) lookup(pkgs, bins []int64) (map[int64]store.PackageKey, map[int64]binaryKey, []int64, []int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	keys, bs := make(map[int64]store.PackageKey, len(pkgs)), make(map[int64]binaryKey, len(bins))
	var missingPkgs, missingBins []int64
	for _, id := range pkgs {
		if k, ok := c.keyOf[id]; ok {
			keys[id] = k
		} else {
			missingPkgs = append(missingPkgs, id)
		}
	}
	for _, id := range bins {
		if b, ok := c.binaryOf[id]; ok {
			bs[id] = b
		} else {
			missingBins = append(missingBins, id)
		}
	}
	return keys, bs, missingPkgs, missingBins
}

// rememberRows keeps package and binary rows read from the database.
func (c *packageIDs) rememberRows(keys map[int64]store.PackageKey, bins map[int64]binaryKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mergeBounded(&c.keyOf, keys, maxCachedPackages)
	mergeBounded(&c.binaryOf, bins, maxCachedPackages)
}

func (c *packageIDs) binary(k binaryKey) (int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.binaries[k]
	return id, ok
}

func (c *packageIDs) rememberBinaries(m map[binaryKey]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mergeBounded(&c.binaries, m, maxCachedPackages)
}

func (c *packageIDs) extra(data []byte) (int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.extras[string(data)]
	return id, ok
}

// maxCachedExtras bounds the extras cache, whose keys are the data
// (a few hundred bytes each).
const maxCachedExtras = 1 << 17

func (c *packageIDs) rememberExtras(m map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mergeBounded(&c.extras, m, maxCachedExtras)
}

// mergeBounded adds src to *dst, starting *dst afresh when it would hold
// more than limit entries.
func mergeBounded[K comparable, V any](dst *map[K]V, src map[K]V, limit int) {
	if *dst == nil || len(*dst)+len(src) > limit {
		*dst = make(map[K]V, len(src))
	}
	for k, v := range src {
		(*dst)[k] = v
	}
}

// imageRefs are the IDs an image's package rows refer to, each aligned
// with its packages (0 while unknown): the package version, the binary,
// and the extra data (0 also for none). multi lists the packages whose
// ecosystem and name another version in the image shares.
type imageRefs struct {
	pkg, bin, extra []int64
	multi           []int
}

// resolve looks an image's IDs up in the cache, under one read lock,
// and finds its packages held in several versions.
func (c *packageIDs) resolve(pkgs []store.ImagePackage) imageRefs {
	r := imageRefs{pkg: make([]int64, len(pkgs)), bin: make([]int64, len(pkgs)), extra: make([]int64, len(pkgs)),
		multi: multiVersions(pkgs)}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i, p := range pkgs {
		id, ok := c.ids[p.Key]
		if !ok {
			continue
		}
		r.pkg[i], r.bin[i] = id, c.binaries[binaryOf(p, id)]
		if len(p.Extra) > 0 {
			r.extra[i] = c.extras[string(p.Extra)]
		}
	}
	return r
}

// known reports whether every ID package i (p) refers to is resolved.
func (r *imageRefs) known(i int, p store.ImagePackage) bool {
	return r.pkg[i] != 0 && r.bin[i] != 0 && (len(p.Extra) == 0 || r.extra[i] != 0)
}

func (r *imageRefs) clone() imageRefs {
	return imageRefs{pkg: slices.Clone(r.pkg), bin: slices.Clone(r.bin), extra: slices.Clone(r.extra), multi: r.multi}
}

// fill resolves the IDs the cache did not give from what the writer read,
// and returns the package versions never matched among them, each once.
func (r *imageRefs) fill(pkgs []store.ImagePackage, ids map[store.PackageKey]int64, bins map[binaryKey]int64,
	extras map[string]int64, freshBy map[store.PackageKey]store.PackageRow) []store.PackageRow {
	var fresh []store.PackageRow
	var seen map[store.PackageKey]bool
	for i, p := range pkgs {
		if r.known(i, p) {
			continue
		}
		id := ids[p.Key]
		r.pkg[i], r.bin[i] = id, bins[binaryOf(p, id)]
		if len(p.Extra) > 0 {
			r.extra[i] = extras[string(p.Extra)]
		}
		if f, ok := freshBy[p.Key]; ok && !seen[p.Key] {
			if seen == nil {
				seen = map[store.PackageKey]bool{}
			}
			seen[p.Key] = true
			fresh = append(fresh, f)
		}
	}
	return fresh
}

// multiVersions lists the packages whose ecosystem and name another
// version in pkgs shares.
func multiVersions(pkgs []store.ImagePackage) []int {
	type name struct{ eco, name string }
	version := make(map[name]string, len(pkgs))
	multi := map[name]bool{}
	for _, p := range pkgs {
		n := name{p.Key.Ecosystem, p.Key.Name}
		if v, ok := version[n]; !ok {
			version[n] = p.Key.Version
		} else if v != p.Key.Version {
			multi[n] = true
		}
	}
	var out []int
	for i, p := range pkgs {
		if len(multi) > 0 && multi[name{p.Key.Ecosystem, p.Key.Name}] {
			out = append(out, i)
		}
	}
	return out
}
