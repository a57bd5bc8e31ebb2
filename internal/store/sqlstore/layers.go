package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

func (s *DB) LoadLayerAnalysis(ctx context.Context, diffID string) ([]byte, error) {
	var data []byte
	err := s.queryRow(ctx, s.db, `SELECT data FROM layers WHERE diff_id = ?`, diffID).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return data, err
}

func (s *DB) StoreLayerAnalysis(ctx context.Context, diffID string, data []byte) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO layers (diff_id, data, stored_at) VALUES (?, ?, ?)
ON CONFLICT (diff_id) DO UPDATE SET data = excluded.data, stored_at = excluded.stored_at`, diffID, data, ts(time.Now()))
	return err
}

func (s *DB) ClaimLayer(ctx context.Context, diffID, owner string, lease time.Duration) (bool, error) {
	now := time.Now()
	res, err := s.exec(ctx, s.db, `INSERT INTO layer_claims (diff_id, owner, lease_until) VALUES (?, ?, ?)
ON CONFLICT (diff_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
WHERE layer_claims.lease_until < ? OR layer_claims.owner = excluded.owner`,
		diffID, owner, ts(now.Add(lease)), ts(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *DB) ReleaseLayer(ctx context.Context, diffID, owner string) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM layer_claims WHERE diff_id = ? AND owner = ?`, diffID, owner)
	return err
}

func (s *DB) LayerCount(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM layers`).Scan(&n)
	return n, err
}
