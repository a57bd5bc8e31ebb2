package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"sort"
	"strings"
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
	// Package order: concurrent writers lock rows in the same order.
	updates = slices.Clone(updates)
	slices.SortStableFunc(updates, func(a, b store.MatchUpdate) int { return cmp.Compare(a.PackageID, b.PackageID) })
	err := s.inTxRetry(ctx, func(tx *sql.Tx) error {
		ch = store.FindingChanges{}
		ids := make([]int64, 0, len(updates))
		for _, u := range updates {
			ids = append(ids, u.PackageID)
		}
		old, err := s.matchesOf(ctx, tx, ids)
		if err != nil {
			return err
		}
		d := diffMatches(updates, old)
		if err := s.closeMatches(ctx, tx, d.closed, at); err != nil {
			return err
		}
		if err := s.upsertMatches(ctx, tx, d.upserts, at); err != nil {
			return err
		}
		for _, batch := range chunks(ids, 500) {
			if _, err := s.exec(ctx, tx, `UPDATE packages SET matched_at = ? WHERE id IN (`+placeholders(len(batch))+`)`,
				append([]any{ts(at)}, anySlice(batch)...)...); err != nil {
				return err
			}
		}
		if ch, err = s.countChanges(ctx, tx, d); err != nil {
			return err
		}
		if len(d.upserts)+len(d.closed) > 0 {
			return s.bump(ctx, tx, findingsGenKey)
		}
		return nil
	})
	return ch, err
}

// matchPair is one (package version, advisory) match that changed.
type matchPair struct {
	pkg     int64
	adv     string
	fixed   string
	reason  string // a closed match's reason
	added   bool   // an upsert that opens the match (not a new fixed version)
	fixable bool
}

// matchDiff is what a SetMatches call changes, pair by pair.
type matchDiff struct {
	upserts, closed []matchPair
}

