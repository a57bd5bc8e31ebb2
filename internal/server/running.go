package server

import (
	"context"
	"net/http"
	"time"

	"github.com/socle-dev/socle/internal/admission"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/web"
)

// runningRow is an inventory row with what socle knows of its digest.
type runningRow struct {
	Cluster     string    `json:"cluster"`
	Namespace   string    `json:"namespace"`
	Workload    string    `json:"workload"`
	Container   string    `json:"container"`
	Environment string    `json:"environment"`
	Repository  string    `json:"repository"`
	Digest      string    `json:"digest"`
	Pods        int       `json:"pods"`
	Since       time.Time `json:"since"`
	LastSeen    time.Time `json:"last_seen"`
	StoppedAt   time.Time `json:"stopped_at,omitzero"`
	// Drift: the digest was never promoted to the row's environment (or
	// a later one): admitted in warn mode, or running from before socle.
	Drift bool `json:"drift"`
	// Open and Fixable count the digest's open findings, and those with
	// a fix; Scanned says whether socle knows the image at all.
	Open    int  `json:"open"`
	Fixable int  `json:"fixable"`
	Scanned bool `json:"scanned"`
}

// running reads the inventory with drift and findings, longest-running
// first: the BAU applications come first.
func (s *API) running(ctx context.Context, q store.RunningQuery) ([]runningRow, error) {
	rows, err := s.st.RunningImages(ctx, q)
	if err != nil {
		return nil, err
	}
	var snap *admission.Snapshot
	if s.promoted != nil {
		snap = s.promoted.Snapshot()
	}
	if snap == nil {
		if snap, err = admission.LoadSnapshot(ctx, s.st, s.environments); err != nil {
			return nil, err
		}
	}
	order := map[string]int{}
	for i, e := range s.environments {
		order[e.Name] = i
	}
	type counts struct {
		open, fixable int
		scanned       bool
	}
	byDigest := map[string]counts{}
	out := make([]runningRow, 0, len(rows))
	for _, r := range rows {
		c, ok := byDigest[r.Digest]
		if !ok {
			fs, err := s.st.ImageFindings(ctx, r.Digest)
			if err != nil {
				return nil, err
			}
			known, err := s.st.HasImage(ctx, r.Digest)
			if err != nil {
				return nil, err
			}
			c.scanned = known
			for _, f := range fs {
				if f.ClosedAt.IsZero() {
					c.open++
					if f.FixedVersion != "" {
						c.fixable++
					}
				}
			}
			byDigest[r.Digest] = c
		}
		row := runningRow{Cluster: r.Cluster, Namespace: r.Namespace, Workload: r.Workload, Container: r.Container,
			Environment: r.Environment, Repository: r.Repository, Digest: r.Digest, Pods: r.Pods, Since: r.Since,
			LastSeen: r.LastSeen, StoppedAt: r.StoppedAt, Open: c.open, Fixable: c.fixable, Scanned: c.scanned}
		if i, mapped := order[r.Environment]; mapped && r.StoppedAt.IsZero() {
			row.Drift = !snap.Reached(r.Digest, i)
		}
		out = append(out, row)
	}
	return out, nil
}

// apiRunning lists what runs in the clusters.
func (s *API) apiRunning(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rows, err := s.running(r.Context(), store.RunningQuery{Cluster: q.Get("cluster"), Environment: q.Get("environment"),
		Stopped: q.Get("stopped") == "true"})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"running": rows})
}

// runningPage is the Running view: per environment, the workloads, their
// digests, how long each has run unchanged, their fixable findings, and
// drift.
func (s *API) runningPage(w http.ResponseWriter, r *http.Request) {
	rows, err := s.running(r.Context(), store.RunningQuery{})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	now := s.now()
	page := web.RunningPage{}
	index := map[string]int{}
	for _, row := range rows {
		env := row.Environment
		if env == "" {
			env = "(no environment)"
		}
		i, ok := index[env]
		if !ok {
			i = len(page.Environments)
			index[env] = i
			page.Environments = append(page.Environments, web.RunningEnv{Environment: env})
		}
		e := &page.Environments[i]
		e.Rows = append(e.Rows, web.RunningRow{
			Cluster: row.Cluster, Namespace: row.Namespace, Workload: row.Workload, Container: row.Container,
			Repository: row.Repository, Digest: row.Digest, Pods: row.Pods, Since: row.Since, For: now.Sub(row.Since).Truncate(time.Second),
			Open: row.Open, Fixable: row.Fixable, Scanned: row.Scanned, Drift: row.Drift,
		})
		if row.Drift {
			e.Drift++
		}
	}
	s.render(w, r, http.StatusOK, "running", "Running", page)
}
