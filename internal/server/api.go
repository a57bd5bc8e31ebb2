package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
	"github.com/socle-dev/socle/internal/watch"
)

// maxPage is the largest page the API answers in one response.
const maxPage = 100000

func queryInt(r *http.Request, key string, def, max int) (int, error) {
	v := r.URL.Query().Get(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > max {
		return 0, errBadRequest(fmt.Sprintf("%s must be a number from 0 to %d", key, max))
	}
	return n, nil
}

func digestParam(r *http.Request) (string, error) {
	d := r.PathValue("digest")
	if err := oci.ValidateDigest(d); err != nil {
		return "", errBadRequest(err.Error())
	}
	return d, nil
}

// repositorySummary is a row of GET /api/v1/repositories.
type repositorySummary struct {
	Repository string   `json:"repository"`
	Images     int      `json:"images"`
	Tags       []string `json:"tags"`
}

func (s *API) apiRepositories(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.st.Images(r.Context(), store.ImageFilter{Limit: store.All})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	byRepo := map[string]*repositorySummary{}
	for _, im := range imgs {
		rs, ok := byRepo[im.Repository]
		if !ok {
			rs = &repositorySummary{Repository: im.Repository, Tags: []string{}}
			byRepo[im.Repository] = rs
		}
		rs.Images++
		rs.Tags = append(rs.Tags, im.Tags...)
	}
	out := make([]repositorySummary, 0, len(byRepo))
	for _, rs := range byRepo {
		sort.Strings(rs.Tags)
		out = append(out, *rs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Repository < out[j].Repository })
	writeJSON(w, http.StatusOK, map[string]any{"repositories": out})
}

// imageJSON is an image in API responses.
type imageJSON struct {
	Digest       string         `json:"digest"`
	Repository   string         `json:"repository"`
	Tags         []string       `json:"tags"`
	Environments []string       `json:"environments"`
	Platform     string         `json:"platform"`
	OS           string         `json:"os"`
	Created      time.Time      `json:"created,omitzero"`
	ScannedAt    time.Time      `json:"scanned_at"`
	BaseName     string         `json:"base_name,omitempty"`
	BaseDigest   string         `json:"base_digest,omitempty"`
	Packages     int            `json:"packages"`
	Open         map[string]int `json:"open"`
	Fixable      map[string]int `json:"fixable"`
}

func toImageJSON(im store.ImageSummary) imageJSON {
	return imageJSON{
		Digest: im.Digest, Repository: im.Repository, Tags: nonNilStrings(im.Tags), Environments: nonNilStrings(im.Environments),
		Platform: im.Platform, OS: im.OS, Created: im.Created, ScannedAt: im.ScannedAt, BaseName: im.BaseName,
		BaseDigest: im.BaseDigest, Packages: im.Packages, Open: im.Open, Fixable: im.Fixable,
	}
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *API) apiImages(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 1000, maxPage)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	offset, err := queryInt(r, "offset", 0, 1<<30)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	imgs, err := s.st.Images(r.Context(), store.ImageFilter{Repository: r.URL.Query().Get("repository"), Limit: limit, Offset: offset})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]imageJSON, 0, len(imgs))
	for _, im := range imgs {
		out = append(out, toImageJSON(im))
	}
	writeJSON(w, http.StatusOK, map[string]any{"images": out})
}

// inventoryOf loads the stored inventory of an image.
// inventoryOf returns the stored inventory of the image the request's
// {digest} names.
func (s *API) inventoryOf(r *http.Request) (string, *sbom.Inventory, store.Image, error) {
	d, err := digestParam(r)
	if err != nil {
		return "", nil, store.Image{}, err
	}
	img, err := s.st.Image(r.Context(), d)
	if err != nil {
		return d, nil, img, err
	}
	inv, err := scan.StoredInventory(r.Context(), s.st, img)
	return d, inv, img, err
}

