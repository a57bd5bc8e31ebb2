package server

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
	"github.com/socle-dev/socle/internal/web"
)

// render writes a page, buffering it so that a template error becomes a
// clean 500 rather than half a page.
func (s *API) render(w http.ResponseWriter, r *http.Request, code int, page, title string, data any) {
	p := web.Page{Title: title, Data: data}
	if pr, ok := auth.PrincipalFrom(r.Context()); ok {
		p.User, p.Role = pr.Name, pr.Role
		if p.User == "" {
			p.User = "token " + pr.TokenID
		}
	}
	p.CSRF = csrfOf(r)
	var buf bytes.Buffer
	if err := s.pages.Render(&buf, page, p); err != nil {
		s.log.Error("rendering a page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

func (s *API) pageError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := status(err)
	if code == http.StatusInternalServerError {
		s.log.Error("page failed", "path", r.URL.Path, "err", err)
	}
	s.render(w, r, code, "error", http.StatusText(code), web.ErrorPage{Status: code, Message: msg})
}

func (s *API) fleetPage(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.st.Images(r.Context(), store.ImageFilter{Limit: 2000})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	placed, err := vuln.Placements(r.Context(), s.st)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	order := s.envOrder()
	data := web.FleetPage{}
	for _, im := range imgs {
		row := web.ImageRow{
			Digest: im.Digest, Repository: im.Repository, Tags: im.Tags, Environments: im.Environments,
			Platform: im.Platform, OS: im.OS, Created: im.Created, ScannedAt: im.ScannedAt, Base: im.BaseName,
			Packages: im.Packages, CriticalFix: im.Fixable[vuln.SeverityCritical], HighFix: im.Fixable[vuln.SeverityHigh],
			KEV: im.KEV,
		}
		e := vuln.ExposureOf(placed[im.Digest], order)
		for _, t := range im.Threats {
			row.Risk = max(row.Risk, vuln.RiskOf(t.Severity, t.Score, t.KEV, t.EPSS, e))
		}
		for _, n := range im.Open {
			row.Open += n
		}
		if len(im.Tags) > 0 {
			data.Critical += row.CriticalFix
			data.High += row.HighFix
		}
		data.Images = append(data.Images, row)
	}
	// Riskiest first: where it runs, how severe, how exploited.
	sort.SliceStable(data.Images, func(i, j int) bool { return data.Images[i].Risk > data.Images[j].Risk })
	pts, err := s.trend(r, 30)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	tp := make([]web.TrendPoint, 0, len(pts))
	for _, p := range pts {
		tp = append(tp, web.TrendPoint{At: p.At, Open: p.Open, Fixable: p.Fixable})
	}
	data.Trend = web.TrendChart(tp, 760, 200)
	if data.Advisories, err = s.st.AdvisoryCount(r.Context()); err != nil {
		s.pageError(w, r, err)
		return
	}
	stats, err := s.st.AdvisoryStats(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data.SampleOnly = len(stats) > 0
	for _, st := range stats {
		for _, src := range st.Sources {
			if src != vuln.BundledSource {
				data.SampleOnly = false
			}
		}
	}
	if data.Version, err = s.fleetVersion(r); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "fleet", "Fleet", data)
}

func (s *API) imagePage(w http.ResponseWriter, r *http.Request) {
	d, inv, img, err := s.inventoryOf(r)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	fs, err := s.imageFindings(r, d)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := web.ImagePage{
		Digest: d, Repository: img.Repository, Platform: img.Platform, OS: img.OS, Created: img.Created,
		ScannedAt: img.ScannedAt, Base: img.BaseName, BaseDigest: img.BaseDigest, Summary: map[string]int{},
	}
	byLayer := map[int]int{}
	var last string
	for _, f := range fs {
		key := f.Package.Name + "\x00" + f.Package.Version + "\x00" + f.Package.Path
		data.Findings = append(data.Findings, web.FindingRow{
			ID: f.ID, Aliases: f.Aliases, Severity: f.Severity, Package: f.Package.Name, Version: f.Package.Version,
			Fixed: f.FixedVersion, LayerIndex: f.Package.LayerIndex, Summary: f.Summary, Published: f.Published, First: key != last,
			SeveritySource: f.SeveritySource, KEV: !f.KEV.IsZero(), EPSS: f.EPSS, Risk: f.Risk, WontFix: f.FixState == vuln.FixStateWontFix,
		})
		last = key
		byLayer[f.Package.LayerIndex]++
		data.Summary[f.Severity]++
	}
	for _, l := range inv.Layers {
		data.Layers = append(data.Layers, web.LayerRow{Index: l.Index, Digest: l.Digest, Size: l.Size, CreatedBy: l.CreatedBy, Packages: l.Packages, Findings: byLayer[l.Index]})
	}
	for _, p := range inv.Packages {
		data.Packages = append(data.Packages, web.PackageRow{Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL, Path: p.Path, LayerIndex: p.LayerIndex})
	}
	sums, err := s.st.Images(r.Context(), store.ImageFilter{Repository: img.Repository, Limit: store.All})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	for _, sm := range sums {
		if sm.Digest == d {
			data.Tags, data.Environments = sm.Tags, sm.Environments
		}
	}
	for _, tag := range data.Tags {
		hist, err := s.st.TagHistory(r.Context(), img.Repository, tag)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		th := web.TagHistory{Repository: img.Repository, Tag: tag}
		for i, ev := range hist {
			th.Events = append(th.Events, web.TagEventRow{Digest: ev.Digest, At: ev.At, Current: i == 0})
		}
		data.History = append(data.History, th)
	}
	if data.Compared, err = s.compareSBOMs(r, d, inv.Packages); err != nil {
		s.pageError(w, r, err)
		return
	}
	if data.Checks, err = s.checkSummary(r, d); err != nil {
		s.pageError(w, r, err)
		return
	}
	title := img.Repository
	if title == "" {
		title = web.ShortDigest(d)
	}
	s.render(w, r, http.StatusOK, "image", title, data)
}

func (s *API) cvePage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ids, err := s.st.ResolveAdvisoryIDs(r.Context(), id)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := web.CVEPage{ID: id}
	for _, x := range ids {
		a, err := s.st.Advisory(r.Context(), x)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		data.Advisories = append(data.Advisories, web.AdvisoryRow{
			ID: a.ID, Aliases: a.Aliases, Summary: a.Summary, Severity: a.Severity, Score: a.Score,
			Published: a.Published, Modified: a.Modified, Withdrawn: !a.Withdrawn.IsZero(), Source: a.Source,
		})
	}
	res, err := s.st.AffectedImages(r.Context(), store.AffectedQuery{Advisory: id, Limit: pageRows})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data.Affected, data.Images, data.More = affectedRows(res.Rows, s.envOrder()), res.Images, res.Total-len(res.Rows)
	s.render(w, r, http.StatusOK, "cve", id, data)
}

// pageRows bounds the rows a dashboard page lists; the API pages the rest.
const pageRows = 500

// affectedRows folds one row per image and package, whatever the number
// of advisories (aliases) that matched it.
// Rows are in exposure order: images in prod first, then down the
// promotion order, then images deployed nowhere (the risk order, since
// the vulnerability is the same).
func affectedRows(rows []store.AffectedImage, order []string) []web.AffectedRow {
	seen := map[string]bool{}
	var out []web.AffectedRow
	for _, a := range rows {
		k := a.Digest + "\x00" + a.Package.Name + "\x00" + a.Package.Version
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, web.AffectedRow{
			Digest: a.Digest, Repository: a.Repository, Tags: a.Tags, Environments: a.Environments,
			Package: a.Package.Name, Version: a.Package.Version, Fixed: a.FixedVersion, Severity: a.Severity,
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		wi, wj := vuln.ExposureOf(out[i].Environments, order).Weight, vuln.ExposureOf(out[j].Environments, order).Weight
		if wi != wj {
			return wi > wj
		}
		if len(out[i].Environments) != len(out[j].Environments) {
			return len(out[i].Environments) > len(out[j].Environments)
		}
		return out[i].Repository < out[j].Repository
	})
	return out
}

// envOrder is the configured promotion order of the environments.
func (s *API) envOrder() []string {
	order := make([]string, len(s.environments))
	for i, e := range s.environments {
		order[i] = e.Name
	}
	return order
}

func (s *API) packagePage(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		s.pageError(w, r, errBadRequest("name is required"))
		return
	}
	eco := r.URL.Query().Get("ecosystem")
	res, err := s.st.AffectedImages(r.Context(), store.AffectedQuery{Package: name, Ecosystem: eco, Limit: pageRows})
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := web.PackagePage{Name: name, Ecosystem: eco, Affected: affectedRows(res.Rows, s.envOrder()), Images: res.Images, More: res.Total - len(res.Rows)}
	s.render(w, r, http.StatusOK, "packages", name, data)
}

