package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

func (s *DB) RecordRemediation(ctx context.Context, r store.Remediation, ev store.AuditEvent) (int64, error) {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	fixes, _ := json.Marshal(nonNil(r.Fixes))
	added, _ := json.Marshal(nonNil(r.Added))
	var id int64
	err := s.auditTx(ctx, func(tx *sql.Tx) error {
		err := s.queryRow(ctx, tx, `INSERT INTO remediations (image, repository, strategy, from_digest, to_digest, fixes, added, status,
detail, at, by_whom) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Image, r.Repository, r.Strategy, r.From, r.To, string(fixes), string(added), r.Status, r.Detail, ts(r.At), r.By).Scan(&id)
		if err != nil {
			return err
		}
		ev.Details = withKey(ev.Details, "remediation", id)
		_, err = s.appendAudit(ctx, tx, ev)
		return err
	})
	return id, err
}

func (s *DB) ListRemediations(ctx context.Context, image string, limit int) ([]store.Remediation, error) {
	if limit <= 0 {
		limit = 100
	}
	q, args := `SELECT id, image, repository, strategy, from_digest, to_digest, fixes, added, status, detail, at, by_whom FROM remediations`, []any{}
	if image != "" {
		q, args = q+` WHERE image = ?`, append(args, image)
	}
	rows, err := s.query(ctx, s.db, q+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Remediation
	for rows.Next() {
		var r store.Remediation
		var fixes, added string
		var at int64
		if err := rows.Scan(&r.ID, &r.Image, &r.Repository, &r.Strategy, &r.From, &r.To, &fixes, &added, &r.Status, &r.Detail, &at, &r.By); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(fixes), &r.Fixes)
		_ = json.Unmarshal([]byte(added), &r.Added)
		r.At = fromTS(at)
		out = append(out, r)
	}
	return out, rows.Err()
}