func (s *API) apiImage(w http.ResponseWriter, r *http.Request) {
	d, inv, img, err := s.inventoryOf(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	sums, err := s.st.Images(r.Context(), store.ImageFilter{Repository: img.Repository, Limit: store.All})
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	resp := map[string]any{"os": inv.OS, "layers": inv.Layers, "labels": img.Labels}
	for _, sm := range sums {
		if sm.Digest == d {
			resp["image"] = toImageJSON(sm)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *API) apiImagePackages(w http.ResponseWriter, r *http.Request) {
	_, inv, _, err := s.inventoryOf(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"packages": inv.Packages, "removed": inv.Removed})
}

func (s *API) imageFindings(r *http.Request, digest string) ([]vuln.Finding, error) {
	rows, err := s.st.ImageFindings(r.Context(), digest)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		// Only an image without findings needs asking whether it is known.
		ok, err := s.st.HasImage(r.Context(), digest)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("image %s: %w", digest, store.ErrNotFound)
		}
	}
	fs := vuln.FromStore(slices.DeleteFunc(rows, func(f store.Finding) bool { return f.Withdrawn }))
	if err := s.rank(r, digest, fs); err != nil {
		return nil, err
	}
	if src := r.URL.Query().Get("severity_source"); src != "" {
		order, err := vuln.ParseSeverityOrder(src)
		if err != nil {
			return nil, errBadRequest(err.Error())
		}
		vuln.Reorder(fs, order)
	}
	if r.URL.Query().Get("sort") == "risk" {
		vuln.SortByRisk(fs)
	}
	return fs, nil
}

// rank sets the risk of an image's findings, from the environments that
// run it in the configured promotion order.
func (s *API) rank(r *http.Request, digest string, fs []vuln.Finding) error {
	envs, err := vuln.PlacementOf(r.Context(), s.st, digest)
	if err != nil {
		return err
	}
	vuln.Rank(fs, envs, s.envOrder())
	return nil
}

