package sqlstore

import (
	"context"
	"database/sql"
	"sort"
	"strings"

	"github.com/socle-dev/socle/internal/store"
)

// span is a time interval [from, to) of a link or a match; to 0 is still
// open. reason is why it ended.
type span struct {
	from, to int64
	reason   string
}

// latestFinding derives the last state of one image finding from the
// spans of the image's link to the package and of the package's match to
// the advisory: each overlap is one time the finding was open, ended by
// whichever of the two ended first. ok is false when they never overlap.
func latestFinding(links, matches []span) (f span, ok bool) {
	for _, l := range links {
		for _, m := range matches {
			o := span{from: max(l.from, m.from)}
			switch {
			case l.to == 0 && m.to == 0:
			case l.to != 0 && (m.to == 0 || l.to < m.to):
				o.to, o.reason = l.to, l.reason
			default:
				o.to, o.reason = m.to, m.reason
			}
			if o.to != 0 && o.from >= o.to {
				continue
			}
			if !ok || o.from > f.from || (o.from == f.from && o.to == 0) {
				f, ok = o, true
			}
		}
	}
	return f, ok
}

func (s *DB) FindingsClosedAs(ctx context.Context, digest, prefix string) ([]store.Finding, error) {
	// Sticky closures are rows of their own.
	rows, err := s.query(ctx, s.db, findingColumns+`fc.opened_at, fc.closed_at, fc.close_reason`+findingTail+`
FROM finding_closures fc JOIN images i ON i.id = fc.image_id JOIN advisories a ON a.id = fc.advisory_id
JOIN packages p ON p.id = fc.package_id JOIN image_packages ip ON ip.image_id = fc.image_id AND ip.package_id = fc.package_id
JOIN binaries b ON b.id = ip.binary_id
LEFT JOIN package_matches pm ON pm.package_id = fc.package_id AND pm.advisory_id = fc.advisory_id
WHERE i.digest = ? AND fc.close_reason LIKE ?`, digest, prefix+"%")
	if err != nil {
		return nil, err
	}
	out, err := scanFindings(rows)
	if err != nil {
		return nil, err
	}
	derived, err := s.derivedClosed(ctx, digest, prefix)
	if err != nil {
		return nil, err
	}
	out = append(out, derived...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Package.Type != b.Package.Type {
			return a.Package.Type < b.Package.Type
		}
		if a.Package.Name != b.Package.Name {
			return a.Package.Name < b.Package.Name
		}
		if a.Package.Version != b.Package.Version {
			return a.Package.Version < b.Package.Version
		}
		return a.AdvisoryID < b.AdvisoryID
	})
	return out, nil
}

// imageSpans is what derivedClosed reads of one image: its package links
// (current and past), the matches of those packages (current and past),
// and the pairs a sticky closure holds.
type imageSpans struct {
	imageID int64
	links   map[int64][]span
	keys    map[int64]store.PackageKey
	matches map[pairKey][]span
	sticky  map[pairKey]bool
}

// derivedClosed lists the findings of an image whose last state is a
// closure a re-match may undo (the match or the link ended), for the
// packages the image holds now.
func (s *DB) derivedClosed(ctx context.Context, digest, prefix string) ([]store.Finding, error) {
	sp, err := s.readImageSpans(ctx, digest)
	if err != nil || sp == nil {
		return nil, err
	}
	closed := map[pairKey]span{}
	var pkgs []any
	advs := map[string]bool{}
	for k, ms := range sp.matches {
		if sp.sticky[k] {
			continue
		}
		f, ok := latestFinding(sp.links[k.pkg], ms)
		if !ok || f.to == 0 || !strings.HasPrefix(f.reason, prefix) {
			continue
		}
		closed[k] = f
		advs[k.adv] = true
	}
	if len(closed) == 0 {
		return nil, nil
	}
	seen := map[int64]bool{}
	for k := range closed {
		if !seen[k.pkg] {
			seen[k.pkg] = true
			pkgs = append(pkgs, k.pkg)
		}
	}
	advList := make([]any, 0, len(advs))
	for a := range advs {
		advList = append(advList, a)
	}
	byKey := map[store.PackageKey]int64{}
	for id, key := range sp.keys {
		byKey[key] = id
	}
	rows, err := s.query(ctx, s.db, findingColumns+`0, 0, ''`+findingTail+`
FROM image_packages ip JOIN binaries b ON b.id = ip.binary_id JOIN images i ON i.id = ip.image_id JOIN packages p ON p.id = ip.package_id
JOIN advisories a ON a.id IN (`+placeholders(len(advList))+`)
LEFT JOIN package_matches pm ON pm.package_id = ip.package_id AND pm.advisory_id = a.id
WHERE ip.image_id = ? AND ip.package_id IN (`+placeholders(len(pkgs))+`)`,
		append(append(advList, sp.imageID), pkgs...)...)
	if err != nil {
		return nil, err
	}
	all, err := scanFindings(rows)
	if err != nil {
		return nil, err
	}
	var out []store.Finding
	for _, f := range all {
		c, ok := closed[pairKey{byKey[f.Package.Key], f.AdvisoryID}]
		if !ok {
			continue
		}
		f.OpenedAt, f.ClosedAt, f.CloseReason = fromTS(c.from), fromTS(c.to), c.reason
		out = append(out, f)
	}
	return out, nil
}

