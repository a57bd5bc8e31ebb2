package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/socle-dev/socle/internal/loop"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/web"
)

// fixLoop is the loop the API pauses, resumes and cancels runs with.
func (s *API) fixLoop() *loop.Loop {
	l := &loop.Loop{Store: s.st, Envs: s.environments, Through: s.through, Logger: s.log, Now: s.now}
	if s.promoter != nil {
		l.Promoter = s.promoter
	}
	return l
}

// fixRunView is a run with its timeline (the live inventory's first
// pods included).
type fixRunView struct {
	store.FixRun
	Timeline []store.FixStep `json:"timeline"`
}

func (s *API) viewFixRun(r *http.Request, run store.FixRun) (fixRunView, error) {
	steps, err := loop.Timeline(r.Context(), s.st, run)
	return fixRunView{FixRun: run, Timeline: steps}, err
}

func (s *API) apiFixRuns(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	runs, err := s.st.FixRuns(r.Context(), limit)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]fixRunView, 0, len(runs))
	for _, run := range runs {
		v, err := s.viewFixRun(r, run)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"runs": out})
}

// fixRunID reads the {id} of a fix run route.
func fixRunID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, errBadRequest("fix run id must be a number")
	}
	return id, nil
}

// writeFixRun answers with a run and its timeline.
func (s *API) writeFixRun(w http.ResponseWriter, r *http.Request, run store.FixRun) {
	v, err := s.viewFixRun(r, run)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *API) apiFixRun(w http.ResponseWriter, r *http.Request) {
	id, err := fixRunID(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	run, err := s.st.FixRun(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeFixRun(w, r, run)
}

func (s *API) apiMTTR(w http.ResponseWriter, r *http.Request) {
	runs, err := s.st.FixRuns(r.Context(), 10000)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	m, err := loop.MTTR(r.Context(), s.st, runs)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"environments": m})
}

// apiFixRunControl pauses, resumes or cancels a run (admin; audited). A
// missing run is a 404 (Control reads it), a state that does not allow
// the action a 409.
func (s *API) apiFixRunControl(w http.ResponseWriter, r *http.Request) {
	id, err := fixRunID(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	action := r.PathValue("action")
	switch action {
	case "pause", "resume", "cancel":
	default:
		s.apiError(w, r, errBadRequest("action must be pause, resume or cancel"))
		return
	}
	run, err := s.fixLoop().Control(r.Context(), id, action, actor(r).String())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	s.writeFixRun(w, r, run)
}

// fixRunsPage shows the fix runs as timelines, and the time to remediate
// per environment with its trend.
func (s *API) fixRunsPage(w http.ResponseWriter, r *http.Request) {
	// One read of the runs and of their timelines serves the list (the
	// newest 100) and the time to remediate (all of them).
	runs, err := s.st.FixRuns(r.Context(), 10000)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	timelines := make([][]store.FixStep, len(runs))
	for i, run := range runs {
		if timelines[i], err = loop.Timeline(r.Context(), s.st, run); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	data := web.FixRunsPage{}
	for i, run := range runs[:min(len(runs), 100)] {
		row := web.FixRunRow{ID: run.ID, Advisories: run.Advisories, Status: run.Status, Detail: run.Detail, Started: run.StartedAt}
		for _, st := range timelines[i] {
			row.Steps = append(row.Steps, web.FixStepRow{At: st.At, After: st.At.Sub(run.StartedAt).Round(time.Second), Name: st.Name,
				Environment: st.Environment, Image: st.Image, OK: st.OK, Detail: st.Detail})
		}
		data.Runs = append(data.Runs, row)
	}
	for _, e := range loop.MTTROf(runs, timelines) {
		row := web.MTTRRow{Environment: e.Environment, Runs: e.Runs, Mean: e.Mean}
		for _, wk := range e.Trend {
			row.Trend = append(row.Trend, web.MTTRWeek{Week: wk.Week, Mean: wk.Mean, Runs: wk.Runs})
		}
		data.MTTR = append(data.MTTR, row)
	}
	s.render(w, r, http.StatusOK, "fixruns", "Fix runs", data)
}
