package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

func (s *DB) AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error) {
	var out store.AuditEvent
	err := s.auditTx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.appendAudit(ctx, tx, ev)
		return err
	})
	return out, err
}

// auditTx runs fn, which appends an audit event, in a transaction. Two
// writers may pick the same sequence number; the primary key refuses
// the second, whose whole transaction then runs again on top of the first.
func (s *DB) auditTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		err = s.inTx(ctx, fn)
		if err == nil || s.d.IsUnique == nil || !s.d.IsUnique(err) {
			break
		}
	}
	return err
}

// appendAudit chains ev onto the log in the caller's transaction.
func (s *DB) appendAudit(ctx context.Context, tx *sql.Tx, ev store.AuditEvent) (store.AuditEvent, error) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	ev.At = ev.At.UTC().Truncate(time.Microsecond)
	if len(ev.Details) == 0 {
		ev.Details = []byte("{}")
	}
	var seq int64
	var prev string
	err := s.queryRow(ctx, tx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return ev, err
	}
	ev.Seq, ev.PrevHash = seq+1, prev
	ev.Hash = store.AuditHash(ev)
	_, err = s.exec(ctx, tx, `INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ev.Seq, ts(ev.At), ev.Actor, ev.Action, ev.Subject, string(ev.Details), ev.PrevHash, ev.Hash)
	return ev, err
}

func (s *DB) AuditEvents(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.query(ctx, s.db, `SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log
WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		var ev store.AuditEvent
		var at int64
		var details string
		if err := rows.Scan(&ev.Seq, &at, &ev.Actor, &ev.Action, &ev.Subject, &details, &ev.PrevHash, &ev.Hash); err != nil {
			return nil, err
		}
		ev.At, ev.Details = fromTS(at), []byte(details)
		out = append(out, ev)
	}
	return out, rows.Err()
}

func (s *DB) AuditHead(ctx context.Context) (store.AuditEvent, int64, error) {
	var n int64
	if err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM audit_log`).Scan(&n); err != nil {
		return store.AuditEvent{}, 0, err
	}
	var ev store.AuditEvent
	var at int64
	var details string
	err := s.queryRow(ctx, s.db, `SELECT seq, at, actor, action, subject, details, prev_hash, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).
		Scan(&ev.Seq, &at, &ev.Actor, &ev.Action, &ev.Subject, &details, &ev.PrevHash, &ev.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return store.AuditEvent{}, 0, nil
	}
	ev.At, ev.Details = fromTS(at), []byte(details)
	return ev, n, err
}
