package sqlstore

import (
	"context"
	"encoding/json"
	"sort"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

const findingSelect = `SELECT f.image_digest, f.advisory_id, a.aliases, a.summary, a.severity, a.score, a.withdrawn, pm.fixed_version,
p.ecosystem, p.name, p.version, ip.name, ip.version, ip.type, ip.purl, ip.path, ip.layer, ip.layer_index,
f.opened_at, f.closed_at, f.close_reason, a.published
FROM findings f
JOIN advisories a ON a.id = f.advisory_id
JOIN packages p ON p.id = f.package_id
JOIN image_packages ip ON ip.image_digest = f.image_digest AND ip.package_id = f.package_id
LEFT JOIN package_matches pm ON pm.package_id = f.package_id AND pm.advisory_id = f.advisory_id`

func scanFinding(row interface{ Scan(...any) error }) (store.Finding, error) {
	var f store.Finding
	var aliases string
	var wd, opened, closed, pub int64
	var fixed *string
	err := row.Scan(&f.ImageDigest, &f.AdvisoryID, &aliases, &f.Summary, &f.Severity, &f.Score, &wd, &fixed,
		&f.Package.Key.Ecosystem, &f.Package.Key.Name, &f.Package.Key.Version, &f.Package.Name, &f.Package.Version,
		&f.Package.Type, &f.Package.PURL, &f.Package.Path, &f.Package.Layer, &f.Package.LayerIndex,
		&opened, &closed, &f.CloseReason, &pub)
	if err != nil {
		return f, err
	}
	if fixed != nil {
		f.FixedVersion = *fixed
	}
	f.Withdrawn = wd != 0
	f.OpenedAt, f.ClosedAt, f.Published = fromTS(opened), fromTS(closed), fromTS(pub)
	_ = json.Unmarshal([]byte(aliases), &f.Aliases)
	return f, nil
}

func (s *DB) ImageFindings(ctx context.Context, digest string) ([]store.Finding, error) {
	rows, err := s.query(ctx, s.db, findingSelect+` WHERE f.image_digest = ? AND f.closed_at = 0
ORDER BY ip.type, ip.name, ip.version, f.advisory_id`, digest)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Finding
	for rows.Next() {
		f, err := scanFinding(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

func (s *DB) AffectedImages(ctx context.Context, q store.AffectedQuery) ([]store.AffectedImage, error) {
	var out []store.AffectedImage
	switch {
	case q.Advisory != "":
		ids, err := s.ResolveAdvisoryIDs(ctx, q.Advisory)
		if err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, nil
		}
		// The index answers: the package versions the advisories match,
		// then the images holding each (a covering index scan). Every
		// such image has the finding open, by construction.
		type hit struct {
			pkg             int64
			adv, fixed, sev string
			key             store.PackageKey
		}
		var hits []hit
		rows, err := s.query(ctx, s.db, `SELECT pm.package_id, pm.advisory_id, pm.fixed_version, a.severity, p.ecosystem, p.name, p.version
FROM package_matches pm JOIN advisories a ON a.id = pm.advisory_id JOIN packages p ON p.id = pm.package_id
WHERE pm.advisory_id IN (`+placeholders(len(ids))+`) ORDER BY p.name, p.version, pm.advisory_id`, anySlice(ids)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var h hit
			if err := rows.Scan(&h.pkg, &h.adv, &h.fixed, &h.sev, &h.key.Ecosystem, &h.key.Name, &h.key.Version); err != nil {
				rows.Close()
				return nil, err
			}
			hits = append(hits, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		held := map[int64][]string{}
		for _, h := range hits {
			if _, ok := held[h.pkg]; ok {
				continue
			}
			digests, err := s.imagesWithPackage(ctx, s.db, h.pkg)
			if err != nil {
				return nil, err
			}
			held[h.pkg] = digests
		}
		for _, h := range hits {
			for _, d := range held[h.pkg] {
				out = append(out, store.AffectedImage{
					Digest: d, AdvisoryID: h.adv, FixedVersion: h.fixed, Severity: h.sev,
					Package: store.ImagePackage{Key: h.key, Name: h.key.Name, Version: h.key.Version},
				})
			}
		}
	case q.Package != "":
		where := `(ip.name = ? OR p.name = ?)`
		args := []any{q.Package, q.Package}
		if q.Ecosystem != "" {
			where += ` AND (p.ecosystem = ? OR p.ecosystem LIKE ?)`
			args = append(args, q.Ecosystem, q.Ecosystem+":%")
		}
		if q.Version != "" {
			where += ` AND (ip.version = ? OR p.version = ?)`
			args = append(args, q.Version, q.Version)
		}
		rows, err := s.query(ctx, s.db, `SELECT ip.image_digest, p.ecosystem, p.name, p.version, ip.name, ip.version, ip.type, ip.purl, ip.path, ip.layer, ip.layer_index
FROM image_packages ip JOIN packages p ON p.id = ip.package_id WHERE `+where+` ORDER BY ip.image_digest, ip.name`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var a store.AffectedImage
			p := &a.Package
			if err := rows.Scan(&a.Digest, &p.Key.Ecosystem, &p.Key.Name, &p.Key.Version, &p.Name, &p.Version, &p.Type, &p.PURL, &p.Path, &p.Layer, &p.LayerIndex); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	default:
		return nil, nil
	}
	return out, s.describeAffected(ctx, out)
}

// describeAffected adds repositories, tags and environments.
func (s *DB) describeAffected(ctx context.Context, out []store.AffectedImage) error {
	seen := map[string]bool{}
	var digests []string
	for _, a := range out {
		if !seen[a.Digest] {
			seen[a.Digest] = true
			digests = append(digests, a.Digest)
		}
	}
	if len(digests) == 0 {
		return nil
	}
	tags, err := s.tagsOf(ctx, digests)
	if err != nil {
		return err
	}
	envs, err := s.environmentsOf(ctx, digests)
	if err != nil {
		return err
	}
	repos := map[string]string{}
	for _, batch := range chunks(digests, 500) {
		rows, err := s.query(ctx, s.db, `SELECT digest, repository FROM images WHERE digest IN (`+placeholders(len(batch))+`)`, anySlice(batch)...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var d, r string
			if err := rows.Scan(&d, &r); err != nil {
				rows.Close()
				return err
			}
			repos[d] = r
		}
		rows.Close()
	}
	for i := range out {
		out[i].Repository = repos[out[i].Digest]
		out[i].Tags = tags[out[i].Digest]
		out[i].Environments = envs[out[i].Digest]
	}
	return nil
}

func (s *DB) FindingTrend(ctx context.Context, from, to time.Time, step time.Duration) ([]store.TrendPoint, error) {
	if step <= 0 || !to.After(from) {
		return nil, nil
	}
	var out []store.TrendPoint
	for t := from; !t.After(to); t = t.Add(step) {
		var open, fixable int
		at := ts(t)
		err := s.queryRow(ctx, s.db, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN pm.fixed_version <> '' THEN 1 ELSE 0 END), 0)
FROM findings f
JOIN advisories a ON a.id = f.advisory_id
LEFT JOIN package_matches pm ON pm.package_id = f.package_id AND pm.advisory_id = f.advisory_id
WHERE f.opened_at <= ? AND (f.closed_at = 0 OR f.closed_at > ?) AND a.withdrawn = 0
AND f.image_digest IN (SELECT digest FROM tags)`, at, at).Scan(&open, &fixable)
		if err != nil {
			return nil, err
		}
		out = append(out, store.TrendPoint{At: t, Open: open, Fixable: fixable})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}
