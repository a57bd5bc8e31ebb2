package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/socle-dev/socle/internal/store"
)

func rawHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func (s *DB) UpsertAdvisories(ctx context.Context, advs []store.Advisory) (store.UpsertResult, error) {
	var res store.UpsertResult
	pkgs := map[store.PackageName]bool{}
	for _, batch := range chunks(advs, 500) {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			before := len(res.Changed)
			for _, a := range batch {
				if err := s.upsertAdvisory(ctx, tx, a, &res, pkgs); err != nil {
					return fmt.Errorf("advisory %s: %w", a.ID, err)
				}
			}
			if len(res.Changed) == before {
				return nil
			}
			return s.bumpAdvisoryGeneration(ctx, tx)
		})
		if err != nil {
			return res, err
		}
	}
	for p := range pkgs {
		res.Packages = append(res.Packages, p)
	}
	sort.Slice(res.Packages, func(i, j int) bool {
		if res.Packages[i].Ecosystem != res.Packages[j].Ecosystem {
			return res.Packages[i].Ecosystem < res.Packages[j].Ecosystem
		}
		return res.Packages[i].Name < res.Packages[j].Name
	})
	return res, nil
}

func (s *DB) upsertAdvisory(ctx context.Context, tx *sql.Tx, a store.Advisory, res *store.UpsertResult, pkgs map[store.PackageName]bool) error {
	h := rawHash(a.Raw)
	var oldHash string
	var oldModified int64
	err := s.queryRow(ctx, tx, `SELECT raw_hash, modified FROM advisories WHERE id = ?`, a.ID).Scan(&oldHash, &oldModified)
	exists := err == nil
	if err != nil && err != sql.ErrNoRows {
		return err
	}
	if exists && oldHash == h && oldModified == ts(a.Modified) {
		res.Unchanged++
		return nil
	}
	if exists {
		rows, err := s.query(ctx, tx, `SELECT ecosystem, name FROM advisory_affected WHERE advisory_id = ?`, a.ID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var p store.PackageName
			if err := rows.Scan(&p.Ecosystem, &p.Name); err != nil {
				rows.Close()
				return err
			}
			pkgs[p] = true
		}
		rows.Close()
		for _, q := range []string{
			`DELETE FROM advisory_affected WHERE advisory_id = ?`,
			`DELETE FROM advisory_aliases WHERE advisory_id = ?`,
		} {
			if _, err := s.exec(ctx, tx, q, a.ID); err != nil {
				return err
			}
		}
		res.Updated++
	} else {
		res.Added++
	}
	aliases, _ := json.Marshal(nonNil(a.Aliases))
	if _, err := s.exec(ctx, tx, `INSERT INTO advisories (id, modified, published, withdrawn, aliases, summary, severity, score, source, raw, raw_hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET modified = excluded.modified, published = excluded.published, withdrawn = excluded.withdrawn,
aliases = excluded.aliases, summary = excluded.summary, severity = excluded.severity, score = excluded.score,
source = excluded.source, raw = excluded.raw, raw_hash = excluded.raw_hash`,
		a.ID, ts(a.Modified), ts(a.Published), ts(a.Withdrawn), string(aliases), a.Summary, a.Severity, a.Score, a.Source, a.Raw, h); err != nil {
		return err
	}
	if err := s.putRecordRatings(ctx, tx, a.ID, a.Ratings); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, al := range append([]string{a.ID}, a.Aliases...) {
		if al == "" || seen[al] {
			continue
		}
		seen[al] = true
		if _, err := s.exec(ctx, tx, `INSERT INTO advisory_aliases (alias, advisory_id) VALUES (?, ?)`, al, a.ID); err != nil {
			return err
		}
	}
	for _, af := range a.Affected {
		if _, err := s.exec(ctx, tx, `INSERT INTO advisory_affected (advisory_id, ecosystem, name, spec) VALUES (?, ?, ?, ?)`,
			a.ID, af.Ecosystem, af.Name, af.Spec); err != nil {
			return err
		}
		pkgs[store.PackageName{Ecosystem: af.Ecosystem, Name: af.Name}] = true
	}
	res.Changed = append(res.Changed, a.ID)
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *DB) Advisory(ctx context.Context, id string) (store.Advisory, error) {
	var a store.Advisory
	var mod, pub, wd int64
	var aliases string
	err := s.queryRow(ctx, s.db, `SELECT id, modified, published, withdrawn, aliases, summary, severity, score, source, raw
FROM advisories WHERE id = ?`, id).Scan(&a.ID, &mod, &pub, &wd, &aliases, &a.Summary, &a.Severity, &a.Score, &a.Source, &a.Raw)
	if err != nil {
		return a, notFound(err, "advisory "+id)
	}
	a.Modified, a.Published, a.Withdrawn = fromTS(mod), fromTS(pub), fromTS(wd)
	_ = json.Unmarshal([]byte(aliases), &a.Aliases)
	rows, err := s.query(ctx, s.db, `SELECT ecosystem, name, spec FROM advisory_affected WHERE advisory_id = ? ORDER BY ecosystem, name`, id)
	if err != nil {
		return a, err
	}
	defer rows.Close()
	for rows.Next() {
		var af store.Affected
		if err := rows.Scan(&af.Ecosystem, &af.Name, &af.Spec); err != nil {
			return a, err
		}
		a.Affected = append(a.Affected, af)
	}
	return a, rows.Err()
}

