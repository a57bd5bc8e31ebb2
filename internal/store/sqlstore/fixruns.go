package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

func (s *DB) CreateFixRun(ctx context.Context, r store.FixRun) (int64, error) {
	advs, _ := json.Marshal(nonNil(r.Advisories))
	steps, _ := json.Marshal(nonNilSteps(r.Steps))
	fixed, _ := json.Marshal(nonNilMap(r.Fixed))
	var id int64
	err := s.queryRow(ctx, s.db, `INSERT INTO fix_runs (advisories, status, started_at, updated_at, detail, steps, fixed)
VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, string(advs), r.Status, ts(r.StartedAt), ts(r.StartedAt), r.Detail, string(steps), string(fixed)).Scan(&id)
	return id, err
}

func (s *DB) AppendFixStep(ctx context.Context, id int64, step store.FixStep) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var raw string
		if err := s.queryRow(ctx, tx, `SELECT steps FROM fix_runs WHERE id = ?`, id).Scan(&raw); err != nil {
			return notFound(err, "fix run")
		}
		var steps []store.FixStep
		_ = json.Unmarshal([]byte(raw), &steps)
		steps = append(steps, step)
		b, _ := json.Marshal(steps)
		_, err := s.exec(ctx, tx, `UPDATE fix_runs SET steps = ?, updated_at = ? WHERE id = ?`, string(b), ts(step.At), id)
		return err
	})
}

func (s *DB) UpdateFixRun(ctx context.Context, id int64, status, detail string, fixed map[string]string, at time.Time) error {
	b, _ := json.Marshal(nonNilMap(fixed))
	res, err := s.exec(ctx, s.db, `UPDATE fix_runs SET status = ?, detail = ?, fixed = ?, updated_at = ? WHERE id = ?`,
		status, detail, string(b), ts(at), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNotFound
	}
	return nil
}

const fixRunColumns = `id, advisories, status, started_at, updated_at, detail, steps, fixed`

func scanFixRun(row interface{ Scan(...any) error }) (store.FixRun, error) {
	var r store.FixRun
	var advs, steps, fixed string
	var started, updated int64
	if err := row.Scan(&r.ID, &advs, &r.Status, &started, &updated, &r.Detail, &steps, &fixed); err != nil {
		return r, err
	}
	r.StartedAt, r.UpdatedAt = fromTS(started), fromTS(updated)
	_ = json.Unmarshal([]byte(advs), &r.Advisories)
	_ = json.Unmarshal([]byte(steps), &r.Steps)
	_ = json.Unmarshal([]byte(fixed), &r.Fixed)
	return r, nil
}

func (s *DB) FixRun(ctx context.Context, id int64) (store.FixRun, error) {
	r, err := scanFixRun(s.queryRow(ctx, s.db, `SELECT `+fixRunColumns+` FROM fix_runs WHERE id = ?`, id))
	if err != nil {
		return r, notFound(err, "fix run")
	}
	return r, nil
}

func (s *DB) FixRuns(ctx context.Context, limit int) ([]store.FixRun, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+fixRunColumns+` FROM fix_runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.FixRun
	for rows.Next() {
		r, err := scanFixRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func nonNilSteps(s []store.FixStep) []store.FixStep {
	if s == nil {
		return []store.FixStep{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
