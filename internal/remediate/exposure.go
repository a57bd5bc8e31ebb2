package remediate

import (
	"context"
	"slices"
	"sort"
	"time"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// Exposed is one open fixable finding of an image an environment runs.
type Exposed struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Advisory   string `json:"advisory"`
	Package    string `json:"package"`
	Version    string `json:"version"`
	Fixed      string `json:"fixed"`
	Severity   string `json:"severity"`
	// Risk ranks it (vuln.RiskOf, exposed in this environment); KEV marks
	// a known exploited vulnerability.
	Risk float64 `json:"risk"`
	KEV  bool    `json:"kev,omitempty"`
	// Since is when the fix was published (the advisory's publication),
	// or when socle first saw the finding when that is unknown.
	Since time.Time `json:"since"`
}

// EnvExposure is an environment's exposure.
type EnvExposure struct {
	Environment string    `json:"environment"`
	Images      int       `json:"images"`
	Open        []Exposed `json:"open"`
	// OldestAge is the age of the oldest open fixable finding.
	OldestAge time.Duration `json:"oldest_age_ns"`
	Oldest    *Exposed      `json:"oldest,omitempty"`
	// Remediated counts findings the environment got rid of by moving to
	// a digest without them; MTTR is their mean time to remediate.
	Remediated int           `json:"remediated"`
	MTTR       time.Duration `json:"mttr_ns"`
}

// ExposureStore is what exposure reads: deployments and findings.
type ExposureStore interface {
	FindingReader
	CurrentDeployments(ctx context.Context, env string) ([]store.Deployment, error)
	DeploymentHistory(ctx context.Context, env, repository string) ([]store.Deployment, error)
}

// Exposure reports, for each environment (all with deployments when envs
// is empty), the open fixable findings, the age of the oldest, and the
// mean time to remediate.
func Exposure(ctx context.Context, st ExposureStore, envs []string, now time.Time) ([]EnvExposure, error) {
	cur, err := st.CurrentDeployments(ctx, "")
	if err != nil {
		return nil, err
	}
	if len(envs) == 0 {
		for _, d := range cur {
			if !slices.Contains(envs, d.Environment) {
				envs = append(envs, d.Environment)
			}
		}
		sort.Strings(envs)
	}
	var out []EnvExposure
	for _, env := range envs {
		e := EnvExposure{Environment: env, Open: []Exposed{}}
		var ttrs []time.Duration
		for _, d := range cur {
			if d.Environment != env {
				continue
			}
			e.Images++
			fs, err := fixable(ctx, st, d.Digest)
			if err != nil {
				return nil, err
			}
			for _, f := range fs {
				x := Exposed{Repository: d.Repository, Digest: d.Digest, Advisory: f.AdvisoryID, Package: f.Package.Name,
					Version: f.Package.Version, Fixed: f.FixedVersion, Severity: f.Severity, Since: f.Published,
					Risk: vuln.RiskOf(f.Severity, f.Score, f.KEV, f.EPSS, vuln.ExposureOf([]string{env}, envs)), KEV: !f.KEV.IsZero()}
				if x.Since.IsZero() {
					x.Since = f.OpenedAt
				}
				e.Open = append(e.Open, x)
				if e.Oldest == nil || x.Since.Before(e.Oldest.Since) {
					xx := x
					e.Oldest = &xx
				}
			}
			// Remediation times from the environment's history of this
			// repository.
			hist, err := st.DeploymentHistory(ctx, env, d.Repository)
			if err != nil {
				return nil, err
			}
			t, err := remediationTimes(ctx, st, hist)
			if err != nil {
				return nil, err
			}
			ttrs = append(ttrs, t...)
		}
		if e.Oldest != nil {
			e.OldestAge = now.Sub(e.Oldest.Since)
		}
		e.Remediated = len(ttrs)
		if len(ttrs) > 0 {
			var sum time.Duration
			for _, t := range ttrs {
				sum += t
			}
			e.MTTR = sum / time.Duration(len(ttrs))
		}
		sort.Slice(e.Open, func(i, j int) bool {
			if e.Open[i].Risk != e.Open[j].Risk {
				return e.Open[i].Risk > e.Open[j].Risk
			}
			return e.Open[i].Since.Before(e.Open[j].Since)
		})
		out = append(out, e)
	}
	return out, nil
}

// held returns the findings an image still has: the open ones, and
// those closed because a rebuild superseded the image (its packages did
// not change).
func held(ctx context.Context, st FindingReader, digest string) ([]store.Finding, error) {
	fs, err := st.ImageFindings(ctx, digest)
	if err != nil {
		return nil, err
	}
	superseded, err := st.FindingsClosedAs(ctx, digest, store.CloseFixedByRebuild)
	if err != nil {
		return nil, err
	}
	return append(fs, superseded...), nil
}

// fixable returns the findings with a fix an image still has.
func fixable(ctx context.Context, st FindingReader, digest string) ([]store.Finding, error) {
	fs, err := held(ctx, st, digest)
	if err != nil {
		return nil, err
	}
	var out []store.Finding
	for _, f := range fs {
		if !f.Withdrawn && f.FixedVersion != "" {
			out = append(out, f)
		}
	}
	return out, nil
}

// remediationTimes walks an environment's deployments of a repository,
// oldest first: a finding present in one digest and absent from the next
// was remediated when the next arrived; its exposure began when it
// appeared in the environment (or was first seen, if later).
func remediationTimes(ctx context.Context, st FindingReader, hist []store.Deployment) ([]time.Duration, error) {
	slices.Reverse(hist) // oldest first
	active := map[store.FindingKey]time.Time{}
	var out []time.Duration
	for _, d := range hist {
		fs, err := fixable(ctx, st, d.Digest)
		if err != nil {
			return nil, err
		}
		now := map[store.FindingKey]time.Time{}
		for _, f := range fs {
			start := d.Since
			if f.OpenedAt.After(start) {
				start = f.OpenedAt
			}
			now[f.Key()] = start
		}
		for k, start := range active {
			if _, still := now[k]; !still {
				if t := d.Since.Sub(start); t >= 0 {
					out = append(out, t)
				}
				delete(active, k)
			}
		}
		for k, start := range now {
			if _, ok := active[k]; !ok {
				active[k] = start
			}
		}
	}
	return out, nil
}