func (s *DB) ResolveAdvisoryIDs(ctx context.Context, id string) ([]string, error) {
	rows, err := s.query(ctx, s.db, `SELECT DISTINCT advisory_id FROM advisory_aliases WHERE alias = ? ORDER BY advisory_id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ecosystemBase returns "Debian" for "Debian:12".
func ecosystemBase(eco string) string {
	b, _, _ := strings.Cut(eco, ":")
	return b
}

func (s *DB) AffectedFor(ctx context.Context, ecosystem, name string) ([]store.AffectedRow, error) {
	ecos := []any{ecosystem}
	if b := ecosystemBase(ecosystem); b != ecosystem {
		ecos = append(ecos, b)
	}
	rows, err := s.query(ctx, s.db, `SELECT f.advisory_id, f.ecosystem, f.name, f.spec, a.withdrawn, a.severity, a.score, a.aliases, a.summary, a.modified, a.published, `+factColumns+`
FROM advisory_affected f JOIN advisories a ON a.id = f.advisory_id
WHERE f.name = ? AND f.ecosystem IN (`+placeholders(len(ecos))+`) ORDER BY f.advisory_id`, append([]any{name}, ecos...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AffectedRow
	for rows.Next() {
		var r store.AffectedRow
		var wd, mod, pub int64
		var aliases string
		var facts factsScan
		if err := rows.Scan(append([]any{&r.AdvisoryID, &r.Ecosystem, &r.Name, &r.Spec, &wd, &r.Severity, &r.Score, &aliases, &r.Summary, &mod, &pub}, facts.dest()...)...); err != nil {
			return nil, err
		}
		facts.into(&r.RatingFacts)
		r.Withdrawn = wd != 0
		r.Modified, r.Published = fromTS(mod), fromTS(pub)
		_ = json.Unmarshal([]byte(aliases), &r.Aliases)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (s *DB) AdvisoryStats(ctx context.Context) ([]store.EcosystemStat, error) {
	rows, err := s.query(ctx, s.db, `SELECT f.ecosystem, COUNT(DISTINCT a.id), COUNT(DISTINCT CASE WHEN a.withdrawn <> 0 THEN a.id END), MAX(a.modified)
FROM advisory_affected f JOIN advisories a ON a.id = f.advisory_id GROUP BY f.ecosystem ORDER BY f.ecosystem`)
	if err != nil {
		return nil, err
	}
	var out []store.EcosystemStat
	for rows.Next() {
		var st store.EcosystemStat
		var mod int64
		if err := rows.Scan(&st.Ecosystem, &st.Records, &st.Withdrawn, &mod); err != nil {
			rows.Close()
			return nil, err
		}
		st.NewestModified = fromTS(mod)
		out = append(out, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	srcRows, err := s.query(ctx, s.db, `SELECT DISTINCT f.ecosystem, a.source FROM advisory_affected f JOIN advisories a ON a.id = f.advisory_id ORDER BY 1, 2`)
	if err != nil {
		return nil, err
	}
	defer srcRows.Close()
	idx := map[string]int{}
	for i, st := range out {
		idx[st.Ecosystem] = i
	}
	for srcRows.Next() {
		var eco, src string
		if err := srcRows.Scan(&eco, &src); err != nil {
			return nil, err
		}
		if i, ok := idx[eco]; ok {
			out[i].Sources = append(out[i].Sources, src)
		}
	}
	return out, srcRows.Err()
}

func (s *DB) AdvisoryCount(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM advisories`).Scan(&n)
	return n, err
}

func (s *DB) PutFeed(ctx context.Context, f store.Feed) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO feeds (name, kind, url, records, last_attempt, last_success, last_error, cursor)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, url = excluded.url, records = excluded.records,
last_attempt = excluded.last_attempt, last_success = excluded.last_success, last_error = excluded.last_error, cursor = excluded.cursor`,
		f.Name, f.Kind, f.URL, f.Records, ts(f.LastAttempt), ts(f.LastSuccess), f.LastError, f.Cursor)
	return err
}

func (s *DB) Feeds(ctx context.Context) ([]store.Feed, error) {
	rows, err := s.query(ctx, s.db, `SELECT name, kind, url, records, last_attempt, last_success, last_error, cursor FROM feeds ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Feed
	for rows.Next() {
		var f store.Feed
		var la, ls int64
		if err := rows.Scan(&f.Name, &f.Kind, &f.URL, &f.Records, &la, &ls, &f.LastError, &f.Cursor); err != nil {
			return nil, err
		}
		f.LastAttempt, f.LastSuccess = fromTS(la), fromTS(ls)
		out = append(out, f)
	}
	return out, rows.Err()
}

const advisoryGenerationKey = "advisory_generation"

// bumpAdvisoryGeneration increments the generation in the transaction
// that changes advisories, so readers see both or neither.
func (s *DB) bumpAdvisoryGeneration(ctx context.Context, tx *sql.Tx) error {
	_, err := s.exec(ctx, tx, `INSERT INTO meta (key, value) VALUES (?, '1')
ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)`, advisoryGenerationKey)
	return err
}

func (s *DB) AdvisoryGeneration(ctx context.Context) (int64, error) {
	v, err := s.GetMeta(ctx, advisoryGenerationKey)
	if err != nil || v == "" {
		return 0, err
	}
	var n int64
	_, err = fmt.Sscan(v, &n)
	return n, err
}
