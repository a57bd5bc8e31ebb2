package sqlstore

import (
	"context"
	"database/sql"
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
	im, err := s.readImageRows(ctx, s.db, digest)
	if err != nil || im == nil {
		return nil, err
	}
	// Sticky closures are rows of their own.
	var pairs []pairFinding
	err = s.eachRow(ctx, `SELECT fc.package_id, fc.advisory_id, COALESCE(pm.fixed_version, ''), fc.opened_at, fc.closed_at, fc.close_reason
FROM finding_closures fc LEFT JOIN package_matches pm ON pm.package_id = fc.package_id AND pm.advisory_id = fc.advisory_id
WHERE fc.image_id = ? AND fc.close_reason LIKE ?`, []any{im.id, prefix + "%"}, func(r *sql.Rows) error {
		var p pairFinding
		if err := r.Scan(&p.pkg, &p.adv, &p.fixed, &p.opened, &p.closed, &p.reason); err != nil {
			return err
		}
		pairs = append(pairs, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	derived, err := s.derivedClosed(ctx, im, prefix)
	if err != nil {
		return nil, err
	}
	return s.showFindings(ctx, digest, im, append(pairs, derived...))
}

// imageSpans is what derivedClosed reads of one image: its package links
// (current and past), the matches of those packages (current and past,
// with the current ones' fixed versions), and the pairs a sticky closure
// holds.
type imageSpans struct {
	links   map[int64][]span
	matches map[pairKey][]span
	fixed   map[pairKey]string
	sticky  map[pairKey]bool
}

// derivedClosed lists the findings of an image whose last state is a
// closure a re-match may undo (the match or the link ended), for the
// packages the image holds now.
func (s *DB) derivedClosed(ctx context.Context, im *imageRows, prefix string) ([]pairFinding, error) {
	sp, err := s.readImageSpans(ctx, im)
	if err != nil {
		return nil, err
	}
	var out []pairFinding
	for k, ms := range sp.matches {
		if sp.sticky[k] {
			continue
		}
		f, ok := latestFinding(sp.links[k.pkg], ms)
		if !ok || f.to == 0 || !strings.HasPrefix(f.reason, prefix) {
			continue
		}
		out = append(out, pairFinding{pkg: k.pkg, adv: k.adv, fixed: sp.fixed[k], opened: f.from, closed: f.to, reason: f.reason})
	}
	return out, nil
}

// readImageSpans loads the spans of the packages an image holds now.
func (s *DB) readImageSpans(ctx context.Context, im *imageRows) (*imageSpans, error) {
	sp := &imageSpans{links: map[int64][]span{}, matches: map[pairKey][]span{}, fixed: map[pairKey]string{}}
	for _, r := range im.rows {
		if len(sp.links[r.pkg]) == 0 {
			sp.links[r.pkg] = []span{{from: r.since}}
		}
	}
	// Past links of the packages held now.
	err := s.eachRow(ctx, `SELECT lh.package_id, lh.since, lh.until FROM link_history lh WHERE lh.image_id = ?
AND `+linkHeld("lh.package_id", "lh.image_id"),
		[]any{im.id}, func(r *sql.Rows) error {
			var id int64
			var sn span
			if err := r.Scan(&id, &sn.from, &sn.to); err != nil {
				return err
			}
			sn.reason = store.ClosePackageRemoved
			sp.links[id] = append(sp.links[id], sn)
			return nil
		})
	if err != nil {
		return nil, err
	}
	// Their matches, current and past.
	for _, batch := range chunks(im.packages(), 500) {
		current, args := byPackages(s, "package_matches", "pm", batch)
		past, pastArgs := byPackages(s, "match_history", "mh", batch)
		err := s.eachRow(ctx, `SELECT pm.package_id, pm.advisory_id, pm.opened_at, 0, '', pm.fixed_version FROM `+current+`
UNION ALL SELECT mh.package_id, mh.advisory_id, mh.opened_at, mh.closed_at, mh.close_reason, '' FROM `+past,
			append(args, pastArgs...), func(r *sql.Rows) error {
				var k pairKey
				var sn span
				var fixed string
				if err := r.Scan(&k.pkg, &k.adv, &sn.from, &sn.to, &sn.reason, &fixed); err != nil {
					return err
				}
				sp.matches[k] = append(sp.matches[k], sn)
				if sn.to == 0 {
					sp.fixed[k] = fixed
				}
				return nil
			})
		if err != nil {
			return nil, err
		}
	}
	sticky, err := s.stickyPairs(ctx, []int64{im.id})
	if err != nil {
		return nil, err
	}
	sp.sticky = sticky[im.id]
	return sp, nil
}
