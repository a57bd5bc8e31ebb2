package sqlstore

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/zdict"
)

// maxCheckResult bounds what a stored check result inflates to.
const maxCheckResult = 64 << 20

// Check results are stored compressed (one per image, they count at
// fleet scale): as given when the caller compressed them already
// (zdict, see check.EncodeResult), else gzip; rows written before are plain
// JSON, told apart by gzip's magic bytes.
func packResult(b []byte) []byte {
	if zdict.Is(b) {
		return b
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func unpackResult(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return b, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, maxCheckResult+1))
	if err != nil {
		return nil, err
	}
	if len(out) > maxCheckResult {
		return nil, fmt.Errorf("stored check result inflates beyond %d bytes", maxCheckResult)
	}
	return out, nil
}

// PutImageCheck keeps the check of an image socle has indexed (checks are
// kept by image); ErrNotFound for any other digest.
func (s *DB) PutImageCheck(ctx context.Context, c store.ImageCheck) error {
	c.Result = packResult(c.Result)
	res, err := s.exec(ctx, s.db, `INSERT INTO image_checks (image_id, repository, rules_version, checked_at, result)
SELECT id, ?, ?, ?, ? FROM images WHERE digest = ?
ON CONFLICT (image_id) DO UPDATE SET repository = excluded.repository, rules_version = excluded.rules_version,
checked_at = excluded.checked_at, result = excluded.result`, c.Repository, c.RulesVersion, ts(c.CheckedAt), c.Result, c.Digest)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("keeping the check of %s, an image socle has not indexed: %w", c.Digest, store.ErrNotFound)
	}
	return nil
}

func (s *DB) ImageCheck(ctx context.Context, digest string) (store.ImageCheck, error) {
	var c store.ImageCheck
	var at int64
	err := s.queryRow(ctx, s.db, `SELECT i.digest, c.repository, c.rules_version, c.checked_at, c.result
FROM images i JOIN image_checks c ON c.image_id = i.id WHERE i.digest = ?`, digest).
		Scan(&c.Digest, &c.Repository, &c.RulesVersion, &at, &c.Result)
	if err != nil {
		return c, notFound(err, "image check of "+digest)
	}
	c.CheckedAt = fromTS(at)
	if c.Result, err = unpackResult(c.Result); err != nil {
		return c, fmt.Errorf("image check of %s: %w", digest, err)
	}
	return c, nil
}

func (s *DB) ImagesToCheck(ctx context.Context, version string, limit int) ([]store.ImageCheck, error) {
	rows, err := s.query(ctx, s.db, `SELECT i.digest, i.repository FROM images i LEFT JOIN image_checks c ON c.image_id = i.id
WHERE c.image_id IS NULL OR c.rules_version <> ? ORDER BY i.id LIMIT ?`, version, limit)
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