// diffMatches compares the new matches of each package with the stored
// ones, in a stable order.
func diffMatches(updates []store.MatchUpdate, old map[int64]map[string]string) matchDiff {
	var d matchDiff
	for _, u := range updates {
		oldBy := old[u.PackageID]
		newBy := make(map[string]string, len(u.Matches))
		for _, m := range u.Matches {
			newBy[m.AdvisoryID] = m.FixedVersion
		}
		for _, id := range sortedKeys(newBy) {
			prev, had := oldBy[id]
			if had && prev == newBy[id] {
				continue
			}
			d.upserts = append(d.upserts, matchPair{pkg: u.PackageID, adv: id, fixed: newBy[id], added: !had, fixable: newBy[id] != ""})
		}
		for _, id := range sortedKeys(oldBy) {
			if _, ok := newBy[id]; ok {
				continue
			}
			reason := u.CloseReasons[id]
			if reason == "" {
				reason = store.CloseNoLongerAffected
			}
			d.closed = append(d.closed, matchPair{pkg: u.PackageID, adv: id, reason: reason})
		}
	}
	return d
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pairValues is "(?, ?), (?, ?)..." and its arguments, for a
// (package_id, advisory_id) IN (VALUES ...) test.
func pairValues(ps []matchPair) (string, []any) {
	args := make([]any, 0, 2*len(ps))
	for _, p := range ps {
		args = append(args, p.pkg, p.adv)
	}
	return strings.TrimSuffix(strings.Repeat("(CAST(? AS BIGINT), ?), ", len(ps)), ", "), args
}

// closeMatches moves ended matches to match_history, one row per package
// version and advisory, whatever the number of images holding it.
func (s *DB) closeMatches(ctx context.Context, tx *sql.Tx, closed []matchPair, at time.Time) error {
	byReason := map[string][]matchPair{}
	var reasons []string
	for _, c := range closed {
		if byReason[c.reason] == nil {
			reasons = append(reasons, c.reason)
		}
		byReason[c.reason] = append(byReason[c.reason], c)
	}
	for _, reason := range reasons {
		for _, batch := range chunks(byReason[reason], 400) {
			vals, args := pairValues(batch)
			if _, err := s.exec(ctx, tx, `INSERT INTO match_history (package_id, advisory_id, opened_at, closed_at, close_reason)
SELECT package_id, advisory_id, opened_at, ?, ? FROM package_matches WHERE (package_id, advisory_id) IN (VALUES `+vals+`)
ON CONFLICT (package_id, advisory_id, opened_at) DO UPDATE SET closed_at = excluded.closed_at, close_reason = excluded.close_reason`,
				append([]any{ts(at), reason}, args...)...); err != nil {
				return err
			}
			if _, err := s.exec(ctx, tx, `DELETE FROM package_matches WHERE (package_id, advisory_id) IN (VALUES `+vals+`)`, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// upsertMatches stores new matches, opened at at, and new fixed versions
// of kept ones.
func (s *DB) upsertMatches(ctx context.Context, tx *sql.Tx, ups []matchPair, at time.Time) error {
	for _, batch := range chunks(ups, 250) {
		args := make([]any, 0, 4*len(batch))
		for _, u := range batch {
			args = append(args, u.pkg, u.adv, u.fixed, ts(at))
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO package_matches (package_id, advisory_id, fixed_version, opened_at) VALUES `+rowPlaceholders(len(batch), 4)+`
ON CONFLICT (package_id, advisory_id) DO UPDATE SET fixed_version = excluded.fixed_version`, args...); err != nil {
			return err
		}
	}
	return nil
}

// countChanges counts the image findings a diff opened and closed: the
// images holding each changed package version, less those a sticky
// closure keeps closed. It reads one index count per package version and
// lists at most store.MaxChangedImages images.
func (s *DB) countChanges(ctx context.Context, tx *sql.Tx, d matchDiff) (store.FindingChanges, error) {
	var ch store.FindingChanges
	var opened, closed []matchPair
	for _, u := range d.upserts {
		if u.added {
			opened = append(opened, u)
		}
	}
	closed = d.closed
	if len(opened)+len(closed) == 0 {
		return ch, nil
	}
	pairs := append(append([]matchPair(nil), opened...), closed...)
	var changed []int64
	seen := map[int64]bool{}
	for _, p := range pairs {
		if !seen[p.pkg] {
			seen[p.pkg] = true
			changed = append(changed, p.pkg)
		}
	}
	holders, err := s.linkCounts(ctx, tx, changed)
	if err != nil {
		return ch, err
	}
	var pkgs []int64
	for _, id := range changed {
		if holders[id] > 0 {
			pkgs = append(pkgs, id)
		}
	}
	sticky, err := s.stickyCounts(ctx, tx, pairs)
	if err != nil {
		return ch, err
	}
	for _, p := range opened {
		n := holders[p.pkg] - sticky[pairKey{p.pkg, p.adv}]
		ch.Opened += n
		if p.fixable {
			ch.OpenedFixable += n
		}
	}
	for _, p := range closed {
		ch.Closed += holders[p.pkg] - sticky[pairKey{p.pkg, p.adv}]
	}
	ch.Images, ch.ImagesTruncated, err = s.someHolders(ctx, tx, pkgs, store.MaxChangedImages)
	return ch, err
}

type pairKey struct {
	pkg int64
	adv string
}

// stickyCounts counts, per pair, the images still holding the package
// whose finding a sticky closure keeps closed.
func (s *DB) stickyCounts(ctx context.Context, tx *sql.Tx, ps []matchPair) (map[pairKey]int, error) {
	out := map[pairKey]int{}
	for _, batch := range chunks(ps, 400) {
		vals, args := pairValues(batch)
		rows, err := s.query(ctx, tx, `SELECT fc.package_id, fc.advisory_id, COUNT(*) FROM finding_closures fc
WHERE (fc.package_id, fc.advisory_id) IN (VALUES `+vals+`)
AND `+linkHeld("fc.package_id", "fc.image_id")+`
GROUP BY fc.package_id, fc.advisory_id`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k pairKey
			var n int
			if err := rows.Scan(&k.pkg, &k.adv, &n); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// someHolders lists up to max distinct images holding any of pkgs, in
// digest order; more is true when there may be others.
func (s *DB) someHolders(ctx context.Context, tx *sql.Tx, pkgs []int64, max int) (list []string, more bool, err error) {
	seen := map[string]bool{}
	for _, p := range pkgs {
		err := s.eachRowIn(ctx, tx, `SELECT i.digest FROM (SELECT image_id FROM package_images WHERE package_id = ?
	UNION ALL SELECT image_id FROM package_images_log WHERE package_id = ?
	UNION ALL SELECT ig.image_id FROM group_packages gp JOIN image_groups ig ON ig.group_id = gp.group_id WHERE gp.package_id = ?) pi
JOIN images i ON i.id = pi.image_id LIMIT ?`,
			[]any{p, p, p, max + 1}, func(r *sql.Rows) error {
				var d string
				if err := r.Scan(&d); err != nil {
					return err
				}
				if !seen[d] && len(seen) >= max {
					more = true
					return nil
				}
				seen[d] = true
				return nil
			})
		if err != nil {
			return nil, false, err
		}
		if more {
			break
		}
	}
	list = make([]string, 0, len(seen))
	for d := range seen {
		list = append(list, d)
	}
	sort.Strings(list)
	return list, more, nil
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

// imageIDsHolding lists limit images holding a package version, after
// the first offset, oldest first: the branches of holderBranches merged.
func (s *DB) imageIDsHolding(ctx context.Context, pkgID int64, limit, offset int) ([]int64, error) {
	branches, args, err := s.holderBranches(ctx, pkgID, offset+limit)
	if err != nil {
		return nil, err
	}
	query := branches + ` ORDER BY 1 LIMIT ? OFFSET ?`
	args = append(args, limit, offset)
	var out []int64
	err = s.eachRow(ctx, query, args, func(r *sql.Rows) error {
		var id int64
		if err := r.Scan(&id); err != nil {
			return err
		}
		out = append(out, id)
		return nil
	})
	return out, err
}

// distinctHolders counts the images holding any of pkgs (counts holds
// each one's own count). When they are versions of one package, an image
// holding several of them is one of the few package_multi lists, so the
// count is the sum less those; otherwise the holders are counted
// distinct.
func (s *DB) distinctHolders(ctx context.Context, pkgs []int64, keys map[int64]store.PackageKey, counts map[int64]int) (int, error) {
	sum := 0
	for _, p := range pkgs {
		sum += counts[p]
	}
	if len(pkgs) < 2 {
		return sum, nil
	}
	one := true
	for _, p := range pkgs[1:] {
		a, b := keys[p], keys[pkgs[0]]
		one = one && a.Ecosystem == b.Ecosystem && a.Name == b.Name
	}
	var n int
	if !one {
		in := placeholders(len(pkgs))
		err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM (SELECT image_id FROM package_images WHERE package_id IN (`+in+`)
UNION SELECT image_id FROM package_images_log WHERE package_id IN (`+in+`)
UNION SELECT ig.image_id FROM group_packages gp JOIN image_groups ig ON ig.group_id = gp.group_id WHERE gp.package_id IN (`+in+`)) d`,
			append(append(anySlice(pkgs), anySlice(pkgs)...), anySlice(pkgs)...)...).Scan(&n)
		return n, err
	}
	err := s.queryRow(ctx, s.db, `SELECT COALESCE(SUM(c - 1), 0) FROM (SELECT COUNT(*) AS c FROM package_multi WHERE package_id IN (`+
		placeholders(len(pkgs))+`) GROUP BY image_id) d`, anySlice(pkgs)...).Scan(&n)
	return sum - n, err
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