// readImageSpans loads the spans of the packages an image holds now; nil
// when the image is unknown.
func (s *DB) readImageSpans(ctx context.Context, digest string) (*imageSpans, error) {
	sp := &imageSpans{links: map[int64][]span{}, keys: map[int64]store.PackageKey{}, matches: map[pairKey][]span{}, sticky: map[pairKey]bool{}}
	err := s.queryRow(ctx, s.db, `SELECT id FROM images WHERE digest = ?`, digest).Scan(&sp.imageID)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	err = s.eachRow(ctx, `SELECT DISTINCT ip.package_id, ip.since, p.ecosystem, p.name, p.version FROM image_packages ip
JOIN packages p ON p.id = ip.package_id WHERE ip.image_id = ?`, []any{sp.imageID}, func(r *sql.Rows) error {
		var id, since int64
		var k store.PackageKey
		if err := r.Scan(&id, &since, &k.Ecosystem, &k.Name, &k.Version); err != nil {
			return err
		}
		sp.links[id] = append(sp.links[id], span{from: since})
		sp.keys[id] = k
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Past links and matches of the packages held now.
	id := sp.imageID
	queries := []struct {
		q    string
		args []any
		fn   func(r *sql.Rows) error
	}{
		{`SELECT lh.package_id, lh.since, lh.until FROM link_history lh JOIN package_images pi
ON pi.image_id = lh.image_id AND pi.package_id = lh.package_id WHERE lh.image_id = ?`, []any{id}, func(r *sql.Rows) error {
			var id int64
			var sn span
			if err := r.Scan(&id, &sn.from, &sn.to); err != nil {
				return err
			}
			sn.reason = store.ClosePackageRemoved
			sp.links[id] = append(sp.links[id], sn)
			return nil
		}},
		{`SELECT pm.package_id, pm.advisory_id, pm.opened_at, 0, '' FROM package_matches pm
WHERE pm.package_id IN (SELECT package_id FROM image_packages WHERE image_id = ?)
UNION ALL SELECT mh.package_id, mh.advisory_id, mh.opened_at, mh.closed_at, mh.close_reason FROM match_history mh
WHERE mh.package_id IN (SELECT package_id FROM image_packages WHERE image_id = ?)`, []any{id, id}, func(r *sql.Rows) error {
			var k pairKey
			var sn span
			if err := r.Scan(&k.pkg, &k.adv, &sn.from, &sn.to, &sn.reason); err != nil {
				return err
			}
			sp.matches[k] = append(sp.matches[k], sn)
			return nil
		}},
		{`SELECT package_id, advisory_id FROM finding_closures WHERE image_id = ?`, []any{id}, func(r *sql.Rows) error {
			var k pairKey
			if err := r.Scan(&k.pkg, &k.adv); err != nil {
				return err
			}
			sp.sticky[k] = true
			return nil
		}},
	}
	for _, q := range queries {
		if err := s.eachRow(ctx, q.q, q.args, q.fn); err != nil {
			return nil, err
		}
	}
	return sp, nil
}
