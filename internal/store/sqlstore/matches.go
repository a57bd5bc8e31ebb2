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
	return s.SetMatches(ctx, []store.MatchUpdate{{PackageID: pkgID, Matches: matches, CloseReasons: closeReasons}}, at)
}

func (s *DB) SetMatches(ctx context.Context, updates []store.MatchUpdate, at time.Time) (store.FindingChanges, error) {
	var ch store.FindingChanges
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ch = store.FindingChanges{}
		images := map[string]bool{}
		ids := make([]int64, 0, len(updates))
		for _, u := range updates {
			ids = append(ids, u.PackageID)
		}
		old, err := s.matchesOf(ctx, tx, ids)
		if err != nil {
			return err
		}
		var upserts []any
		nUpserts := 0
		for _, u := range updates {
			oldBy := old[u.PackageID]
			newBy := make(map[string]string, len(u.Matches))
			for _, m := range u.Matches {
				newBy[m.AdvisoryID] = m.FixedVersion
			}
			var added []string
			for id, fixed := range newBy {
				prev, had := oldBy[id]
				if had && prev == fixed {
					continue
				}
				upserts = append(upserts, u.PackageID, id, fixed)
				nUpserts++
				if !had {
					added = append(added, id)
				}
			}
			byReason := map[string][]string{}
			var removed []string
			for id := range oldBy {
				if _, ok := newBy[id]; ok {
					continue
				}
				reason := u.CloseReasons[id]
				if reason == "" {
					reason = "no longer affected"
				}
				byReason[reason] = append(byReason[reason], id)
				removed = append(removed, id)
			}
			if len(removed) > 0 {
				sort.Strings(removed)
				if _, err := s.exec(ctx, tx, `DELETE FROM package_matches WHERE package_id = ? AND advisory_id IN (`+placeholders(len(removed))+`)`,
					append([]any{u.PackageID}, anySlice(removed)...)...); err != nil {
					return err
				}
				for reason, advs := range byReason {
					n, err := s.closeFindings(ctx, tx, u.PackageID, advs, reason, at, images)
					if err != nil {
						return err
					}
					ch.Closed += n
				}
			}
			if len(added) > 0 {
				sort.Strings(added)
				var fixable, unfixed []string
				for _, id := range added {
					if newBy[id] != "" {
						fixable = append(fixable, id)
					} else {
						unfixed = append(unfixed, id)
					}
				}
				if len(fixable) > 0 {
					n, err := s.openFindings(ctx, tx, u.PackageID, fixable, at, images)
					if err != nil {
						return err
					}
					ch.Opened += n
					ch.OpenedFixable += n
				}
				if len(unfixed) > 0 {
					n, err := s.openFindings(ctx, tx, u.PackageID, unfixed, at, images)
					if err != nil {
						return err
					}
					ch.Opened += n
				}
			}
		}
		for _, batch := range chunks(upserts, 300) {
			if _, err := s.exec(ctx, tx, `INSERT INTO package_matches (package_id, advisory_id, fixed_version) VALUES `+rowPlaceholders(len(batch)/3, 3)+`
ON CONFLICT (package_id, advisory_id) DO UPDATE SET fixed_version = excluded.fixed_version`, batch...); err != nil {
				return err
			}
		}
		for _, batch := range chunks(ids, 500) {
			if _, err := s.exec(ctx, tx, `UPDATE packages SET matched_at = ? WHERE id IN (`+placeholders(len(batch))+`)`,
				append([]any{ts(at)}, anySlice(batch)...)...); err != nil {
				return err
			}
		}
		for d := range images {
			ch.Images = append(ch.Images, d)
		}
		sort.Strings(ch.Images)
		if nUpserts > 0 || ch.Opened+ch.Closed > 0 {
			return s.bump(ctx, tx, findingsGenKey)
		}
		return nil
	})
	return ch, err
}

