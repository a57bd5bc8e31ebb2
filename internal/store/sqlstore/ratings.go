package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"sort"

	"github.com/socle-dev/socle/internal/store"
)

// upsertRating writes one rating of an identifier by a source.
const upsertRating = `INSERT INTO ratings (id, source, severity, score, vector) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (id, source) DO UPDATE SET severity = excluded.severity, score = excluded.score, vector = excluded.vector`

func (s *DB) PutRatings(ctx context.Context, rs []store.Rating) error {
	for _, batch := range chunks(rs, 500) {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			for _, r := range batch {
				if _, err := s.exec(ctx, tx, upsertRating,
					r.ID, r.Source, r.Severity, r.Score, r.Vector); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// putRecordRatings replaces what one record says of its own ID.
func (s *DB) putRecordRatings(ctx context.Context, tx *sql.Tx, id string, rs []store.Rating) error {
	sources := map[string]bool{}
	for _, r := range rs {
		sources[r.Source] = true
	}
	for src := range sources {
		if _, err := s.exec(ctx, tx, `DELETE FROM ratings WHERE id = ? AND source = ?`, id, src); err != nil {
			return err
		}
	}
	for _, r := range rs {
		if _, err := s.exec(ctx, tx, upsertRating,
			id, r.Source, r.Severity, r.Score, r.Vector); err != nil {
			return err
		}
	}
	return nil
}

func (s *DB) PutKEV(ctx context.Context, entries []store.Exploit) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE exploits SET kev_added = 0, kev_due = 0, ransomware = 0 WHERE kev_added <> 0`); err != nil {
			return err
		}
		for _, e := range entries {
			rw := 0
			if e.Ransomware {
				rw = 1
			}
			if _, err := s.exec(ctx, tx, `INSERT INTO exploits (id, kev_added, kev_due, ransomware) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET kev_added = excluded.kev_added, kev_due = excluded.kev_due, ransomware = excluded.ransomware`,
				e.ID, ts(e.KEVAdded), ts(e.KEVDue), rw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.RefreshExploits(ctx, nil)
}

func (s *DB) PutEPSS(ctx context.Context, scores []store.Exploit) error {
	for _, batch := range chunks(scores, 1000) {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			for _, e := range batch {
				if _, err := s.exec(ctx, tx, `INSERT INTO exploits (id, epss, percentile) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET epss = excluded.epss, percentile = excluded.percentile`, e.ID, e.EPSS, e.Percentile); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return s.RefreshExploits(ctx, nil)
}

func (s *DB) AdvisoriesNaming(ctx context.Context, ids []string) ([]string, error) {
	seen := map[string]bool{}
	for _, batch := range chunks(ids, 500) {
		args := anySlice(batch)
		rows, err := s.query(ctx, s.db, `SELECT DISTINCT advisory_id FROM advisory_aliases WHERE alias IN (`+placeholders(len(batch))+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			seen[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

func (s *DB) RatingInputs(ctx context.Context, advisoryIDs []string) (map[string][]store.Rating, error) {
	out := map[string][]store.Rating{}
	for _, batch := range chunks(advisoryIDs, 500) {
		args := anySlice(batch)
		rows, err := s.query(ctx, s.db, `SELECT aa.advisory_id, r.id, r.source, r.severity, r.score, r.vector
FROM advisory_aliases aa JOIN ratings r ON r.id = aa.alias
WHERE aa.advisory_id IN (`+placeholders(len(batch))+`) ORDER BY aa.advisory_id, r.id, r.source`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var adv string
			var r store.Rating
			if err := rows.Scan(&adv, &r.ID, &r.Source, &r.Severity, &r.Score, &r.Vector); err != nil {
				rows.Close()
				return nil, err
			}
			out[adv] = append(out[adv], r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *DB) SetRatings(ctx context.Context, rs []store.AdvisoryRating) error {
	ids := make([]string, 0, len(rs))
	for _, batch := range chunks(rs, 500) {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			for _, r := range batch {
				b, _ := json.Marshal(nonNilRatings(r.Ratings))
				if _, err := s.exec(ctx, tx, `UPDATE advisories SET severity = ?, score = ?, severity_source = ?, ratings = ? WHERE id = ?`,
					r.Severity, r.Score, r.Source, string(b), r.AdvisoryID); err != nil {
					return err
				}
				ids = append(ids, r.AdvisoryID)
			}
			return s.bumpAdvisoryGeneration(ctx, tx)
		})
		if err != nil {
			return err
		}
	}
	return s.RefreshExploits(ctx, ids)
}

func nonNilRatings(rs []store.Rating) []store.Rating {
	if rs == nil {
		return []store.Rating{}
	}
	return rs
}

// exploitsOf is the set-based update of an advisory's exploitation facts:
// the earliest KEV listing and the highest EPSS among its ID and aliases.
const exploitsOf = `UPDATE advisories SET
kev = COALESCE((SELECT MIN(x.kev_added) FROM advisory_aliases aa JOIN exploits x ON x.id = aa.alias
	WHERE aa.advisory_id = advisories.id AND x.kev_added <> 0), 0),
epss = COALESCE((SELECT MAX(x.epss) FROM advisory_aliases aa JOIN exploits x ON x.id = aa.alias
	WHERE aa.advisory_id = advisories.id), 0)`

func (s *DB) RefreshExploits(ctx context.Context, ids []string) error {
	if ids == nil {
		return s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := s.exec(ctx, tx, exploitsOf); err != nil {
				return err
			}
			return s.bumpAdvisoryGeneration(ctx, tx)
		})
	}
	for _, batch := range chunks(ids, 500) {
		args := anySlice(batch)
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := s.exec(ctx, tx, exploitsOf+` WHERE id IN (`+placeholders(len(batch))+`)`, args...); err != nil {
				return err
			}
			return s.bumpAdvisoryGeneration(ctx, tx)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *DB) Exploits(ctx context.Context, ids []string) (map[string]store.Exploit, error) {
	out := map[string]store.Exploit{}
	for _, batch := range chunks(ids, 500) {
		args := anySlice(batch)
		rows, err := s.query(ctx, s.db, `SELECT id, kev_added, kev_due, ransomware, epss, percentile FROM exploits WHERE id IN (`+placeholders(len(batch))+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var e store.Exploit
			var added, due int64
			var rw int
			if err := rows.Scan(&e.ID, &added, &due, &rw, &e.EPSS, &e.Percentile); err != nil {
				rows.Close()
				return nil, err
			}
			e.KEVAdded, e.KEVDue, e.Ransomware = fromTS(added), fromTS(due), rw != 0
			out[e.ID] = e
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// factColumns are the advisory columns of store.RatingFacts, read with
// a factsScan.
const factColumns = `a.severity_source, a.ratings, a.kev, a.epss`

type factsScan struct {
	source, ratings string
	kev             int64
	epss            float64
}

func (fs *factsScan) dest() []any { return []any{&fs.source, &fs.ratings, &fs.kev, &fs.epss} }

func (fs *factsScan) into(f *store.RatingFacts) {
	f.SeveritySource, f.KEV, f.EPSS = fs.source, fromTS(fs.kev), fs.epss
	_ = json.Unmarshal([]byte(fs.ratings), &f.Ratings)
}

func (s *DB) PutVEXDocument(ctx context.Context, d store.VEXDocument) (bool, error) {
	res, err := s.exec(ctx, s.db, `INSERT INTO vex_documents (digest, name, format, data, added_at, by_whom) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (digest) DO NOTHING`, d.Digest, d.Name, d.Format, d.Data, ts(d.AddedAt), d.By)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

func (s *DB) VEXDocuments(ctx context.Context) ([]store.VEXDocument, error) {
	rows, err := s.query(ctx, s.db, `SELECT digest, name, format, data, added_at, by_whom FROM vex_documents ORDER BY added_at, digest`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.VEXDocument
	for rows.Next() {
		var d store.VEXDocument
		var at int64
		if err := rows.Scan(&d.Digest, &d.Name, &d.Format, &d.Data, &at, &d.By); err != nil {
			return nil, err
		}
		d.AddedAt = fromTS(at)
		out = append(out, d)
	}
	return out, rows.Err()
}
