package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/order"
	"github.com/socle-dev/socle/internal/store"
)

// pairFinding is a finding of one of an image's package versions, before
// showFindings shows it once per binary package of that version.
type pairFinding struct {
	pkg                int64
	adv, fixed, reason string
	opened, closed     int64
}

// showFindings turns an image's findings of package versions into its
// findings, one per package row of the version. What the binary, the
// package version and the advisory are comes from caches of rows that
// never change (or, for advisories, are checked against their
// generation); a finding of an unknown advisory is left out.
func (s *DB) showFindings(ctx context.Context, digest string, im *imageRows, pairs []pairFinding) ([]store.Finding, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	advs := map[string]bool{}
	for _, p := range pairs {
		advs[p.adv] = true
	}
	ids := make([]string, 0, len(advs))
	for id := range advs {
		ids = append(ids, id)
	}
	shown, err := s.advisoriesShown(ctx, im.advGen, ids)
	if err != nil {
		return nil, err
	}
	// Only the package versions with a finding to show, and their
	// binaries, are looked up.
	wanted := map[int64]bool{}
	for _, p := range pairs {
		if shown[p.adv] != nil {
			wanted[p.pkg] = true
		}
	}
	byPkg, bins := im.rowsOf(wanted)
	keys, binaries, err := s.packageRows(ctx, sortedIDs(wanted), bins)
	if err != nil {
		return nil, err
	}
	// What to show, sorted before the findings (large values) are made.
	type item struct {
		b       binaryKey
		row     packRow
		pair    *pairFinding
		advisor *advisoryShown
	}
	items := make([]item, 0, len(pairs))
	for i := range pairs {
		p := &pairs[i]
		a := shown[p.adv]
		if a == nil {
			continue
		}
		for _, r := range byPkg[p.pkg] {
			if b := binaries[r.bin]; b.name != "" {
				items = append(items, item{b: b, row: r, pair: p, advisor: a})
			}
		}
	}
	sorted := order.Indices(items, func(x, y *item) int {
		return cmp.Or(strings.Compare(x.b.typ, y.b.typ), strings.Compare(x.b.name, y.b.name), strings.Compare(x.b.version, y.b.version),
			strings.Compare(x.pair.adv, y.pair.adv))
	})
	out := make([]store.Finding, len(items))
	for i, k := range sorted {
		it := &items[k]
		f, p, b := &out[i], it.pair, &it.b
		*f = store.Finding{ImageDigest: digest, AdvisoryID: p.adv, FixedVersion: p.fixed, CloseReason: p.reason,
			OpenedAt: fromTS(p.opened), ClosedAt: fromTS(p.closed)}
		f.Package = store.ImagePackage{Key: keys[p.pkg], Name: b.name, Version: b.version, Type: b.typ, PURL: b.purl,
			Path: b.path, Layer: im.layerOf(it.row), LayerIndex: it.row.layerIndex}
		it.advisor.show(f)
	}
	return out, nil
}

