// Package postgres opens socle's store in PostgreSQL through pgx. Several
// socle servers may share one database: jobs are claimed with
// SELECT ... FOR UPDATE SKIP LOCKED, so no two servers take the same one.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/socle-dev/socle/internal/store/sqlstore"
)

// Dialect describes PostgreSQL to sqlstore.
var Dialect = sqlstore.Dialect{
	Name:      "postgres",
	Blob:      "BYTEA",
	Serial:    "BIGSERIAL",
	Numbered:  true,
	Arrays:    true,
	HashIndex: " USING hash",
	// Every 100,000 new rows (about 500 images' links), whatever the
	// table's size: by default autovacuum waits for a fifth of the
	// table (3.5 million links at 100,000 images).
	VacuumInserts: " SET (autovacuum_vacuum_insert_threshold = 100000, autovacuum_vacuum_insert_scale_factor = 0)",
	// pgx runs a statement given this mode as its unnamed prepared
	// statement, which PostgreSQL plans with the values it is bound to.
	PlanEachRun: pgx.QueryExecModeCacheDescribe,
	// An arbitrary constant names socle's migration lock.
	LockMigrations: `SELECT pg_advisory_xact_lock(735301)`,
	SkipLocked:     true,
	ClaimFunction:  true,
	IsUnique: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && e.Code == "23505"
	},
	// A deadlock or a serialization failure aborts one of the
	// transactions involved; running it again succeeds.
	IsRetryable: func(err error) bool {
		var e *pgconn.PgError
		return errors.As(err, &e) && (e.Code == "40P01" || e.Code == "40001")
	},
	AuditTriggers: []string{
		`CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$`,
		`CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()`,
	},
}

// Open connects to the database at url (postgres://...).
func Open(ctx context.Context, url string) (*sqlstore.DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("opening PostgreSQL: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	s, err := sqlstore.New(ctx, db, Dialect)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing PostgreSQL schema: %w", err)
	}
	return s, nil
}