func (s *API) jobsPage(w http.ResponseWriter, r *http.Request) {
	js, err := s.st.Jobs(r.Context(), 200)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	data := web.JobsPage{}
	for _, j := range js {
		data.Jobs = append(data.Jobs, web.JobRow{
			ID: j.ID, Kind: j.Kind, Key: j.Key, State: j.State, Done: j.Done, Total: j.Total,
			Message: j.Message, Error: j.Error, Attempts: j.Attempts, Created: j.CreatedAt, Updated: j.UpdatedAt,
		})
	}
	s.render(w, r, http.StatusOK, "jobs", "Jobs", data)
}

var (
	advisoryLike = regexp.MustCompile(`^(CVE|GHSA|GO|PYSEC|DSA|DLA|DEBIAN|ALPINE|RUSTSEC|OSV)-[A-Za-z0-9._:-]+$`)
	digestLike   = regexp.MustCompile(`^(sha256:)?[0-9a-f]{64}$`)
)

// search sends a query where it belongs: an advisory, an image, or a
// package.
func (s *API) search(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	switch {
	case q == "":
		http.Redirect(w, r, "/", http.StatusSeeOther)
	case advisoryLike.MatchString(upperPrefix(q)) && !strings.Contains(q, "/"):
		http.Redirect(w, r, "/cves/"+url.PathEscape(upperPrefix(q)), http.StatusSeeOther)
	case digestLike.MatchString(q):
		if !strings.HasPrefix(q, "sha256:") {
			q = "sha256:" + q
		}
		http.Redirect(w, r, "/images/"+q, http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/packages?name="+url.QueryEscape(q), http.StatusSeeOther)
	}
}

// upperPrefix writes an identifier's database prefix in capitals
// ("cve-2021-1" becomes "CVE-2021-1"); the rest keeps its case, which
// GHSA identifiers need.
func upperPrefix(q string) string {
	prefix, rest, ok := strings.Cut(q, "-")
	if !ok {
		return q
	}
	return strings.ToUpper(prefix) + "-" + rest
}

// compareSBOMs sets each SBOM imported for an image against the
// inventory socle holds: the packages only one side lists.
func (s *API) compareSBOMs(r *http.Request, digest string, pkgs []sbom.Package) ([]web.SBOMComparison, error) {
	imported, err := s.st.ImportedSBOMs(r.Context(), digest)
	if err != nil || len(imported) == 0 {
		return nil, err
	}
	ours := map[string]bool{}
	for _, p := range pkgs {
		ours[p.Name+" "+p.Version] = true
	}
	var out []web.SBOMComparison
	for _, im := range imported {
		c := web.SBOMComparison{Format: im.Format, Tools: im.Tools, ImportedAt: im.ImportedAt}
		theirs := map[string]bool{}
		for _, p := range im.Packages {
			theirs[p] = true
			if ours[p] {
				c.Same++
			} else {
				c.OnlyTheirs = append(c.OnlyTheirs, p)
			}
		}
		for p := range ours {
			if !theirs[p] {
				c.OnlySocle = append(c.OnlySocle, p)
			}
		}
		sort.Strings(c.OnlySocle)
		out = append(out, c)
	}
	return out, nil
}

// checkSummary reads the image's kept check, if any.
func (s *API) checkSummary(r *http.Request, digest string) (*web.CheckSummary, error) {
	kept, err := s.st.ImageCheck(r.Context(), digest)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	res, err := check.DecodeResult(kept)
	if err != nil {
		return nil, err
	}
	out := &web.CheckSummary{At: kept.CheckedAt, Stale: kept.RulesVersion != check.RulesVersion(), Total: res.Layers.Total,
		Wasted: res.Layers.Wasted, Efficiency: res.Layers.Efficiency}
	for _, f := range res.Findings {
		out.Findings = append(out.Findings, web.CheckRow{Rule: f.Rule, Severity: f.Severity, Object: f.Object, Message: f.Message,
			Fix: f.Fix, Layer: f.Layer, Base: f.Base})
	}
	for _, f := range res.Layers.Biggest {
		out.Biggest = append(out.Biggest, web.FileRow{Path: f.Path, Size: f.Size, Layer: f.Layer})
	}
	for _, f := range res.Layers.WastedFiles {
		out.Wasteful = append(out.Wasteful, web.FileRow{Path: f.Path, Size: f.Size, Layer: f.Layer})
	}
	return out, nil
}
