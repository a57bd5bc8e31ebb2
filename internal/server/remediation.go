package server

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/socle-dev/socle/internal/remediate"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/web"
)

func (s *API) exposure(r *http.Request) ([]remediate.EnvExposure, error) {
	var envs []string
	for _, e := range s.promoter.Envs {
		envs = append(envs, e.Name)
	}
	if asked := r.URL.Query()["environment"]; len(asked) > 0 {
		envs = asked
	}
	return remediate.Exposure(r.Context(), s.st, envs, s.now().UTC())
}

func (s *API) apiExposure(w http.ResponseWriter, r *http.Request) {
	ex, err := s.exposure(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"environments": ex})
}

func (s *API) apiRemediations(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rs, err := s.st.ListRemediations(r.Context(), r.URL.Query().Get("image"), limit)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"remediations": rs})
}

// exposurePage shows each environment's open fixable findings, the age
// of the oldest, the mean time to remediate, and the remediations.
func (s *API) exposurePage(w http.ResponseWriter, r *http.Request) {
	ex, err := s.exposure(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	rs, err := s.st.ListRemediations(r.Context(), "", 200)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := web.ExposurePage{}
	for _, e := range ex {
		row := web.EnvExposureRow{Environment: e.Environment, Images: e.Images, Open: len(e.Open), OldestAge: e.OldestAge,
			Remediated: e.Remediated, MTTR: e.MTTR}
		if e.Oldest != nil {
			row.Oldest = e.Oldest.Advisory + " in " + e.Oldest.Package + " (" + e.Oldest.Repository + ")"
		}
		for _, o := range e.Open {
			row.Findings = append(row.Findings, web.ExposedRow{Repository: o.Repository, Digest: o.Digest, Advisory: o.Advisory,
				Package: o.Package, Version: o.Version, Fixed: o.Fixed, Severity: o.Severity, Since: o.Since, Risk: o.Risk, KEV: o.KEV})
		}
		data.Environments = append(data.Environments, row)
	}
	for _, x := range rs {
		data.Remediations = append(data.Remediations, web.RemediationRow{ID: x.ID, Image: x.Image, Repository: x.Repository,
			Strategy: x.Strategy, From: x.From, To: x.To, Fixes: len(x.Fixes), Added: len(x.Added), Status: x.Status, Detail: x.Detail, At: x.At})
	}
	s.render(w, r, http.StatusOK, "exposure", "Exposure", data)
}

// apiAttribution lists an image's open findings with the catalog image
// whose own layers brought each one (the base, not every app).
func (s *API) apiAttribution(w http.ResponseWriter, r *http.Request) {
	d, err := digestParam(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	if ok, err := s.st.HasImage(r.Context(), d); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("image %s: %w", d, store.ErrNotFound)
		}
		s.apiError(w, r, err)
		return
	}
	names, err := s.buildNames(r)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	fs, err := remediate.Attribute(r.Context(), s.st, d, names)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(fs))
	for _, f := range fs {
		out = append(out, map[string]any{"advisory": f.AdvisoryID, "package": f.Package.Name, "version": f.Package.Version,
			"fixed_version": f.FixedVersion, "severity": f.Severity, "layer": f.Package.Layer, "layer_index": f.Package.LayerIndex,
			"opened": f.OpenedAt, "owner": f.Owner, "owner_digest": f.OwnerDigest})
	}
	writeJSON(w, http.StatusOK, map[string]any{"digest": d, "findings": out})
}

// buildNames maps the digests of recorded catalog builds to their names.
func (s *API) buildNames(r *http.Request) (map[string]string, error) {
	builds, err := s.st.BuildHistory(r.Context(), "", store.All)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, b := range builds {
		if b.Digest != "" {
			names[b.Digest] = b.Name
		}
	}
	return names, nil
}
