package sqlstore

import (
	"context"
	"database/sql"
	"errors"
)

func (s *DB) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.queryRow(ctx, s.db, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func (s *DB) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}
