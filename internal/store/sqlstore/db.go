package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// Dialect holds what differs between SQL databases.
type Dialect struct {
	// Name is reported by Store.Backend.
	Name string
	// Blob and Serial are the column types for bytes and for an
	// auto-incrementing 64-bit key.
	Blob   string
	Serial string
	// Numbered placeholders ($1) instead of question marks.
	Numbered bool
	// SkipLocked is true when SELECT ... FOR UPDATE SKIP LOCKED exists,
	// and jobs are claimed with it.
	SkipLocked bool
	// IsUnique reports whether err is a unique-constraint violation.
	IsUnique func(error) bool
	// AuditTriggers are the statements that make audit_log append-only.
	AuditTriggers []string
	// LockMigrations, when set, runs first in each migration transaction
	// so that servers starting together apply it once.
	LockMigrations string
	// WithoutRowID ends the DDL of tables that are only a primary key
	// ("WITHOUT ROWID" in SQLite).
	WithoutRowID string
	// IsRetryable, when set, reports whether a transaction failed only
	// because of others running at once (a deadlock) and may run again.
	IsRetryable func(error) bool
	// SingleWriter is true when the database runs one write transaction
	// at a time (SQLite): this process's writers then queue on a mutex
	// rather than in the database's busy handler, which sleeps between
	// retries and turns contention into idle time.
	SingleWriter bool
	// Arrays is true when a slice may be passed as one array parameter
	// (inList).
	Arrays bool
	// HashIndex, when set, makes an index asked only for equality a hash
	// index (" USING hash" in PostgreSQL: an entry holds the key's hash,
	// not the key).
	HashIndex string
	// PlanEachRun, when set, is a leading argument that makes the driver
	// have the database plan a statement for the values it runs with,
	// each run, instead of reusing a plan made for any values (see
	// replanned).
	PlanEachRun any
	// VacuumInserts, when set, is the ALTER TABLE clause that makes the
	// database's background vacuum visit a table after fewer inserts
	// (vacuumSoon).
	VacuumInserts string
	// ClaimFunction is true when pending jobs are claimed through a
	// function whose statement is planned with sorting off, over an
	// index of the pending jobs (claimFunction, migration 21).
	ClaimFunction bool
}

// DB is a store.Store on a database/sql handle.
type DB struct {
	db       *sql.DB
	d        Dialect
	names    nameCache
	writes   group[writeRequest]
	packages packageIDs
	writeMu  sync.Mutex
	advs     advisoryCache
	stmts    stmtCache
	// The link log (linklog.go): the rows it holds as the writer counts
	// them (-1 until read), and the count that folds it.
	logged, linkFold int
	// Link groups (linkgroups.go): the IDs known, and the size that
	// makes a layer's links one.
	groups   groupCache
	groupMin int
}

var _ store.Store = (*DB)(nil)

