package scan

import (
	"context"
	"sync"

	"github.com/socle-dev/socle/internal/store"
)

// firstMatches lets one caller at a time match a package version the
// store had never matched. Concurrent Index calls get the same fresh
// versions back (a fleet's first images share their bases' packages):
// each matched them all at once, and each transaction waited on the rows
// the others were writing (two ingesting processes, 64 pushes at once
// each: 127 match transactions of ~1.9 s each, in the first seconds).
type firstMatches struct {
	mu       sync.Mutex
	inflight map[int64]*firstMatch
	// waiting counts the callers waiting for another's matching.
	waiting int
}

// firstMatch is one caller's matching of a version, done once closed.
type firstMatch struct {
	done chan struct{}
	err  error
}

// theirs is a version another caller is matching.
type theirs struct {
	row store.PackageRow
	m   *firstMatch
}

// claim splits rows into those the caller matches (now in flight) and
// those another caller is matching.
func (f *firstMatches) claim(rows []store.PackageRow) (mine []store.PackageRow, m *firstMatch, others []theirs) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inflight == nil {
		f.inflight = map[int64]*firstMatch{}
	}
	m = &firstMatch{done: make(chan struct{})}
	for _, r := range rows {
		if o, ok := f.inflight[r.ID]; ok {
			others = append(others, theirs{row: r, m: o})
			continue
		}
		f.inflight[r.ID] = m
		mine = append(mine, r)
	}
	if len(others) > 0 {
		f.waiting++
	}
	return mine, m, others
}

// waited ends a wait claim counted.
func (f *firstMatches) waited() {
	f.mu.Lock()
	f.waiting--
	f.mu.Unlock()
}

// release ends the caller's matching of mine, with its outcome.
func (f *firstMatches) release(mine []store.PackageRow, m *firstMatch, err error) {
	f.mu.Lock()
	for _, r := range mine {
		delete(f.inflight, r.ID)
	}
	f.mu.Unlock()
	m.err = err
	close(m.done)
}

// matchFirst matches the fresh versions an Index got back: those no other
// caller is matching, then, once the others are done, those whose
// matching failed there. Claims are released before waiting, so two
// callers never wait on each other.
func (s *Scanner) matchFirst(ctx context.Context, rows []store.PackageRow) error {
	if len(rows) == 0 {
		return nil
	}
	mine, m, others := s.first.claim(rows)
	var err error
	if len(mine) > 0 {
		_, err = s.Rematch(ctx, mine)
	}
	s.first.release(mine, m, err)
	if err != nil {
		return err
	}
	if len(others) == 0 {
		return nil
	}
	again, err := s.first.wait(ctx, others)
	if err != nil {
		return err
	}
	if len(again) > 0 {
		_, err = s.Rematch(ctx, again)
	}
	return err
}

// wait waits for the others' matching and returns the rows whose
// matching failed there.
func (f *firstMatches) wait(ctx context.Context, others []theirs) ([]store.PackageRow, error) {
	defer f.waited()
	var again []store.PackageRow
	for _, w := range others {
		select {
		case <-w.m.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if w.m.err != nil {
			again = append(again, w.row)
		}
	}
	return again, nil
}