// ImageFindings derives an image's open findings: each package it holds
// that a current match affects, unless a sticky closure keeps the
// finding closed. A finding opened when both the link and the match
// existed.
func (s *DB) ImageFindings(ctx context.Context, digest string) ([]store.Finding, error) {
	im, err := s.readImageRows(ctx, s.db, digest)
	if err != nil || im == nil || len(im.rows) == 0 {
		return nil, err
	}
	since := map[int64]int64{}
	for _, r := range im.rows {
		since[r.pkg] = r.since
	}
	var pairs []pairFinding
	for _, batch := range chunks(im.packages(), 500) {
		from, args := byPackages(s, "package_matches", "pm", batch)
		// The image's sticky closures are left out in the same statement.
		err := s.eachRow(ctx, `SELECT pm.package_id, pm.advisory_id, pm.fixed_version, pm.opened_at FROM `+from+`
WHERE NOT EXISTS (SELECT 1 FROM finding_closures fc
	WHERE fc.image_id = ? AND fc.package_id = pm.package_id AND fc.advisory_id = pm.advisory_id)`, append(args, im.id), func(r *sql.Rows) error {
			var p pairFinding
			if err := r.Scan(&p.pkg, &p.adv, &p.fixed, &p.opened); err != nil {
				return err
			}
			p.opened = max(p.opened, since[p.pkg])
			pairs = append(pairs, p)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return s.showFindings(ctx, digest, im, pairs)
}

// rowsOf groups the image's rows of the package versions pkgs by
// version, and lists their binaries.
func (im *imageRows) rowsOf(pkgs map[int64]bool) (map[int64][]packRow, []int64) {
	byPkg := map[int64][]packRow{}
	bins := map[int64]bool{}
	for _, r := range im.rows {
		if pkgs[r.pkg] {
			byPkg[r.pkg] = append(byPkg[r.pkg], r)
			bins[r.bin] = true
		}
	}
	return byPkg, sortedIDs(bins)
}

func sortedIDs(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// packageRows returns package keys and binaries by ID, from the cache
// or, for those it lacks, from the database (then cached).
func (s *DB) packageRows(ctx context.Context, pkgs, bins []int64) (map[int64]store.PackageKey, map[int64]binaryKey, error) {
	keys, binaries, missingPkgs, missingBins := s.packages.lookup(pkgs, bins)
	readKeys, readBins := map[int64]store.PackageKey{}, map[int64]binaryKey{}
	for _, batch := range chunks(missingPkgs, 500) {
		in, args := inList(s, batch)
		err := s.eachRow(ctx, `SELECT id, ecosystem, name, version FROM packages WHERE id `+in, args, func(r *sql.Rows) error {
			var id int64
			var k store.PackageKey
			if err := r.Scan(&id, &k.Ecosystem, &k.Name, &k.Version); err != nil {
				return err
			}
			keys[id], readKeys[id] = k, k
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	for _, batch := range chunks(missingBins, 500) {
		in, args := inList(s, batch)
		err := s.eachRow(ctx, `SELECT id, package_id, name, version, type, purl, path FROM binaries WHERE id `+in, args, func(r *sql.Rows) error {
			var id int64
			var b binaryKey
			if err := r.Scan(&id, &b.pkg, &b.name, &b.version, &b.typ, &b.purl, &b.path); err != nil {
				return err
			}
			binaries[id], readBins[id] = b, b
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	if len(readKeys)+len(readBins) > 0 {
		s.packages.rememberRows(readKeys, readBins)
	}
	return keys, binaries, nil
}

// affectedHit is one package version an answer covers.
type affectedHit struct {
	pkg             int64
	adv, fixed, sev string
	key             store.PackageKey
	name            string // the name to show
}

func (s *DB) AffectedImages(ctx context.Context, q store.AffectedQuery) (store.AffectedResult, error) {
	var res store.AffectedResult
	var hits []affectedHit
	var err error
	switch {
	case q.Advisory != "":
		hits, err = s.advisoryHits(ctx, q.Advisory)
	case q.Package != "":
		hits, err = s.packageHits(ctx, q)
	default:
		return res, nil
	}
	if err != nil || len(hits) == 0 {
		return res, err
	}
	current, err := s.refreshNames(ctx)
	if err != nil {
		return res, err
	}
	// Every image holding a matched package version has the finding
	// open, by construction: the index answers without findings rows. The
	// counts come from the index; only the page's image IDs are read.
	keys := map[int64]store.PackageKey{}
	var pkgs []int64
	for _, h := range hits {
		if _, ok := keys[h.pkg]; !ok {
			keys[h.pkg] = h.key
			pkgs = append(pkgs, h.pkg)
		}
	}
	counts, err := s.linkCounts(ctx, s.db, pkgs)
	if err != nil {
		return res, err
	}
	for _, h := range hits {
		res.Total += counts[h.pkg]
	}
	if res.Images, err = s.distinctHolders(ctx, pkgs, keys, counts); err != nil {
		return res, err
	}
	type row struct {
		hit int
		id  int64
	}
	var rows []row
	skip, want := q.Offset, q.Limit
	for i, h := range hits {
		c := counts[h.pkg]
		if skip >= c {
			skip -= c
			continue
		}
		take := c - skip
		if want > 0 {
			take = min(take, want-len(rows))
		}
		if take <= 0 {
			break
		}
		ids, err := s.imageIDsHolding(ctx, h.pkg, take, skip)
		if err != nil {
			return res, err
		}
		skip = 0
		for _, id := range ids {
			rows = append(rows, row{i, id})
		}
	}
	ids := make([]int64, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.id)
	}
	names, err := s.describe(ctx, ids)
	if err != nil {
		return res, err
	}
	digests := make([]string, 0, len(names))
	for _, n := range names {
		digests = append(digests, n.digest)
	}
	tags, envs, err := s.tagsAndEnvs(ctx, current, digests)
	if err != nil {
		return res, err
	}
	res.Rows = make([]store.AffectedImage, 0, len(rows))
	for _, r := range rows {
		h, n := hits[r.hit], names[r.id]
		res.Rows = append(res.Rows, store.AffectedImage{
			Digest: n.digest, Repository: n.repository, Tags: tags[n.digest], Environments: envs[n.digest],
			AdvisoryID: h.adv, FixedVersion: h.fixed, Severity: h.sev,
			Package: store.ImagePackage{Key: h.key, Name: h.name, Version: h.key.Version},
		})
	}
	return res, nil
}

// advisoryHits lists the package versions matched by an advisory and its
// aliases.
func (s *DB) advisoryHits(ctx context.Context, advisory string) ([]affectedHit, error) {
	ids, err := s.ResolveAdvisoryIDs(ctx, advisory)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	rows, err := s.query(ctx, s.db, `SELECT pm.package_id, pm.advisory_id, pm.fixed_version, a.severity, p.ecosystem, p.name, p.version
FROM package_matches pm JOIN advisories a ON a.id = pm.advisory_id JOIN packages p ON p.id = pm.package_id
WHERE pm.advisory_id IN (`+placeholders(len(ids))+`) ORDER BY p.name, p.version, pm.advisory_id`, anySlice(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var hits []affectedHit
	for rows.Next() {
		var h affectedHit
		if err := rows.Scan(&h.pkg, &h.adv, &h.fixed, &h.sev, &h.key.Ecosystem, &h.key.Name, &h.key.Version); err != nil {
			return nil, err
		}
		h.name = h.key.Name
		hits = append(hits, h)
	}
	return hits, rows.Err()
}

// packageHits lists the package versions a package query names: by the
// matched (source) name or by a binary package's name.
func (s *DB) packageHits(ctx context.Context, q store.AffectedQuery) ([]affectedHit, error) {
	byBinary := map[int64]bool{}
	rows, err := s.query(ctx, s.db, `SELECT DISTINCT package_id FROM binaries WHERE name = ?`, q.Package)
	if err != nil {
		return nil, err
	}
	var ids []any
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		byBinary[id] = true
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	where, args := `name = ?`, []any{q.Package}
	if len(ids) > 0 {
		where = `(name = ? OR id IN (` + placeholders(len(ids)) + `))`
		args = append(args, ids...)
	}
	if q.Ecosystem != "" {
		where += ` AND (ecosystem = ? OR ecosystem LIKE ?)`
		args = append(args, q.Ecosystem, q.Ecosystem+":%")
	}
	if q.Version != "" {
		where += ` AND version = ?`
		args = append(args, q.Version)
	}
	prows, err := s.query(ctx, s.db, `SELECT id, ecosystem, name, version FROM packages WHERE `+where+` ORDER BY name, version`, args...)
	if err != nil {
		return nil, err
	}
	defer prows.Close()
	var hits []affectedHit
	for prows.Next() {
		var h affectedHit
		if err := prows.Scan(&h.pkg, &h.key.Ecosystem, &h.key.Name, &h.key.Version); err != nil {
			return nil, err
		}
		h.name = h.key.Name
		if byBinary[h.pkg] {
			h.name = q.Package
		}
		hits = append(hits, h)
	}
	return hits, prows.Err()
}

func (s *DB) FindingTrend(ctx context.Context, from, to time.Time, step time.Duration) ([]store.TrendPoint, error) {
	if step <= 0 || !to.After(from) {
		return nil, nil
	}
	var out []store.TrendPoint
	for t := from; !t.After(to); t = t.Add(step) {
		var open, fixable int
		at := ts(t)
		// A finding is open at t when the image linked the package and the
		// match held at t, and no sticky closure came before t.
		err := s.queryRow(ctx, s.db, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN cur.fixed_version <> '' THEN 1 ELSE 0 END), 0)
FROM (SELECT image_id, package_id, since, 0 AS until FROM package_images
	UNION ALL SELECT image_id, package_id, since, 0 AS until FROM package_images_log
	UNION ALL SELECT ig.image_id, gp.package_id, ig.since, 0 AS until FROM group_packages gp JOIN image_groups ig ON ig.group_id = gp.group_id
	UNION ALL SELECT image_id, package_id, since, until FROM link_history) l
JOIN (SELECT package_id, advisory_id, opened_at, 0 AS closed_at FROM package_matches
	UNION ALL SELECT package_id, advisory_id, opened_at, closed_at FROM match_history) m ON m.package_id = l.package_id
JOIN advisories a ON a.id = m.advisory_id
LEFT JOIN package_matches cur ON cur.package_id = m.package_id AND cur.advisory_id = m.advisory_id
LEFT JOIN finding_closures fc ON fc.image_id = l.image_id AND fc.package_id = l.package_id AND fc.advisory_id = m.advisory_id
WHERE l.since <= ? AND (l.until = 0 OR l.until > ?) AND m.opened_at <= ? AND (m.closed_at = 0 OR m.closed_at > ?)
AND (fc.closed_at IS NULL OR fc.closed_at > ?) AND a.withdrawn = 0
AND l.image_id IN (SELECT i.id FROM images i JOIN tags t ON t.digest = i.digest)`, at, at, at, at, at).Scan(&open, &fixable)
		if err != nil {
			return nil, err
		}
		out = append(out, store.TrendPoint{At: t, Open: open, Fixable: fixable})
	}
	return out, nil
}

func (s *DB) CloseFindings(ctx context.Context, digest string, keys []store.FindingKey, reason string, at time.Time) (int, error) {
	if !store.Sticky(reason) {
		return 0, fmt.Errorf("closing findings of %s: %q is not a reason a re-match keeps (%q, %q)", digest, reason, store.CloseFixedByRebuild, store.CloseVEX)
	}
	n := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		im, err := s.readImageRows(ctx, tx, digest)
		if err != nil || im == nil {
			return err
		}
		bins := map[int64]bool{}
		for _, r := range im.rows {
			bins[r.bin] = true
		}
		_, binaries, err := s.packageRows(ctx, nil, sortedIDs(bins))
		if err != nil {
			return err
		}
		for _, k := range keys {
			done := map[int64]bool{}
			for _, r := range im.rows {
				if done[r.pkg] || binaries[r.bin].name != k.Package {
					continue
				}
				done[r.pkg] = true
				res, err := s.exec(ctx, tx, `INSERT INTO finding_closures (image_id, package_id, advisory_id, opened_at, closed_at, close_reason)
SELECT ?, pm.package_id, pm.advisory_id, CASE WHEN ? > pm.opened_at THEN ? ELSE pm.opened_at END, ?, ?
FROM package_matches pm WHERE pm.package_id = ? AND pm.advisory_id = ?
ON CONFLICT (image_id, package_id, advisory_id) DO NOTHING`, im.id, r.since, r.since, ts(at), reason, r.pkg, k.AdvisoryID)
				if err != nil {
					return err
				}
				c, _ := res.RowsAffected()
				n += int(c)
			}
		}
		if n > 0 {
			return s.bump(ctx, tx, findingsGenKey)
		}
		return nil
	})
	return n, err
}