// matchesOf loads the current matches of several packages.
func (s *DB) matchesOf(ctx context.Context, x execer, ids []int64) (map[int64]map[string]string, error) {
	out := make(map[int64]map[string]string, len(ids))
	for _, batch := range chunks(ids, 500) {
		rows, err := s.query(ctx, x, `SELECT package_id, advisory_id, fixed_version FROM package_matches WHERE package_id IN (`+placeholders(len(batch))+`)`, anySlice(batch)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id int64
			var adv, fixed string
			if err := rows.Scan(&id, &adv, &fixed); err != nil {
				rows.Close()
				return nil, err
			}
			if out[id] == nil {
				out[id] = map[string]string{}
			}
			out[id][adv] = fixed
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// openFindings opens, in every image holding the package, a finding for
// each advisory; a closed one reopens.
func (s *DB) openFindings(ctx context.Context, tx *sql.Tx, pkgID int64, advIDs []string, at time.Time, images map[string]bool) (int, error) {
	held, err := s.imagesHolding(ctx, tx, pkgID)
	if err != nil {
		return 0, err
	}
	var rows []any
	for _, h := range held {
		for _, a := range advIDs {
			rows = append(rows, h.id, pkgID, a, ts(at))
		}
	}
	n := 0
	for _, batch := range chunks(rows, 400) {
		res, err := s.exec(ctx, tx, `INSERT INTO findings (image_id, package_id, advisory_id, opened_at) VALUES `+rowPlaceholders(len(batch)/4, 4)+`
`+reopenFinding, batch...)
		if err != nil {
			return 0, err
		}
		k, _ := res.RowsAffected()
		n += int(k)
	}
	if n > 0 {
		for _, h := range held {
			images[h.digest] = true
		}
	}
	return n, nil
}

// closeFindings closes the open findings of a package for advisories.
func (s *DB) closeFindings(ctx context.Context, tx *sql.Tx, pkgID int64, advIDs []string, reason string, at time.Time, images map[string]bool) (int, error) {
	args := append([]any{pkgID}, anySlice(advIDs)...)
	rows, err := s.query(ctx, tx, `SELECT DISTINCT i.digest FROM findings f JOIN images i ON i.id = f.image_id
WHERE f.package_id = ? AND f.advisory_id IN (`+placeholders(len(advIDs))+`) AND f.closed_at = 0`, args...)
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
	res, err := s.exec(ctx, tx, `UPDATE findings SET closed_at = ?, close_reason = ? WHERE package_id = ? AND advisory_id IN (`+placeholders(len(advIDs))+`) AND closed_at = 0`,
		append([]any{ts(at), reason}, args...)...)
	if err != nil {
		return 0, err
	}
	for _, d := range digests {
		images[d] = true
	}
	k, _ := res.RowsAffected()
	return int(k), nil
}

// heldImage is an image holding a package.
type heldImage struct {
	id     int64
	digest string
}

// imagesHolding lists the images holding a package version, from the
// (package_id, image_id) index, in digest order.
func (s *DB) imagesHolding(ctx context.Context, x execer, pkgID int64) ([]heldImage, error) {
	rows, err := s.query(ctx, x, `SELECT i.id, i.digest FROM package_images pi JOIN images i ON i.id = pi.image_id WHERE pi.package_id = ?`, pkgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []heldImage
	for rows.Next() {
		var h heldImage
		if err := rows.Scan(&h.id, &h.digest); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].digest < out[j].digest })
	return out, rows.Err()
}

// imageIDsHolding lists the images holding a package version, oldest
// first, from the (package_id, image_id) primary key alone.
func (s *DB) imageIDsHolding(ctx context.Context, pkgID int64) ([]int64, error) {
	rows, err := s.query(ctx, s.db, `SELECT image_id FROM package_images WHERE package_id = ? ORDER BY image_id`, pkgID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// PackageNames lists every (ecosystem, name) the store holds versions of.
func (s *DB) PackageNames(ctx context.Context) ([]store.PackageName, error) {
	rows, err := s.query(ctx, s.db, `SELECT DISTINCT ecosystem, name FROM packages ORDER BY ecosystem, name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PackageName
	for rows.Next() {
		var n store.PackageName
		if err := rows.Scan(&n.Ecosystem, &n.Name); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}
