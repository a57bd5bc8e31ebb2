package sqlstore

import (
	"context"
	"strings"

	"github.com/socle-dev/socle/internal/store"
)

func (s *DB) PutImportedSBOM(ctx context.Context, b store.ImportedSBOM) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO imported_sboms (digest, format, tools, imported_at, packages) VALUES (?, ?, ?, ?, ?)`,
		b.Digest, b.Format, b.Tools, ts(b.ImportedAt), strings.Join(b.Packages, "\n"))
	return err
}

func (s *DB) ImportedSBOMs(ctx context.Context, digest string) ([]store.ImportedSBOM, error) {
	rows, err := s.query(ctx, s.db, `SELECT digest, format, tools, imported_at, packages FROM imported_sboms WHERE digest = ? ORDER BY id DESC`, digest)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ImportedSBOM
	for rows.Next() {
		var b store.ImportedSBOM
		var at int64
		var pkgs string
		if err := rows.Scan(&b.Digest, &b.Format, &b.Tools, &at, &pkgs); err != nil {
			return nil, err
		}
		b.ImportedAt = fromTS(at)
		if pkgs != "" {
			b.Packages = strings.Split(pkgs, "\n")
		}
		out = append(out, b)
	}
	return out, rows.Err()
}
