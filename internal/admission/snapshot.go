package admission

import (
	"context"
	"time"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// Source is what a Snapshot is built from.
type Source interface {
	DataGeneration(ctx context.Context) (string, error)
	PromotedDigests(ctx context.Context) ([]store.Promoted, error)
	Tags(ctx context.Context, repository string) ([]store.TagEvent, error)
	Images(ctx context.Context, f store.ImageFilter) ([]store.ImageSummary, error)
}

// Snapshot is what admission decides from, read from the store at one
// data generation and never changed after.
type Snapshot struct {
	Generation string
	Built      time.Time
	// reached maps a digest to the furthest environment (its index in
	// the promotion path) it was promoted to.
	reached map[string]int
	// stored maps a digest to a repository holding it, for signature
	// checks.
	stored map[string]string
	// envTags maps environment, repository and tag to the digest the
	// environment's last promotion there moved the tag to.
	envTags map[envTag]string
	// tags maps repository:tag to its digest, for the tags that point at
	// a promoted digest (others would be refused anyway).
	tags map[string]string
	// severity maps a digest to the rank of its worst open finding;
	// filled only when an environment refuses by severity.
	severity map[string]int
}

type envTag struct{ env, repository, tag string }

// Promoted reports the furthest environment index digest reached.
func (s *Snapshot) Promoted(digest string) (int, bool) {
	i, ok := s.reached[digest]
	return i, ok
}

// Size is how many digests were promoted.
func (s *Snapshot) Size() int { return len(s.reached) }

// build reads a snapshot; order maps environment names to their index.
func build(ctx context.Context, src Source, order map[string]int, needSeverity bool) (*Snapshot, error) {
	gen, err := src.DataGeneration(ctx)
	if err != nil {
		return nil, err
	}
	promoted, err := src.PromotedDigests(ctx)
	if err != nil {
		return nil, err
	}
	s := &Snapshot{Generation: gen, Built: time.Now(), reached: map[string]int{}, stored: map[string]string{},
		envTags: map[envTag]string{}, tags: map[string]string{}}
	for _, p := range promoted { // newest first
		i, known := order[p.Environment]
		if !known {
			continue // an environment no longer configured
		}
		if cur, ok := s.reached[p.Digest]; !ok || i > cur {
			s.reached[p.Digest] = i
		}
		if _, ok := s.stored[p.Digest]; !ok {
			s.stored[p.Digest] = p.Target
		}
		k := envTag{p.Environment, p.Target, p.Tag}
		if _, ok := s.envTags[k]; !ok {
			s.envTags[k] = p.Digest
		}
	}
	tags, err := src.Tags(ctx, "")
	if err != nil {
		return nil, err
	}
	for _, t := range tags {
		if _, ok := s.reached[t.Digest]; ok {
			s.tags[t.Repository+":"+t.Tag] = t.Digest
		}
	}
	if needSeverity {
		s.severity = map[string]int{}
		imgs, err := src.Images(ctx, store.ImageFilter{Limit: store.All})
		if err != nil {
			return nil, err
		}
		for _, im := range imgs {
			if _, ok := s.reached[im.Digest]; !ok {
				continue
			}
			worst := -1
			for sev, n := range im.Open {
				if r := vuln.SeverityRank(sev); n > 0 && r > worst {
					worst = r
				}
			}
			s.severity[im.Digest] = worst
		}
	}
	return s, nil
}

// resolve returns the digest a tag of repository stands for in env: the
// digest env's last promotion moved that tag to, else the tag's current
// digest when it is a promoted one.
func (s *Snapshot) resolve(env, repository, tag string) (string, bool) {
	if d, ok := s.envTags[envTag{env, repository, tag}]; ok {
		return d, true
	}
	d, ok := s.tags[repository+":"+tag]
	return d, ok
}

// LoadSnapshot reads a snapshot for the promotion path envs, without
// severities: for readers that are not the admission controller.
func LoadSnapshot(ctx context.Context, src Source, envs []config.Environment) (*Snapshot, error) {
	order := map[string]int{}
	for i, e := range envs {
		order[e.Name] = i
	}
	return build(ctx, src, order, false)
}

// Reached reports whether digest was promoted to env or to a later
// environment of the path.
func (s *Snapshot) Reached(digest string, envIndex int) bool {
	i, ok := s.reached[digest]
	return ok && i >= envIndex
}
