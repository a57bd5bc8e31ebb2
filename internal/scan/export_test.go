package scan

import (
	"context"

	"github.com/socle-dev/socle/internal/store"
)

// MatchFirst is matchFirst, for the external tests.
func (s *Scanner) MatchFirst(ctx context.Context, rows []store.PackageRow) error {
	return s.matchFirst(ctx, rows)
}

// HoldFirst claims rows as a caller matching them would, and returns
// what releases them with that caller's outcome.
func (s *Scanner) HoldFirst(rows []store.PackageRow) (release func(error)) {
	mine, m, others := s.first.claim(rows)
	if len(others) > 0 {
		s.first.waited()
	}
	return func(err error) { s.first.release(mine, m, err) }
}

// FirstWaiting counts the callers waiting for another's matching.
func (s *Scanner) FirstWaiting() int {
	s.first.mu.Lock()
	defer s.first.mu.Unlock()
	return s.first.waiting
}
