package sqlstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

const tokenColumns = `id, name, role, hash, created_at, expires_at, revoked_at, last_used, user_name, repositories`

func scanToken(row interface{ Scan(...any) error }) (store.Token, error) {
	var t store.Token
	var h, repos string
	var c, e, r, u int64
	if err := row.Scan(&t.ID, &t.Name, &t.Role, &h, &c, &e, &r, &u, &t.User, &repos); err != nil {
		return t, err
	}
	if repos != "" {
		t.Repositories = strings.Split(repos, "\n")
	}
	t.Hash, _ = hex.DecodeString(h)
	t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsed = fromTS(c), fromTS(e), fromTS(r), fromTS(u)
	return t, nil
}

func (s *DB) CreateToken(ctx context.Context, t store.Token) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Role, hex.EncodeToString(t.Hash), ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.RevokedAt), ts(t.LastUsed),
		t.User, strings.Join(t.Repositories, "\n"))
	if err != nil && s.d.IsUnique != nil && s.d.IsUnique(err) {
		return fmt.Errorf("token %s: %w", t.ID, store.ErrConflict)
	}
	return err
}

func (s *DB) TokenByHash(ctx context.Context, hash []byte) (store.Token, error) {
	t, err := scanToken(s.queryRow(ctx, s.db, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hex.EncodeToString(hash)))
	return t, notFound(err, "token")
}

func (s *DB) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := s.exec(ctx, s.db, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ts(at), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (s *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, s.db, `UPDATE tokens SET last_used = ? WHERE id = ?`, ts(at), id)
	return err
}
