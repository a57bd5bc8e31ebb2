package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// maxJobAttempts bounds how often a failing job is retried.
const maxJobAttempts = 5

const jobColumns = `id, kind, key, payload, state, owner, lease_until, attempts, error, done, total, message, created_at, updated_at`

func scanJob(row interface{ Scan(...any) error }) (store.Job, error) {
	var j store.Job
	var lease, created, updated int64
	err := row.Scan(&j.ID, &j.Kind, &j.Key, &j.Payload, &j.State, &j.Owner, &lease, &j.Attempts, &j.Error, &j.Done, &j.Total, &j.Message, &created, &updated)
	j.LeaseUntil, j.CreatedAt, j.UpdatedAt = fromTS(lease), fromTS(created), fromTS(updated)
	return j, err
}

func (s *DB) EnqueueJob(ctx context.Context, kind, key string, payload []byte) (int64, bool, error) {
	if payload == nil {
		payload = []byte{}
	}
	now := ts(time.Now())
	var id int64
	var added bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := s.queryRow(ctx, tx, `INSERT INTO jobs (kind, key, payload, state, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?)
ON CONFLICT (key) WHERE state IN ('pending', 'running') DO NOTHING RETURNING id`, kind, key, payload, now, now).Scan(&id)
		if err == nil {
			added = true
			return nil
		}
		if err != sql.ErrNoRows {
			return err
		}
		return s.queryRow(ctx, tx, `SELECT id FROM jobs WHERE key = ? AND state IN ('pending', 'running')`, key).Scan(&id)
	})
	return id, added, err
}

func (s *DB) ClaimJob(ctx context.Context, owner string, kinds []string, lease time.Duration) (*store.Job, error) {
	if len(kinds) == 0 {
		return nil, nil
	}
	now := time.Now()
	// A job whose runner's lease ran out first (it is older than any
	// pending one was when it started), then the oldest pending one. Each
	// question walks the jobs of its state in ID order and stops at the
	// first it may take: asking both at once made the database sort
	// every pending job at each claim, which with a hundred thousand
	// queued checks was most of a server's work.
	for _, state := range []struct {
		name   string
		before int64 // lease_until below this
	}{{"running", ts(now)}, {"pending", ts(now) + 1}} {
		var row *sql.Row
		if state.name == "pending" && s.d.ClaimFunction {
			row = s.queryRow(ctx, s.db, `SELECT `+jobColumns+` FROM claim_pending_job(?, ?, ?, ?, ?)`,
				owner, ts(now.Add(lease)), ts(now), kinds, state.before)
		} else {
			args := append([]any{owner, ts(now.Add(lease)), ts(now)}, anySlice(kinds)...)
			row = s.queryRow(ctx, s.db, s.claimStatement(state.name, "?", "?", "?", "IN ("+placeholders(len(kinds))+")", "?")+jobColumns,
				append(args, state.before)...)
		}
		j, err := scanJob(row)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("claiming job: %w", err)
		}
		return &j, nil
	}
	return nil, nil
}

// claimStatement is the UPDATE that gives owner, until lease, the
// oldest job in state (a literal) of one of the kinds (kindIn: "IN
// (...)" or "= ANY(...)") whose lease_until is below before, as of now,
// ending in RETURNING; the values are the expressions given. Migration
// 21 wrote it into claim_pending_job as it was then: a change here needs
// a migration that creates the function again.
func (s *DB) claimStatement(state, owner, lease, now, kindIn, before string) string {
	lock := ""
	if s.d.SkipLocked {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	return `UPDATE jobs SET state = 'running', owner = ` + owner + `, lease_until = ` + lease + `, attempts = attempts + 1, updated_at = ` + now + `
WHERE id = (SELECT id FROM jobs WHERE state = '` + state + `' AND kind ` + kindIn + ` AND lease_until < ` + before + `
	ORDER BY id LIMIT 1` + lock + `)
RETURNING `
}

// claimFunction creates, where the dialect has it (PostgreSQL), the
// function that claims the oldest pending job, and the index of pending
// jobs it walks. Its statement is planned with sorting off: right after
// a burst of new jobs (an upgrade queues a check of every image) the
// table's statistics still count a few pending jobs, and the planner
// read them all and sorted them at each claim (16 ms a claim and finish
// with 20,000 queued); with statistics that count them, it walked the
// primary key past every job done before. The index holds only pending
// jobs, so walking it is the cheapest plan whatever the statistics say.
// The function returns the table's row type: a migration that replaces
// the jobs table drops it first and creates it again after.
func claimFunction(ctx context.Context, s *DB, tx *sql.Tx) error {
	if !s.d.ClaimFunction {
		return nil
	}
	for _, stmt := range []string{
		`CREATE INDEX jobs_queue ON jobs (id) WHERE state = 'pending'`,
		`CREATE FUNCTION claim_pending_job(p_owner text, p_lease bigint, p_now bigint, p_kinds text[], p_before bigint)
RETURNS SETOF jobs LANGUAGE sql SET enable_sort = off AS $$
` + s.claimStatement("pending", "p_owner", "p_lease", "p_now", "= ANY(p_kinds)", "p_before") + `*
$$`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

func (s *DB) ExtendJob(ctx context.Context, id int64, owner string, lease time.Duration, done, total int, msg string) error {
	now := time.Now()
	res, err := s.exec(ctx, s.db, `UPDATE jobs SET lease_until = ?, done = ?, total = ?, message = ?, updated_at = ?
WHERE id = ? AND owner = ? AND state = 'running'`, ts(now.Add(lease)), done, total, msg, ts(now), id, owner)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("job %d is no longer held by %s: %w", id, owner, store.ErrConflict)
	}
	return nil
}

func (s *DB) FinishJob(ctx context.Context, id int64, owner string, errMsg string, retry bool, retryAfter time.Duration) error {
	at := time.Now()
	now := ts(at)
	var res sql.Result
	var err error
	switch {
	case errMsg == "":
		res, err = s.exec(ctx, s.db, `UPDATE jobs SET state = 'done', error = '', lease_until = 0, updated_at = ?
WHERE id = ? AND owner = ? AND state = 'running'`, now, id, owner)
	case retry:
		// A pending job's lease_until is the earliest time it is claimed.
		res, err = s.exec(ctx, s.db, `UPDATE jobs SET state = CASE WHEN attempts < ? THEN 'pending' ELSE 'failed' END,
error = ?, lease_until = ?, updated_at = ? WHERE id = ? AND owner = ? AND state = 'running'`, maxJobAttempts, errMsg, ts(at.Add(max(retryAfter, 0))), now, id, owner)
	default:
		res, err = s.exec(ctx, s.db, `UPDATE jobs SET state = 'failed', error = ?, lease_until = 0, updated_at = ?
WHERE id = ? AND owner = ? AND state = 'running'`, errMsg, now, id, owner)
	}
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("job %d is no longer held by %s: %w", id, owner, store.ErrConflict)
	}
	return nil
}

func (s *DB) Jobs(ctx context.Context, limit int) ([]store.Job, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.query(ctx, s.db, `SELECT `+jobColumns+` FROM jobs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func (s *DB) JobByID(ctx context.Context, id int64) (store.Job, error) {
	j, err := scanJob(s.queryRow(ctx, s.db, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id))
	return j, notFound(err, fmt.Sprintf("job %d", id))
}
