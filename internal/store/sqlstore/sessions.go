package sqlstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

const sessionColumns = `id, hash, user_name, role, source, csrf, created_at, last_seen, expires_at, revoked_at, remote`

func scanSession(row interface{ Scan(...any) error }) (store.Session, error) {
	var s store.Session
	var h string
	var c, l, e, r int64
	if err := row.Scan(&s.ID, &h, &s.User, &s.Role, &s.Source, &s.CSRF, &c, &l, &e, &r, &s.Remote); err != nil {
		return s, err
	}
	s.Hash, _ = hex.DecodeString(h)
	s.CreatedAt, s.LastSeen, s.ExpiresAt, s.RevokedAt = fromTS(c), fromTS(l), fromTS(e), fromTS(r)
	return s, nil
}

func (s *DB) CreateSession(ctx context.Context, se store.Session) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		se.ID, hex.EncodeToString(se.Hash), se.User, se.Role, se.Source, se.CSRF, ts(se.CreatedAt), ts(se.LastSeen),
		ts(se.ExpiresAt), ts(se.RevokedAt), se.Remote)
	if err != nil && s.d.IsUnique != nil && s.d.IsUnique(err) {
		return fmt.Errorf("session %s: %w", se.ID, store.ErrConflict)
	}
	return err
}

func (s *DB) SessionByHash(ctx context.Context, hash []byte) (store.Session, error) {
	se, err := scanSession(s.queryRow(ctx, s.db, `SELECT `+sessionColumns+` FROM sessions WHERE hash = ?`, hex.EncodeToString(hash)))
	return se, notFound(err, "session")
}

func (s *DB) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, s.db, `UPDATE sessions SET last_seen = ? WHERE id = ?`, ts(at), id)
	return err
}

func (s *DB) RevokeSession(ctx context.Context, id string, at time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE sessions SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ts(at), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("session %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (s *DB) ListSessions(ctx context.Context, user string, limit int) ([]store.Session, error) {
	q, args := `SELECT `+sessionColumns+` FROM sessions`, []any{}
	if user != "" {
		q, args = q+` WHERE user_name = ?`, append(args, user)
	}
	rows, err := s.query(ctx, s.db, q+` ORDER BY created_at DESC, id LIMIT ?`, append(args, pageLimit(limit, 100))...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, se)
	}
	return out, rows.Err()
}
