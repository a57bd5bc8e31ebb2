package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"sync"

	"github.com/socle-dev/socle/internal/store"
)

// advisoryShown is what a finding shows of its advisory.
type advisoryShown struct {
	aliases   []string
	summary   string
	severity  string
	score     float64
	withdrawn bool
	published int64
	facts     store.RatingFacts
}

// advisoryCache keeps what findings show of the advisories they name, so
// that an image's findings read one row per package instead of joining
// and decoding each advisory's text again. It is checked against the
// advisory generation, which every advisory write bumps in its
// transaction: every server sharing the database sees a change at its
// next answer. It holds at most maxCachedAdvisories entries.
type advisoryCache struct {
	mu  sync.Mutex
	gen string
	m   map[string]*advisoryShown
}

const maxCachedAdvisories = 200_000

// advisoriesShown returns the advisories named by ids (unknown ones are
// left out).
func (s *DB) advisoriesShown(ctx context.Context, gen string, ids []string) (map[string]*advisoryShown, error) {
	c := &s.advs
	out := make(map[string]*advisoryShown, len(ids))
	var missing []string
	c.mu.Lock()
	if c.gen != gen || c.m == nil || len(c.m) > maxCachedAdvisories {
		c.gen, c.m = gen, map[string]*advisoryShown{}
	}
	for _, id := range ids {
		if a, ok := c.m[id]; ok {
			out[id] = a
		} else {
			missing = append(missing, id)
		}
	}
	c.mu.Unlock()
	fresh := map[string]*advisoryShown{}
	for _, batch := range chunks(missing, 500) {
		in, args := inList(s, batch)
		err := s.eachRow(ctx, `SELECT a.id, a.aliases, a.summary, a.severity, a.score, a.withdrawn, a.published, `+factColumns+`
FROM advisories a WHERE a.id `+in, args, func(r *sql.Rows) error {
			var id, aliases string
			var wd int64
			var facts factsScan
			a := &advisoryShown{}
			if err := r.Scan(append([]any{&id, &aliases, &a.summary, &a.severity, &a.score, &wd, &a.published}, facts.dest()...)...); err != nil {
				return err
			}
			a.withdrawn = wd != 0
			facts.into(&a.facts)
			_ = json.Unmarshal([]byte(aliases), &a.aliases)
			fresh[id], out[id] = a, a
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if len(fresh) > 0 {
		c.mu.Lock()
		if c.gen == gen {
			for id, a := range fresh {
				c.m[id] = a
			}
		}
		c.mu.Unlock()
	}
	return out, nil
}

// show copies an advisory's fields into a finding.
func (a *advisoryShown) show(f *store.Finding) {
	f.Aliases = append([]string(nil), a.aliases...)
	f.Summary, f.Severity, f.Score, f.Withdrawn = a.summary, a.severity, a.score, a.withdrawn
	f.Published = fromTS(a.published)
	f.RatingFacts = a.facts
	f.Ratings = append([]store.Rating(nil), a.facts.Ratings...)
}