func (s *API) apiImageFindings(w http.ResponseWriter, r *http.Request) {
	d, err := digestParam(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	fs, err := s.imageFindings(r, d)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if fs == nil {
		fs = []vuln.Finding{}
	}
	writeFindings(w, d, fs)
}

func (s *API) apiImageSBOM(w http.ResponseWriter, r *http.Request) {
	d, inv, img, err := s.inventoryOf(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	name := sbom.ImageName{Repository: img.Repository}
	switch r.URL.Query().Get("format") {
	case "", "cyclonedx":
		w.Header().Set("Content-Type", "application/vnd.cyclonedx+json")
		err = sbom.WriteCycloneDX(w, sbom.CycloneDX(inv, name))
	case "spdx":
		w.Header().Set("Content-Type", "application/spdx+json")
		err = sbom.WriteSPDX(w, sbom.SPDX(inv, name))
	default:
		s.apiError(w, r, errBadRequest("format must be cyclonedx or spdx"))
		return
	}
	if err != nil {
		s.log.Error("writing an SBOM", "digest", d, "err", err)
	}
}

func (s *API) apiTags(w http.ResponseWriter, r *http.Request) {
	tags, err := s.st.Tags(r.Context(), r.URL.Query().Get("repository"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": tagsJSON(tags)})
}

type tagJSON struct {
	Repository string    `json:"repository"`
	Tag        string    `json:"tag"`
	Digest     string    `json:"digest"`
	Since      time.Time `json:"since"`
}

func tagsJSON(ts []store.TagEvent) []tagJSON {
	out := make([]tagJSON, 0, len(ts))
	for _, t := range ts {
		out = append(out, tagJSON{Repository: t.Repository, Tag: t.Tag, Digest: t.Digest, Since: t.At})
	}
	return out
}

func (s *API) apiTagHistory(w http.ResponseWriter, r *http.Request) {
	repo, tag := r.URL.Query().Get("repository"), r.URL.Query().Get("tag")
	if repo == "" || tag == "" {
		s.apiError(w, r, errBadRequest("repository and tag are required"))
		return
	}
	h, err := s.st.TagHistory(r.Context(), repo, tag)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"history": tagsJSON(h)})
}

// affectedJSON is a row of GET /api/v1/affected.
type affectedJSON struct {
	Digest       string   `json:"digest"`
	Repository   string   `json:"repository"`
	Tags         []string `json:"tags"`
	Environments []string `json:"environments"`
	Advisory     string   `json:"advisory,omitempty"`
	Package      string   `json:"package"`
	Version      string   `json:"version"`
	Ecosystem    string   `json:"ecosystem"`
	FixedVersion string   `json:"fixed_version,omitempty"`
	Severity     string   `json:"severity,omitempty"`
}

func (s *API) affected(r *http.Request) (store.AffectedResult, error) {
	q := r.URL.Query()
	aq := store.AffectedQuery{Advisory: q.Get("advisory"), Package: q.Get("package"), Ecosystem: q.Get("ecosystem"), Version: q.Get("version")}
	if aq.Advisory == "" && aq.Package == "" {
		return store.AffectedResult{}, errBadRequest("give advisory=ID or package=NAME")
	}
	var err error
	if aq.Limit, err = queryInt(r, "limit", 1000, maxPage); err != nil {
		return store.AffectedResult{}, err
	}
	if aq.Offset, err = queryInt(r, "offset", 0, 1<<30); err != nil {
		return store.AffectedResult{}, err
	}
	return s.st.AffectedImages(r.Context(), aq)
}

func (s *API) apiAffected(w http.ResponseWriter, r *http.Request) {
	res, err := s.affected(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]affectedJSON, 0, len(res.Rows))
	for _, a := range res.Rows {
		out = append(out, affectedJSON{
			Digest: a.Digest, Repository: a.Repository, Tags: nonNilStrings(a.Tags), Environments: nonNilStrings(a.Environments),
			Advisory: a.AdvisoryID, Package: a.Package.Name, Version: a.Package.Version, Ecosystem: a.Package.Key.Ecosystem,
			FixedVersion: a.FixedVersion, Severity: a.Severity,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"images": res.Images, "total": res.Total, "affected": out})
}

func (s *API) apiAdvisory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ids, err := s.st.ResolveAdvisoryIDs(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if len(ids) == 0 {
		s.apiError(w, r, fmt.Errorf("advisory %s: %w", id, store.ErrNotFound))
		return
	}
	var out []json.RawMessage
	for _, x := range ids {
		a, err := s.st.Advisory(r.Context(), x)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		out = append(out, a.Raw)
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "records": out})
}

func (s *API) apiAdvisoryStats(w http.ResponseWriter, r *http.Request) {
	stats, err := s.st.AdvisoryStats(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	feeds, err := s.st.Feeds(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	type ecoJSON struct {
		Ecosystem      string    `json:"ecosystem"`
		Records        int       `json:"records"`
		Withdrawn      int       `json:"withdrawn"`
		NewestModified time.Time `json:"newest_modified,omitzero"`
		Sources        []string  `json:"sources"`
	}
	out := make([]ecoJSON, 0, len(stats))
	for _, st := range stats {
		out = append(out, ecoJSON{st.Ecosystem, st.Records, st.Withdrawn, st.NewestModified, nonNilStrings(st.Sources)})
	}
	type feedJSON struct {
		Name        string    `json:"name"`
		Kind        string    `json:"kind"`
		URL         string    `json:"url"`
		Records     int       `json:"records"`
		LastSuccess time.Time `json:"last_success,omitzero"`
		LastError   string    `json:"last_error,omitempty"`
	}
	fs := make([]feedJSON, 0, len(feeds))
	for _, f := range feeds {
		fs = append(fs, feedJSON{f.Name, f.Kind, f.URL, f.Records, f.LastSuccess, f.LastError})
	}
	writeJSON(w, http.StatusOK, map[string]any{"ecosystems": out, "feeds": fs})
}

func (s *API) trend(r *http.Request, days int) ([]store.TrendPoint, error) {
	to := s.now().UTC()
	from := to.Add(-time.Duration(days) * 24 * time.Hour)
	return s.st.FindingTrend(r.Context(), from, to, 24*time.Hour)
}

func (s *API) apiTrend(w http.ResponseWriter, r *http.Request) {
	days, err := queryInt(r, "days", 30, 366)
	if err != nil || days == 0 {
		s.apiError(w, r, errBadRequest("days must be from 1 to 366"))
		return
	}
	pts, err := s.trend(r, days)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	type pt struct {
		At      time.Time `json:"at"`
		Open    int       `json:"open"`
		Fixable int       `json:"fixable"`
	}
	out := make([]pt, 0, len(pts))
	for _, p := range pts {
		out = append(out, pt{p.At, p.Open, p.Fixable})
	}
	writeJSON(w, http.StatusOK, map[string]any{"points": out})
}

type jobJSON struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Key       string    `json:"key"`
	State     string    `json:"state"`
	Done      int       `json:"done"`
	Total     int       `json:"total"`
	Message   string    `json:"message"`
	Error     string    `json:"error,omitempty"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toJobJSON(j store.Job) jobJSON {
	return jobJSON{j.ID, j.Kind, j.Key, j.State, j.Done, j.Total, j.Message, j.Error, j.Attempts, j.CreatedAt, j.UpdatedAt}
}

func (s *API) apiJobs(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 100, 1000)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	js, err := s.st.Jobs(r.Context(), limit)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]jobJSON, 0, len(js))
	for _, j := range js {
		out = append(out, toJobJSON(j))
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": out})
}

func (s *API) apiJob(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.apiError(w, r, errBadRequest("job id must be a number"))
		return
	}
	j, err := s.st.JobByID(r.Context(), id)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toJobJSON(j))
}

// decodeBody reads a bounded JSON body into v, refusing unknown fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errBadRequest("invalid JSON body: " + err.Error())
	}
	return nil
}

func (s *API) apiScan(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Reference string `json:"reference"`
	}
	if err := decodeBody(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if body.Reference == "" {
		s.apiError(w, r, errBadRequest("reference is required"))
		return
	}
	p, _ := auth.PrincipalFrom(r.Context())
	id, err := s.scans.EnqueueReference(r.Context(), body.Reference, auth.Allows(p.Role, store.RoleAdmin))
	switch {
	case errors.Is(err, watch.ErrUnknownRegistry):
		s.apiError(w, r, fmt.Errorf("%w: %w", auth.ErrForbidden, err))
		return
	case err != nil:
		// The reference's own fault, said without what the upstream
		// registry answered (that is logged).
		s.apiError(w, r, errBadRequest(err.Error()))
		return
	}
	s.log.Info("scan requested", "reference", body.Reference, "job", id, "principal", p.String())
	writeJSON(w, http.StatusAccepted, map[string]any{"job": id})
}

func (s *API) apiDeployments(w http.ResponseWriter, r *http.Request) {
	ds, err := s.st.CurrentDeployments(r.Context(), r.URL.Query().Get("environment"))
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	type depJSON struct {
		Environment string    `json:"environment"`
		Repository  string    `json:"repository"`
		Digest      string    `json:"digest"`
		Since       time.Time `json:"since"`
		By          string    `json:"by"`
	}
	out := make([]depJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, depJSON{d.Environment, d.Repository, d.Digest, d.Since, d.By})
	}
	writeJSON(w, http.StatusOK, map[string]any{"deployments": out})
}

// apiPutDeployment records which digest an environment runs, for
// deployments socle does not drive itself (a CD system reporting back).
func (s *API) apiPutDeployment(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Environment string `json:"environment"`
		Repository  string `json:"repository"`
		Digest      string `json:"digest"`
	}
	if err := decodeBody(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if body.Environment == "" || body.Repository == "" {
		s.apiError(w, r, errBadRequest("environment and repository are required"))
		return
	}
	if err := oci.ValidateDigest(body.Digest); err != nil {
		s.apiError(w, r, errBadRequest(err.Error()))
		return
	}
	p, _ := auth.PrincipalFrom(r.Context())
	if err := s.mayReportDeployment(p, body.Environment); err != nil {
		s.apiError(w, r, err)
		return
	}
	d := store.Deployment{Environment: body.Environment, Repository: body.Repository, Digest: body.Digest, Since: s.now().UTC(), By: p.String()}
	if err := s.st.PutDeployment(r.Context(), d); err != nil {
		s.apiError(w, r, err)
		return
	}
	details, _ := json.Marshal(map[string]string{"environment": d.Environment, "repository": d.Repository, "digest": d.Digest})
	if _, err := s.st.AppendAudit(r.Context(), store.AuditEvent{Actor: p.String(), Action: "deployment.report", Subject: d.Repository + "@" + d.Digest, Details: details}); err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"status": "recorded"})
}

// apiFleetVersion lets the dashboard see that the fleet changed.
func (s *API) apiFleetVersion(w http.ResponseWriter, r *http.Request) {
	v, err := s.fleetVersion(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"version": v})
}

func (s *API) fleetVersion(r *http.Request) (string, error) {
	imgs, err := s.st.Images(r.Context(), store.ImageFilter{Limit: 1})
	if err != nil {
		return "", err
	}
	n, err := s.st.ImageCount(r.Context())
	if err != nil {
		return "", err
	}
	v := strconv.Itoa(n)
	if len(imgs) > 0 {
		v += "-" + strconv.FormatInt(imgs[0].ScannedAt.UnixMicro(), 10)
	}
	return v, nil
}

// mayReportDeployment: what an environment runs is written by an admin,
// or by a role the environment names (its roles: in socle.yaml).
func (s *API) mayReportDeployment(p auth.Principal, env string) error {
	if auth.Allows(p.Role, store.RoleAdmin) {
		return nil
	}
	for _, e := range s.promoter.Envs {
		if e.Name == env && slices.Contains(e.Roles, p.Role) {
			return nil
		}
	}
	return fmt.Errorf("%w: recording what %s runs needs an admin, or a role its roles: name", auth.ErrForbidden, env)
}
