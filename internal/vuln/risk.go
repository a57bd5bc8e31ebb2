package vuln

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/socle-dev/socle/internal/order"
	"github.com/socle-dev/socle/internal/store"
)

// Exposure weights: how exposed an image is by where it runs. An image
// running nowhere weighs NotDeployedWeight; one running in environment i
// of n, in promotion order (dev first, prod last), weighs
// NotDeployedWeight + (1-NotDeployedWeight)·(i+1)/n, so prod weighs 1.
const NotDeployedWeight = 0.25

// Exposure is the most exposed environment an image runs in and its
// weight.
type Exposure struct {
	Environment string
	Weight      float64
}

// ExposureOf ranks the environments running an image along the promotion
// order. An environment not in order weighs as the middle of it.
func ExposureOf(running []string, order []string) Exposure {
	best := Exposure{Weight: NotDeployedWeight}
	for _, env := range running {
		w := 0.5 + NotDeployedWeight/2
		for i, o := range order {
			if o == env {
				w = NotDeployedWeight + (1-NotDeployedWeight)*float64(i+1)/float64(len(order))
			}
		}
		if w > best.Weight || best.Environment == "" {
			best = Exposure{Environment: env, Weight: w}
		}
	}
	return best
}

// severityWeight is a finding's severity on [0, 1]: its CVSS score over
// 10, else a value for its rating. An unrated finding weighs as a medium
// one: unknown is not low.
func severityWeight(severity string, score float64) float64 {
	if score > 0 {
		return math.Min(score/10, 1)
	}
	switch severity {
	case SeverityCritical:
		return 0.95
	case SeverityHigh:
		return 0.8
	case SeverityMedium:
		return 0.55
	case SeverityLow:
		return 0.25
	}
	return 0.5
}

// threatWeight is the likelihood of exploitation on [0.3, 1]: 1 for a
// known exploited vulnerability, else 0.3 raised by the EPSS
// probability.
func threatWeight(kev time.Time, epss float64) float64 {
	if !kev.IsZero() {
		return 1
	}
	return 0.3 + 0.7*math.Min(math.Max(epss, 0), 1)
}

// SetRisk computes a finding's risk, from 0 to 100: 100 × severity ×
// threat × exposure (see severityWeight, threatWeight, ExposureOf),
// rounded to one decimal. A known-exploited critical finding running in
// prod is near 100; the same finding in an image deployed nowhere is 25.
func SetRisk(f *Finding, e Exposure) {
	f.Exposure = e.Environment
	f.Risk = RiskOf(f.Severity, f.Score, f.KEV, f.EPSS, e)
}

// RiskOf is the risk of a finding of that severity, score, KEV listing
// and EPSS probability in an image of exposure e.
func RiskOf(severity string, score float64, kev time.Time, epss float64, e Exposure) float64 {
	return math.Round(1000*severityWeight(severity, score)*threatWeight(kev, epss)*e.Weight) / 10
}

// SortByRisk orders findings by decreasing risk, then as SortFindings.
func SortByRisk(fs []Finding) {
	order.Stable(fs, func(a, b *Finding) int {
		return cmp.Or(cmp.Compare(b.Risk, a.Risk), compareFindings(a, b))
	})
}

// ExposureReader reads where images run: their current deployments and
// the pods the clusters report.
type ExposureReader interface {
	CurrentDeployments(ctx context.Context, env string) ([]store.Deployment, error)
	CurrentDeploymentsOf(ctx context.Context, digest string) ([]store.Deployment, error)
	RunningImages(ctx context.Context, q store.RunningQuery) ([]store.Running, error)
}

// Placements maps each digest to the environments that deploy or run it.
func Placements(ctx context.Context, st ExposureReader) (map[string][]string, error) {
	return placements(ctx, st, "")
}

// PlacementOf is Placements of one digest: only its running rows are
// read.
func PlacementOf(ctx context.Context, st ExposureReader, digest string) ([]string, error) {
	m, err := placements(ctx, st, digest)
	return m[digest], err
}

func placements(ctx context.Context, st ExposureReader, digest string) (map[string][]string, error) {
	out := map[string][]string{}
	add := func(digest, env string) {
		if env != "" && !slices.Contains(out[digest], env) {
			out[digest] = append(out[digest], env)
		}
	}
	var deps []store.Deployment
	var err error
	if digest == "" {
		deps, err = st.CurrentDeployments(ctx, "")
	} else {
		deps, err = st.CurrentDeploymentsOf(ctx, digest)
	}
	if err != nil {
		return nil, err
	}
	for _, d := range deps {
		add(d.Digest, d.Environment)
	}
	running, err := st.RunningImages(ctx, store.RunningQuery{Digest: digest})
	if err != nil {
		return nil, err
	}
	for _, r := range running {
		add(r.Digest, r.Environment)
	}
	return out, nil
}

// Rank sets the risk of the findings of an image that runs in envs.
func Rank(fs []Finding, envs, order []string) {
	e := ExposureOf(envs, order)
	for i := range fs {
		SetRisk(&fs[i], e)
	}
}

// KEVStore is what the known-exploited alert reads and remembers.
type KEVStore interface {
	ExposureReader
	ImageFindings(ctx context.Context, digest string) ([]store.Finding, error)
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
}

// KEVFinding is a known-exploited vulnerability in an image that runs in
// an environment.
type KEVFinding struct {
	Environment string    `json:"environment"`
	Digest      string    `json:"digest"`
	Advisory    string    `json:"advisory"`
	Aliases     []string  `json:"aliases,omitempty"`
	Package     string    `json:"package"`
	Version     string    `json:"version"`
	Fixed       string    `json:"fixed,omitempty"`
	KEVAdded    time.Time `json:"kev_added"`
}

const kevAlertedKey = "kev_alerted"

// NewKEVInEnv returns the open known-exploited findings of the images
// env deploys or runs that were not returned before, and remembers them,
// so that each fires findings.kev once.
func NewKEVInEnv(ctx context.Context, st KEVStore, env string) ([]KEVFinding, error) {
	if env == "" {
		return nil, nil
	}
	placed, err := Placements(ctx, st)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	if raw, err := st.GetMeta(ctx, kevAlertedKey); err == nil && raw != "" {
		var keys []string
		_ = json.Unmarshal([]byte(raw), &keys)
		for _, k := range keys {
			seen[k] = true
		}
	}
	var out []KEVFinding
	digests := make([]string, 0, len(placed))
	for d, envs := range placed {
		if slices.Contains(envs, env) {
			digests = append(digests, d)
		}
	}
	sort.Strings(digests)
	for _, d := range digests {
		fs, err := st.ImageFindings(ctx, d)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			key := d + " " + f.AdvisoryID + " " + f.Package.Name
			if f.KEV.IsZero() || f.Withdrawn || seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, KEVFinding{Environment: env, Digest: d, Advisory: f.AdvisoryID, Aliases: f.Aliases,
				Package: f.Package.Name, Version: f.Package.Version, Fixed: f.FixedVersion, KEVAdded: f.KEV})
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b, _ := json.Marshal(keys)
	return out, st.SetMeta(ctx, kevAlertedKey, string(b))
}

// KEVAlerter returns what fires the webhook event findings.kev, once per
// known-exploited finding newly in env (NewKEVInEnv).
func KEVAlerter(st KEVStore, env string, notify func(ctx context.Context, event string, payload any)) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		found, err := NewKEVInEnv(ctx, st, env)
		for _, f := range found {
			notify(ctx, "findings.kev", f)
		}
		return err
	}
}
