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
	lock := ""
	if s.d.SkipLocked {
		lock = ` FOR UPDATE SKIP LOCKED`
	}
	// A job whose runner's lease ran out first (it is older than any
	// pending one was when it started), then the oldest pending one. Each
	// question walks jobs_claim (state, id) in order and stops at the
	// first job it may take: asking both at once made the database sort
	// every pending job at each claim, which with a hundred thousand
	// queued checks was most of a server's work.
	for _, state := range []struct {
		name, lease string
	}{{"running", "lease_until < ?"}, {"pending", "lease_until <= ?"}} {
		args := append([]any{owner, ts(now.Add(lease)), ts(now), state.name}, anySlice(kinds)...)
		args = append(args, ts(now))
		row := s.queryRow(ctx, s.db, `UPDATE jobs SET state = 'running', owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ?
WHERE id = (SELECT id FROM jobs WHERE state = ? AND kind IN (`+placeholders(len(kinds))+`) AND `+state.lease+`
	ORDER BY id LIMIT 1`+lock+`)
RETURNING `+jobColumns, args...)
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
