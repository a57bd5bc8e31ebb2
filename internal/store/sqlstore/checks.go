package sqlstore

import (
	"context"

	"github.com/socle-dev/socle/internal/store"
)

func (s *DB) PutImageCheck(ctx context.Context, c store.ImageCheck) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO image_checks (digest, repository, rules_version, checked_at, result) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (digest) DO UPDATE SET repository = excluded.repository, rules_version = excluded.rules_version,
checked_at = excluded.checked_at, result = excluded.result`, c.Digest, c.Repository, c.RulesVersion, ts(c.CheckedAt), c.Result)
	return err
}

func (s *DB) ImageCheck(ctx context.Context, digest string) (store.ImageCheck, error) {
	var c store.ImageCheck
	var at int64
	err := s.queryRow(ctx, s.db, `SELECT digest, repository, rules_version, checked_at, result FROM image_checks WHERE digest = ?`, digest).
		Scan(&c.Digest, &c.Repository, &c.RulesVersion, &at, &c.Result)
	if err != nil {
		return c, notFound(err, "image check of "+digest)
	}
	c.CheckedAt = fromTS(at)
	return c, nil
}

func (s *DB) ImagesToCheck(ctx context.Context, version string, limit int) ([]store.ImageCheck, error) {
	rows, err := s.query(ctx, s.db, `SELECT i.digest, i.repository FROM images i LEFT JOIN image_checks c ON c.digest = i.digest
WHERE c.digest IS NULL OR c.rules_version <> ? ORDER BY i.id LIMIT ?`, version, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ImageCheck
	for rows.Next() {
		var c store.ImageCheck
		if err := rows.Scan(&c.Digest, &c.Repository); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
