package loop

import (
	"context"
	"sort"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// Timeline is a run's steps with, from the live inventory, the first pod
// that ran each fixed digest in each environment.
func Timeline(ctx context.Context, st Store, r store.FixRun) ([]store.FixStep, error) {
	steps := append([]store.FixStep{}, r.Steps...)
	for im, ref := range r.Fixed {
		_, digest, ok := strings.Cut(ref, "@")
		if !ok {
			continue
		}
		rows, err := st.RunningImages(ctx, store.RunningQuery{Digest: digest, Stopped: true})
		if err != nil {
			return nil, err
		}
		first := map[string]time.Time{}
		for _, row := range rows {
			if row.Environment == "" {
				continue
			}
			if t, ok := first[row.Environment]; !ok || row.Since.Before(t) {
				first[row.Environment] = row.Since
			}
		}
		for env, at := range first {
			steps = append(steps, store.FixStep{At: at.UTC(), Name: "running", Environment: env, Image: im, OK: true, Detail: "first pod"})
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].At.Before(steps[j].At) })
	return steps, nil
}

// EnvMTTR is the mean time from a fix run's start (the feed sync) to the
// fix reaching an environment: its first pod running the fixed digest,
// else its promotion there.
type EnvMTTR struct {
	Environment string        `json:"environment"`
	Runs        int           `json:"runs"`
	Mean        time.Duration `json:"mean_ns"`
	// Trend is the mean per week, oldest first.
	Trend []WeekMTTR `json:"trend"`
}

// WeekMTTR is one week of the trend.
type WeekMTTR struct {
	Week time.Time     `json:"week"`
	Mean time.Duration `json:"mean_ns"`
	Runs int           `json:"runs"`
}

// MTTR computes the time to remediate per environment from fix runs.
func MTTR(ctx context.Context, st Store, runs []store.FixRun) ([]EnvMTTR, error) {
	timelines := make([][]store.FixStep, len(runs))
	for i, r := range runs {
		steps, err := Timeline(ctx, st, r)
		if err != nil {
			return nil, err
		}
		timelines[i] = steps
	}
	return MTTROf(runs, timelines), nil
}

// MTTROf is MTTR from the runs' timelines (timelines[i] is runs[i]'s).
func MTTROf(runs []store.FixRun, timelines [][]store.FixStep) []EnvMTTR {
	type sample struct {
		start time.Time
		d     time.Duration
	}
	byEnv := map[string][]sample{}
	for i, r := range runs {
		steps := timelines[i]
		reached := map[string]time.Time{}
		for _, s := range steps {
			if s.Environment == "" || !s.OK || (s.Name != "running" && s.Name != "promotion") {
				continue
			}
			// A pod running the fix wins over the promotion that put it
			// there; the latest image of the run decides.
			if t, ok := reached[s.Environment]; !ok || s.At.After(t) || s.Name == "running" {
				reached[s.Environment] = s.At
			}
		}
		for env, at := range reached {
			byEnv[env] = append(byEnv[env], sample{r.StartedAt, at.Sub(r.StartedAt)})
		}
	}
	var out []EnvMTTR
	for env, ss := range byEnv {
		m := EnvMTTR{Environment: env, Runs: len(ss)}
		var sum time.Duration
		weeks := map[time.Time][]time.Duration{}
		for _, s := range ss {
			sum += s.d
			y, w := s.start.ISOWeek()
			wk := isoWeekStart(y, w)
			weeks[wk] = append(weeks[wk], s.d)
		}
		m.Mean = sum / time.Duration(len(ss))
		for wk, ds := range weeks {
			var t time.Duration
			for _, d := range ds {
				t += d
			}
			m.Trend = append(m.Trend, WeekMTTR{Week: wk, Mean: t / time.Duration(len(ds)), Runs: len(ds)})
		}
		sort.Slice(m.Trend, func(i, j int) bool { return m.Trend[i].Week.Before(m.Trend[j].Week) })
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Environment < out[j].Environment })
	return out
}

func isoWeekStart(year, week int) time.Time {
	t := time.Date(year, 1, 4, 0, 0, 0, 0, time.UTC) // in week 1
	for t.Weekday() != time.Monday {
		t = t.AddDate(0, 0, -1)
	}
	return t.AddDate(0, 0, 7*(week-1))
}
