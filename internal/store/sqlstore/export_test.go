package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"
)

// NewAt opens db with its schema at version last, as an older socle
// left it: for upgrade tests.
func NewAt(ctx context.Context, db *sql.DB, d Dialect, last int) (*DB, error) {
	s := &DB{db: db, d: d}
	return s, s.migrateTo(ctx, last)
}

// Row is a statement written with ? placeholders, and its arguments.
type Row struct {
	SQL  string
	Args []any
}

// OldStore opens db at schema version last (NewAt) and writes rows into
// it with the dialect's placeholders: an older socle's store, for
// upgrade tests.
func OldStore(ctx context.Context, db *sql.DB, d Dialect, last int, rows []Row) error {
	s, err := NewAt(ctx, db, d, last)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := s.exec(ctx, db, r.SQL, r.Args...); err != nil {
			return fmt.Errorf("%w\n%s", err, r.SQL)
		}
	}
	return nil
}

// CachedAdvisories lists the IDs of the advisories whose texts the store
// holds in memory, sorted.
func (s *DB) CachedAdvisories() []string {
	s.advs.mu.Lock()
	defer s.advs.mu.Unlock()
	ids := make([]string, 0, len(s.advs.m))
	for id := range s.advs.m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// NamesLoaded reports whether the store holds the images' tags and
// environments in memory.
func (s *DB) NamesLoaded() bool {
	s.names.mu.Lock()
	defer s.names.mu.Unlock()
	return s.names.tags != nil
}

// SetNamesReloadEvery sets how often moved tags reload every image's
// tags, until the test ends.
func SetNamesReloadEvery(t interface{ Cleanup(func()) }, d time.Duration) {
	old := namesReloadEvery
	namesReloadEvery = d
	t.Cleanup(func() { namesReloadEvery = old })
}
