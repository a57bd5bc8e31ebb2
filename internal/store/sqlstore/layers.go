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

func (s *DB) LayerDiffID(ctx context.Context, digest string) (string, error) {
	var diffID string
	err := s.queryRow(ctx, s.db, `SELECT diff_id FROM layer_blobs WHERE digest = ?`, digest).Scan(&diffID)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return diffID, err
}

func (s *DB) StoreLayerAnalysis(ctx context.Context, digest, diffID string, data []byte) error {
	now := ts(time.Now())
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `INSERT INTO layers (diff_id, data, stored_at) VALUES (?, ?, ?)
ON CONFLICT (diff_id) DO UPDATE SET data = excluded.data, stored_at = excluded.stored_at`, diffID, data, now); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO layer_blobs (digest, diff_id, verified_at) VALUES (?, ?, ?)
ON CONFLICT (digest) DO UPDATE SET diff_id = excluded.diff_id, verified_at = excluded.verified_at`, digest, diffID, now)
		return err
	})
}

func (s *DB) ClaimLayer(ctx context.Context, digest, owner string, lease time.Duration) (bool, error) {
	now := time.Now()
	res, err := s.exec(ctx, s.db, `INSERT INTO layer_claims (diff_id, owner, lease_until) VALUES (?, ?, ?)
ON CONFLICT (diff_id) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
WHERE layer_claims.lease_until < ? OR layer_claims.owner = excluded.owner`,
		digest, owner, ts(now.Add(lease)), ts(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

func (s *DB) ReleaseLayer(ctx context.Context, digest, owner string) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM layer_claims WHERE diff_id = ? AND owner = ?`, digest, owner)
	return err
}

func (s *DB) LayerCount(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM layers`).Scan(&n)
	return n, err
}
