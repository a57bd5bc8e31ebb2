package sqlstore

import (
	"context"
	"database/sql"
)

// NewAt opens db with its schema at version last, as an older socle
// left it: for upgrade tests.
func NewAt(ctx context.Context, db *sql.DB, d Dialect, last int) (*DB, error) {
	s := &DB{db: db, d: d}
	return s, s.migrateTo(ctx, last)
}
