package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

const promotionColumns = `id, repository, target, digest, environment, from_env, tag, previous, state, kind, by_whom, role,
override, evidence, note, created_at, updated_at`

func (s *DB) CreatePromotion(ctx context.Context, p store.Promotion, ev store.AuditEvent) (int64, error) {
	if p.CreatedAt.IsZero() {
		p.CreatedAt = time.Now()
	}
	if len(p.Evidence) == 0 {
		p.Evidence = []byte("{}")
	}
	var id int64
	err := s.auditTx(ctx, func(tx *sql.Tx) error {
		if p.State == store.PromotionMoving {
			if err := s.noneMoving(ctx, tx, p.Target, p.Environment, 0); err != nil {
				return err
			}
		}
		err := s.queryRow(ctx, tx, `INSERT INTO promotions (repository, target, digest, environment, from_env, tag, previous, state,
kind, by_whom, role, override, evidence, note, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			p.Repository, p.Target, p.Digest, p.Environment, p.From, p.Tag, p.Previous, p.State, p.Kind, p.By, p.Role,
			boolInt(p.Override), string(p.Evidence), p.Note, ts(p.CreatedAt), ts(p.CreatedAt)).Scan(&id)
		if err != nil {
			return err
		}
		ev.Details = withID(ev.Details, id)
		_, err = s.appendAudit(ctx, tx, ev)
		return err
	})
	return id, err
}

// noneMoving refuses a second promotion moving the same tag. The unique
// index promotions_one_moving backs it against races.
func (s *DB) noneMoving(ctx context.Context, tx *sql.Tx, target, env string, except int64) error {
	var other int64
	var since int64
	err := s.queryRow(ctx, tx, `SELECT id, updated_at FROM promotions WHERE target = ? AND environment = ? AND state = ? AND id <> ?`,
		target, env, store.PromotionMoving, except).Scan(&other, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("promotion %d is moving the %s tag of %s since %s (an interrupted one is settled by socle promote reconcile): %w",
		other, env, target, fromTS(since).Format(time.RFC3339), store.ErrConflict)
}

// withID adds "promotion": id to a JSON object.
func withID(details []byte, id int64) []byte { return withKey(details, "promotion", id) }

// withKey adds "key": id, first, to a JSON object.
func withKey(details []byte, key string, id int64) []byte {
	k, _ := json.Marshal(key)
	field := append(append(k, ':'), strconv.FormatInt(id, 10)...)
	if len(details) < 2 || string(details) == "{}" {
		return append(append([]byte{'{'}, field...), '}')
	}
	return append(append(append([]byte{'{'}, field...), ','), details[1:]...)
}

func (s *DB) TransitionPromotion(ctx context.Context, id int64, from, to string, evidence []byte, note string, at time.Time, ev store.AuditEvent) error {
	return s.auditTx(ctx, func(tx *sql.Tx) error {
		if to == store.PromotionMoving {
			cur, err := scanPromotion(s.queryRow(ctx, tx, `SELECT `+promotionColumns+` FROM promotions WHERE id = ?`, id))
			if err != nil {
				return notFound(err, fmt.Sprintf("promotion %d", id))
			}
			if err := s.noneMoving(ctx, tx, cur.Target, cur.Environment, id); err != nil {
				return err
			}
		}
		q := `UPDATE promotions SET state = ?, updated_at = ?`
		args := []any{to, ts(at)}
		if len(evidence) > 0 {
			q, args = q+`, evidence = ?`, append(args, string(evidence))
		}
		if note != "" {
			q, args = q+`, note = ?`, append(args, note)
		}
		res, err := s.exec(ctx, tx, q+` WHERE id = ? AND state = ?`, append(args, id, from)...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fmt.Errorf("promotion %d is no longer %s: %w", id, from, store.ErrConflict)
		}
		if to == store.PromotionDone {
			p, err := scanPromotion(s.queryRow(ctx, tx, `SELECT `+promotionColumns+` FROM promotions WHERE id = ?`, id))
			if err != nil {
				return err
			}
			if err := s.putDeployment(ctx, tx, store.Deployment{Environment: p.Environment, Repository: p.Target,
				Digest: p.Digest, Since: at, By: p.By}); err != nil {
				return err
			}
		}
		ev.Details = withID(ev.Details, id)
		_, err = s.appendAudit(ctx, tx, ev)
		return err
	})
}

func (s *DB) Promotion(ctx context.Context, id int64) (store.Promotion, error) {
	p, err := scanPromotion(s.queryRow(ctx, s.db, `SELECT `+promotionColumns+` FROM promotions WHERE id = ?`, id))
	if err != nil {
		return p, notFound(err, fmt.Sprintf("promotion %d", id))
	}
	return p, nil
}

func (s *DB) ListPromotions(ctx context.Context, q store.PromotionQuery) ([]store.Promotion, error) {
	where, args := "", []any{}
	add := func(col, v string) {
		if v != "" {
			where += " AND " + col + " = ?"
			args = append(args, v)
		}
	}
	add("repository", q.Repository)
	add("target", q.Target)
	add("environment", q.Environment)
	add("digest", q.Digest)
	if len(q.States) > 0 {
		where += " AND state IN (" + placeholders(len(q.States)) + ")"
		for _, st := range q.States {
			args = append(args, st)
		}
	}
	limit := pageLimit(q.Limit, 100)
	rows, err := s.query(ctx, s.db, `SELECT `+promotionColumns+` FROM promotions WHERE 1 = 1`+where+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Promotion
	for rows.Next() {
		p, err := scanPromotion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func scanPromotion(row interface{ Scan(...any) error }) (store.Promotion, error) {
	var p store.Promotion
	var override int
	var evidence string
	var created, updated int64
	err := row.Scan(&p.ID, &p.Repository, &p.Target, &p.Digest, &p.Environment, &p.From, &p.Tag, &p.Previous, &p.State,
		&p.Kind, &p.By, &p.Role, &override, &evidence, &p.Note, &created, &updated)
	p.Override, p.Evidence = override != 0, []byte(evidence)
	p.CreatedAt, p.UpdatedAt = fromTS(created), fromTS(updated)
	return p, err
}

func (s *DB) AddApproval(ctx context.Context, a store.Approval, ev store.AuditEvent) ([]store.Approval, error) {
	if a.At.IsZero() {
		a.At = time.Now()
	}
	err := s.auditTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM approvals WHERE promotion_id = ? AND approver = ?`, a.PromotionID, a.Approver).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil // approving twice counts once
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO approvals (promotion_id, approver, role, at) VALUES (?, ?, ?, ?)`,
			a.PromotionID, a.Approver, a.Role, ts(a.At)); err != nil {
			return err
		}
		ev.Details = withID(ev.Details, a.PromotionID)
		_, err := s.appendAudit(ctx, tx, ev)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.Approvals(ctx, a.PromotionID)
}

func (s *DB) Approvals(ctx context.Context, id int64) ([]store.Approval, error) {
	rows, err := s.query(ctx, s.db, `SELECT promotion_id, approver, role, at FROM approvals WHERE promotion_id = ? ORDER BY at, approver`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Approval
	for rows.Next() {
		var a store.Approval
		var at int64
		if err := rows.Scan(&a.PromotionID, &a.Approver, &a.Role, &at); err != nil {
			return nil, err
		}
		a.At = fromTS(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (s *DB) PromotedDigests(ctx context.Context) ([]store.Promoted, error) {
	rows, err := s.query(ctx, s.db, `SELECT target, environment, tag, digest, updated_at FROM promotions WHERE state = ? ORDER BY id DESC`, store.PromotionDone)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Promoted
	for rows.Next() {
		var p store.Promoted
		var at int64
		if err := rows.Scan(&p.Target, &p.Environment, &p.Tag, &p.Digest, &at); err != nil {
			return nil, err
		}
		p.At = fromTS(at)
		out = append(out, p)
	}
	return out, rows.Err()
}
