package sqlstore

import (
	"context"
	"database/sql"
	"sort"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

func (s *DB) PackagesNamed(ctx context.Context, ecosystem, name string) ([]store.PackageRow, error) {
	var rows *sql.Rows
	var err error
	if ecosystemBase(ecosystem) == ecosystem {
		// "Debian" selects "Debian" and every "Debian:<release>".
		rows, err = s.query(ctx, s.db, `SELECT id, ecosystem, name, version FROM packages
WHERE name = ? AND (ecosystem = ? OR ecosystem LIKE ?) ORDER BY id`, name, ecosystem, ecosystem+":%")
	} else {
		rows, err = s.query(ctx, s.db, `SELECT id, ecosystem, name, version FROM packages WHERE name = ? AND ecosystem = ? ORDER BY id`, name, ecosystem)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PackageRow
	for rows.Next() {
		var r store.PackageRow
		if err := rows.Scan(&r.ID, &r.Ecosystem, &r.Name, &r.Version); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *DB) PackageMatches(ctx context.Context, pkgID int64) ([]store.PackageMatch, error) {
	return s.packageMatches(ctx, s.db, pkgID)
}

func (s *DB) packageMatches(ctx context.Context, x execer, pkgID int64) ([]store.PackageMatch, error) {
	rows, err := s.query(ctx, x, `SELECT advisory_id, fixed_version FROM package_matches WHERE package_id = ? ORDER BY advisory_id`, pkgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PackageMatch
	for rows.Next() {
		var m store.PackageMatch
		if err := rows.Scan(&m.AdvisoryID, &m.FixedVersion); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func (s *DB) SetPackageMatches(ctx context.Context, pkgID int64, matches []store.PackageMatch, closeReasons map[string]string, at time.Time) (store.FindingChanges, error) {
	var ch store.FindingChanges
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ch = store.FindingChanges{}
		old, err := s.packageMatches(ctx, tx, pkgID)
		if err != nil {
			return err
		}
		oldBy := map[string]string{}
		for _, m := range old {
			oldBy[m.AdvisoryID] = m.FixedVersion
		}
		newBy := map[string]string{}
		for _, m := range matches {
			newBy[m.AdvisoryID] = m.FixedVersion
		}
		images := map[string]bool{}
		for id, fixed := range newBy {
			prev, had := oldBy[id]
			if had && prev == fixed {
				continue
			}
			if _, err := s.exec(ctx, tx, `INSERT INTO package_matches (package_id, advisory_id, fixed_version) VALUES (?, ?, ?)
ON CONFLICT (package_id, advisory_id) DO UPDATE SET fixed_version = excluded.fixed_version`, pkgID, id, fixed); err != nil {
				return err
			}
			if had {
				continue
			}
			n, err := s.openFindings(ctx, tx, pkgID, id, at, images)
			if err != nil {
				return err
			}
			ch.Opened += n
		}
		for id := range oldBy {
			if _, ok := newBy[id]; ok {
				continue
			}
			if _, err := s.exec(ctx, tx, `DELETE FROM package_matches WHERE package_id = ? AND advisory_id = ?`, pkgID, id); err != nil {
				return err
			}
			reason := closeReasons[id]
			if reason == "" {
				reason = "no longer affected"
			}
			n, err := s.closeFindings(ctx, tx, pkgID, id, reason, at, images)
			if err != nil {
				return err
			}
			ch.Closed += n
		}
		if _, err := s.exec(ctx, tx, `UPDATE packages SET matched_at = ? WHERE id = ?`, ts(at), pkgID); err != nil {
			return err
		}
		for d := range images {
			ch.Images = append(ch.Images, d)
		}
		sort.Strings(ch.Images)
		return nil
	})
	return ch, err
}

func (s *DB) openFindings(ctx context.Context, tx *sql.Tx, pkgID int64, advID string, at time.Time, images map[string]bool) (int, error) {
	digests, err := s.imagesWithPackage(ctx, tx, pkgID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range digests {
		res, err := s.exec(ctx, tx, `INSERT INTO findings (image_digest, package_id, advisory_id, opened_at) VALUES (?, ?, ?, ?)
ON CONFLICT (image_digest, package_id, advisory_id) DO UPDATE SET closed_at = 0, close_reason = '', opened_at = excluded.opened_at
WHERE findings.closed_at <> 0`, d, pkgID, advID, ts(at))
		if err != nil {
			return 0, err
		}
		if k, _ := res.RowsAffected(); k > 0 {
			n++
			images[d] = true
		}
	}
	return n, nil
}

func (s *DB) closeFindings(ctx context.Context, tx *sql.Tx, pkgID int64, advID, reason string, at time.Time, images map[string]bool) (int, error) {
	rows, err := s.query(ctx, tx, `SELECT image_digest FROM findings WHERE package_id = ? AND advisory_id = ? AND closed_at = 0`, pkgID, advID)
	if err != nil {
		return 0, err
	}
	var digests []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return 0, err
		}
		digests = append(digests, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(digests) == 0 {
		return 0, nil
	}
	if _, err := s.exec(ctx, tx, `UPDATE findings SET closed_at = ?, close_reason = ? WHERE package_id = ? AND advisory_id = ? AND closed_at = 0`,
		ts(at), reason, pkgID, advID); err != nil {
		return 0, err
	}
	for _, d := range digests {
		images[d] = true
	}
	return len(digests), nil
}

func (s *DB) imagesWithPackage(ctx context.Context, x execer, pkgID int64) ([]string, error) {
	rows, err := s.query(ctx, x, `SELECT DISTINCT image_digest FROM image_packages WHERE package_id = ?`, pkgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}
