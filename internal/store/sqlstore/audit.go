package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

func (s *DB) AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	ev.At = ev.At.UTC().Truncate(time.Microsecond)
	if len(ev.Details) == 0 {
		ev.Details = []byte("{}")
	}
	var out store.AuditEvent
	var err error
	// Two writers may pick the same sequence number; the primary key
	// refuses the second, which tries again on top of the first.
	for attempt := 0; attempt < 20; attempt++ {
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			out = ev
			var seq int64
			var prev string
			err := s.queryRow(ctx, tx, `SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			out.Seq, out.PrevHash = seq+1, prev
			out.Hash = store.AuditHash(out)
			_, err = s.exec(ctx, tx, `INSERT INTO audit_log (seq, at, actor, action, subject, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
				out.Seq, ts(out.At), out.Actor, out.Action, out.Subject, string(out.Details), out.PrevHash, out.Hash)
			return err
		})
		if err == nil || s.d.IsUnique == nil || !s.d.IsUnique(err) {
			break
		}
	}
	return out, err
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