// New wraps an open database and brings its schema up to date.
func New(ctx context.Context, db *sql.DB, d Dialect) (*DB, error) {
	s := &DB{db: db, d: d, logged: -1}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// SQL returns the underlying handle, for tests and tools.
func (s *DB) SQL() *sql.DB { return s.db }

func (s *DB) Close() error {
	s.stmts.mu.Lock()
	for _, st := range s.stmts.m {
		st.Close()
	}
	s.stmts.m = nil
	s.stmts.mu.Unlock()
	return s.db.Close()
}

func (s *DB) Backend() string                { return s.d.Name }
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// q turns a query written with ? placeholders into the dialect's form.
func (s *DB) q(query string) string {
	if !s.d.Numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

func (s *DB) exec(ctx context.Context, x execer, query string, args ...any) (sql.Result, error) {
	return x.ExecContext(ctx, s.q(query), args...)
}

func (s *DB) query(ctx context.Context, x execer, query string, args ...any) (*sql.Rows, error) {
	return x.QueryContext(ctx, s.q(query), args...)
}

func (s *DB) queryRow(ctx context.Context, x execer, query string, args ...any) *sql.Row {
	return x.QueryRowContext(ctx, s.q(query), args...)
}

// stmtCache holds the statements prepared once for every transaction
// (see prepared).
type stmtCache struct {
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

// maxCachedStmts bounds stmtCache; past it statements are prepared each
// time.
const maxCachedStmts = 256

// prepared returns query prepared for tx, once per connection: SQLite's
// driver parses a statement at every call, and ingest runs the same few
// statements for every image (parsing them was a tenth of its work).
// PostgreSQL's driver keeps its own statement cache, so the *Prepared
// helpers below run statements directly there.
func (s *DB) prepared(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	q := s.q(query)
	c := &s.stmts
	c.mu.Lock()
	st, ok := c.m[q]
	if !ok && len(c.m) < maxCachedStmts {
		var err error
		if st, err = s.db.PrepareContext(ctx, q); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if c.m == nil {
			c.m = map[string]*sql.Stmt{}
		}
		c.m[q] = st
		ok = true
	}
	c.mu.Unlock()
	if !ok {
		return tx.PrepareContext(ctx, q)
	}
	return tx.StmtContext(ctx, st), nil
}

// queryRowPrepared is queryRow through prepared; the transaction closes
// the statement when it ends.
func (s *DB) queryRowPrepared(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Row, error) {
	if !s.d.SingleWriter {
		return s.queryRow(ctx, tx, query, args...), nil
	}
	st, err := s.prepared(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryRowContext(ctx, args...), nil
}

// execPrepared runs a statement of a hot path through prepared.
func (s *DB) execPrepared(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if !s.d.SingleWriter {
		return s.exec(ctx, tx, query, args...)
	}
	st, err := s.prepared(ctx, tx, query)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return st.ExecContext(ctx, args...)
}

// eachRow runs a query and calls fn on each row.
func (s *DB) eachRow(ctx context.Context, q string, args []any, fn func(*sql.Rows) error) error {
	return s.eachRowIn(ctx, s.db, q, args, fn)
}

// eachRowIn is eachRow in a transaction (or any execer).
func (s *DB) eachRowIn(ctx context.Context, x execer, q string, args []any, fn func(*sql.Rows) error) error {
	rows, err := s.query(ctx, x, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction, committing when it returns nil.
func (s *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.d.SingleWriter {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// inTxRetry is inTx run again, up to three times, when the database
// aborted the transaction for a conflict with others (IsRetryable). fn
// must start from scratch each time.
func (s *DB) inTxRetry(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := range 4 {
		if err = s.inTx(ctx, fn); err == nil || s.d.IsRetryable == nil || !s.d.IsRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 20 * time.Millisecond):
		}
	}
	return err
}

// replanned is args for a lookup by a batch's keys whose best plan
// changes as its table grows from empty: PostgreSQL reuses a statement's
// plan made for any values once the first five runs cost no less, and a
// plan made on a store's first images (a scan of the whole table, then
// a few pages) stayed while the table grew to 100,000 images (the
// digest lookup read 247 pages a batch on average, and the tag moves
// 444, where the index takes about three a key). Planned for its values
// each run, it reads the index.
func (s *DB) replanned(args ...any) []any {
	if s.d.PlanEachRun == nil {
		return args
	}
	return append([]any{s.d.PlanEachRun}, args...)
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// padded returns an IN list for values and its arguments,
// padded with the last value to a power of two: a driver that prepares
// each distinct query text once (pgx) then keeps a few shapes of a query
// instead of one per list length. A value repeated in IN changes nothing.
func padded[T any](values []T) (string, []any) {
	if len(values) == 0 {
		return "NULL", nil // matches nothing
	}
	n := 1
	for n < len(values) {
		n *= 2
	}
	args := make([]any, n)
	for i := range args {
		args[i] = values[min(i, len(values)-1)]
	}
	return placeholders(n), args
}

// inList returns the condition "IN (...)" on values (not empty) and its
// arguments. With array parameters (PostgreSQL) it is one array (= ANY):
// a statement whose plan does not depend on the list's length (an image's
// matches asked with 256 values IN took 3.1 ms p50 on the 100,000-image
// store, with one array 0.8 ms). Elsewhere the values are padded.
func inList[T int64 | string](s *DB, values []T) (string, []any) {
	if s.d.Arrays {
		return "= ANY(?)", []any{values}
	}
	in, args := padded(values)
	return "IN (" + in + ")", args
}

// byPackages is a FROM item, named alias: the rows of table whose
// package_id is one of pkgs (not empty), and its arguments. On
// PostgreSQL each ID is looked up in the table's index on its own (a
// lateral subquery behind OFFSET 0, which the planner keeps as it is):
// with the array of an image's ~200 package versions, the plans made for
// the values (a statement's first five runs on a connection) counted ~15
// matches a version where most have none, and scanned all of
// package_matches instead (~1 ms a run at 20,000 matches, 8 ms on a new
// connection; the index, 0.3 ms). Elsewhere it is the table's rows IN
// the padded list.
func byPackages(s *DB, table, alias string, pkgs []int64) (string, []any) {
	if s.d.Arrays {
		return `unnest(?::bigint[]) AS ` + alias + `_key(id) CROSS JOIN LATERAL (SELECT * FROM ` + table +
			` WHERE package_id = ` + alias + `_key.id OFFSET 0) ` + alias, []any{pkgs}
	}
	in, args := inList(s, pkgs)
	return `(SELECT * FROM ` + table + ` WHERE package_id ` + in + `) ` + alias, args
}

// Times are stored as microseconds since the epoch; zero means unset.
func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromTS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func notFound(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	return err
}

// chunks splits values into slices of at most n, to stay under the
// databases' limits on bound parameters.
func chunks[T any](values []T, n int) [][]T {
	var out [][]T
	for len(values) > n {
		out = append(out, values[:n])
		values = values[n:]
	}
	if len(values) > 0 {
		out = append(out, values)
	}
	return out
}

func anySlice[T any](v []T) []any {
	out := make([]any, len(v))
	for i := range v {
		out[i] = v[i]
	}
	return out
}

// rowPlaceholders returns "(?, ?), (?, ?)" for rows of cols values.
func rowPlaceholders(rows, cols int) string {
	row := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// pageLimit turns a Limit into the SQL LIMIT: def for 0, every row for
// store.All.
func pageLimit(limit, def int) int {
	switch {
	case limit == store.All:
		return math.MaxInt64
	case limit <= 0:
		return def
	}
	return limit
}

// insertRows inserts rows of cols values each (args holds them in
// order) with multi-row statements: one round trip per batch on
// PostgreSQL; on SQLite short ones (a few rows each), prepared once
// (prepared), since a statement of hundreds of placeholders costs more to
// parse than its rows to insert. head is "INSERT INTO t (a, b) VALUES",
// tail what follows the values ("ON CONFLICT ...").
func (s *DB) insertRows(ctx context.Context, tx *sql.Tx, head, tail string, cols int, args []any) error {
	if len(args) == 0 {
		return nil
	}
	if !s.d.SingleWriter {
		return s.execRows(ctx, tx, head, tail, cols, args)
	}
	per := max(1, 64/cols)
	var st *sql.Stmt
	defer func() {
		if st != nil {
			st.Close()
		}
	}()
	for _, batch := range chunks(args, per*cols) {
		if len(batch) != per*cols || st == nil {
			if st != nil {
				st.Close()
			}
			var err error
			if st, err = s.prepared(ctx, tx, head+" "+rowPlaceholders(len(batch)/cols, cols)+" "+tail); err != nil {
				return err
			}
		}
		if _, err := st.ExecContext(ctx, batch...); err != nil {
			return err
		}
	}
	return nil
}

// execRows is insertRows without prepared statements: a statement per
// up to 900 values.
func (s *DB) execRows(ctx context.Context, tx *sql.Tx, head, tail string, cols int, args []any) error {
	for _, batch := range chunks(args, max(1, 900/cols)*cols) {
		if _, err := s.exec(ctx, tx, head+" "+rowPlaceholders(len(batch)/cols, cols)+" "+tail, batch...); err != nil {
			return err
		}
	}
	return nil
}
