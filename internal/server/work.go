package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/feeds"
	"github.com/socle-dev/socle/internal/vuln"
)

// Work is what the server does at a client's request that takes long or
// needs socle.yaml's catalog: it plans, and queues build, remediation and
// feed-sync jobs (socle serve's App is one).
type Work interface {
	Plan(r *http.Request, names []string) (*catalog.Plan, error)
	// Enqueue queues a job and wakes the workers.
	Enqueue(r *http.Request, kind, key string, payload any) (int64, error)
	// Feeds are the feeds of socle.yaml.
	Feeds() []string
}

// Job kinds the API queues.
const (
	JobBuild     = "build"
	JobRemediate = "remediate"
)

// BuildPayload is a build job's request.
type BuildPayload struct {
	Names []string `json:"names"`
	By    string   `json:"by"`
}

// RemediatePayload is a remediation job's request.
type RemediatePayload struct {
	DryRun bool   `json:"dry_run"`
	By     string `json:"by"`
}

func (s *API) needWork(w http.ResponseWriter, r *http.Request) bool {
	if s.work == nil {
		s.apiError(w, r, errBadRequest("this server runs no builds, remediations or syncs"))
		return false
	}
	return true
}

// apiPlan is socle plan on the server's catalog.
func (s *API) apiPlan(w http.ResponseWriter, r *http.Request) {
	if !s.needWork(w, r) {
		return
	}
	p, err := s.work.Plan(r, r.URL.Query()["name"])
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if r.URL.Query().Get("format") == "text" {
		var b bytes.Buffer
		p.WriteText(&b)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b.Bytes())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	p.WriteJSON(w)
}

// apiBuild queues socle build of the server's catalog as a job.
func (s *API) apiBuild(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Names []string `json:"names"`
	}
	if err := decodeBody(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if !s.needWork(w, r) {
		return
	}
	p, _ := auth.PrincipalFrom(r.Context())
	id, err := s.work.Enqueue(r, JobBuild, "build", BuildPayload{Names: body.Names, By: p.String()})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"job": id})
}

// apiRemediate queues socle remediate as a job.
func (s *API) apiRemediate(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DryRun bool `json:"dry_run"`
	}
	if err := decodeBody(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if !s.needWork(w, r) {
		return
	}
	p, _ := auth.PrincipalFrom(r.Context())
	id, err := s.work.Enqueue(r, JobRemediate, "remediate", RemediatePayload{DryRun: body.DryRun, By: p.String()})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"job": id})
}

// apiSyncFeeds queues a sync of the named feeds (every feed by default).
func (s *API) apiSyncFeeds(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Feeds []string `json:"feeds"`
	}
	if err := decodeBody(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if !s.needWork(w, r) {
		return
	}
	known := s.work.Feeds()
	names := body.Feeds
	if len(names) == 0 {
		names = known
	}
	ids := []int64{}
	for _, n := range names {
		if !slices.Contains(known, n) {
			s.apiError(w, r, errBadRequest("no feed "+n+" in the server's socle.yaml"))
			return
		}
		id, err := s.work.Enqueue(r, feeds.JobKind, "feed:"+n, feeds.JobPayload{Feed: n})
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		ids = append(ids, id)
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"jobs": ids})
}

// apiVEX keeps VEX documents (OpenVEX or CSAF) and applies every kept
// document to the stored findings (approver): socle vex apply. Audited
// as vex.apply; later images get the same statements when stored.
func (s *API) apiVEX(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Documents []json.RawMessage `json:"documents"`
		Names     []string          `json:"names"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 32<<20))
	if err := dec.Decode(&body); err != nil || len(body.Documents) == 0 {
		s.apiError(w, r, errBadRequest("want {\"documents\": [OpenVEX or CSAF documents], \"names\": [...]}"))
		return
	}
	docs := make([][]byte, len(body.Documents))
	for i, d := range body.Documents {
		if _, err := (&vuln.VEX{}).ParseVEXDocument(d); err != nil {
			s.apiError(w, r, errBadRequest("document "+strconv.Itoa(i+1)+": "+err.Error()))
			return
		}
		docs[i] = d
	}
	p, _ := auth.PrincipalFrom(r.Context())
	res, err := vuln.NewStoredVEX(s.st).KeepAndApply(r.Context(), docs, body.Names, p.String())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
