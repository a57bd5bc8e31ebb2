package server

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/socle-dev/socle/internal/admission"
	"github.com/socle-dev/socle/internal/audit"
	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/watch"
	"github.com/socle-dev/socle/internal/web"
)

//go:embed openapi.yaml
var openAPI []byte

// Scans queues scans on request.
type Scans interface {
	// EnqueueReference queues a scan; anyRegistry lets an admin name a
	// registry socle does not follow.
	EnqueueReference(ctx context.Context, ref string, anyRegistry bool) (int64, error)
}

// Deps are what the server is built from.
type Deps struct {
	Store   Store
	Scans   Scans
	Auth    *auth.Authenticator
	Metrics *Metrics
	Logger  *slog.Logger
	// Ready reports whether the server can take work (store reachable,
	// registry started).
	Ready func(ctx context.Context) error
	// Version is shown in the API.
	Version string
	// AuthConfig is how people sign in to the dashboard: the public URL,
	// trusted proxies, session bounds and the identity provider.
	AuthConfig config.Auth
	// Promoter runs promotions; nil serves the promotion routes as
	// "no environments configured".
	Promoter *promote.Promoter
	// Registry is the embedded registry, for garbage collection; nil
	// when socle uses an external one.
	Registry Collector
	// GCGrace keeps blobs younger than this from collection (default 1h).
	GCGrace time.Duration
	// Checkpoints writes signed checkpoints of the audit log on demand;
	// nil refuses them.
	Checkpoints *audit.Checkpointer
	// Environments are the promotion path, for the Running view.
	Environments []config.Environment
	// Through is the last environment fix runs promote to unattended
	// (remediation.promote.through).
	Through string
	// Promoted tells how far digests were promoted (admission's
	// snapshot); nil reads it from the store.
	Promoted PromotedIndex
	// Work plans and queues builds, remediations and feed syncs; nil
	// refuses them.
	Work Work
	// Importer indexes imported SBOMs; nil refuses them.
	Importer Importer
}

// PromotedIndex tells how far digests were promoted.
type PromotedIndex interface {
	Snapshot() *admission.Snapshot
}

// Collector collects the embedded registry's garbage.
type Collector interface {
	GC(ctx context.Context, o registry.GCOptions) (registry.GCReport, error)
}

// API serves the REST API and the dashboard.
type API struct {
	st      Store
	scans   Scans
	auth    *auth.Authenticator
	metrics *Metrics
	log     *slog.Logger
	ready   func(ctx context.Context) error
	pages   *web.Renderer
	version string
	// sessions are the dashboard's; signIn how people sign in.
	sessions *auth.Sessions
	signIn   *signIn
	now      func() time.Time
	// promoter is never nil: without environments it has none.
	promoter    *promote.Promoter
	registry    Collector
	gcGrace     time.Duration
	checkpoints *audit.Checkpointer
	answers     answerCache
	// environments and promoted serve the Running view.
	environments []config.Environment
	through      string
	promoted     PromotedIndex
	work         Work
	importer     Importer
}

// NewAPI returns the API and dashboard handler.
func NewAPI(d Deps) (*API, error) {
	pages, err := web.New()
	if err != nil {
		return nil, err
	}
	s := &API{
		st: d.Store, scans: d.Scans, auth: d.Auth, metrics: d.Metrics, log: d.Logger,
		ready: d.Ready, pages: pages, version: d.Version, now: time.Now,
		promoter: d.Promoter, registry: d.Registry, gcGrace: d.GCGrace, checkpoints: d.Checkpoints,
		environments: d.Environments, through: d.Through, promoted: d.Promoted, work: d.Work, importer: d.Importer,
	}
	if s.promoter == nil {
		s.promoter = &promote.Promoter{Store: d.Store}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(d.Store)
	}
	sp := d.AuthConfig.Session
	s.sessions = auth.NewSessions(d.Store, sp.IdleOrDefault(), sp.AbsoluteOrDefault())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.signIn, err = newSignIn(ctx, d.AuthConfig, d.Store); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the HTTP handler with every route.
func (s *API) Handler() http.Handler {
	mux := http.NewServeMux()
	viewer := func(h http.HandlerFunc) http.Handler { return s.requireAPI(store.RoleViewer, h) }
	page := func(h http.HandlerFunc) http.Handler { return s.requirePage(store.RoleViewer, h) }

	// Operations: no token.
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.requireAPI(store.RoleViewer, s.metrics.Handler().ServeHTTP))

	// API.
	mux.HandleFunc("GET /api/v1/openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(openAPI)
	})
	for _, rt := range s.apiRoutes() {
		mux.Handle(rt.pattern, s.requireAPI(rt.role, rt.handler))
	}
	mux.Handle("/api/", viewer(func(w http.ResponseWriter, r *http.Request) {
		s.apiError(w, r, errNotFoundRoute)
	}))

	// Dashboard.
	mux.Handle("GET /static/", web.Static())
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.Handle("POST /logout", s.requirePage(store.RoleViewer, s.logout))
	mux.HandleFunc("GET /auth/oidc", s.oidcLogin)
	mux.HandleFunc("GET /auth/callback", s.oidcCallback)
	mux.Handle("GET /{$}", page(s.fleetPage))
	mux.Handle("GET /images/{digest}", page(s.imagePage))
	mux.Handle("GET /cves/{id}", page(s.cvePage))
	mux.Handle("GET /packages", page(s.packagePage))
	mux.Handle("GET /jobs", page(s.jobsPage))
	mux.Handle("GET /promotions", page(s.promotionsPage))
	mux.Handle("GET /exposure", page(s.exposurePage))
	mux.Handle("GET /running", page(s.runningPage))
	mux.Handle("GET /fixruns", page(s.fixRunsPage))
	mux.Handle("POST /promotions", s.requirePage(store.RoleDeveloper, s.promoteForm))
	mux.Handle("POST /promotions/{id}/approve", s.requirePage(store.RoleApprover, s.approveForm))
	mux.Handle("GET /search", page(s.search))

	return s.observe(mux, securityHeaders(mux))
}

// apiRoute is one route of the REST API and the least role it needs.
type apiRoute struct {
	pattern string
	role    string
	handler http.HandlerFunc
}

// apiRoutes are the REST API's routes; openapi.yaml describes each one
// (a test holds the two together).
func (s *API) apiRoutes() []apiRoute {
	return []apiRoute{
		{"GET /api/v1/repositories", store.RoleViewer, s.apiRepositories},
		{"GET /api/v1/images", store.RoleViewer, s.apiImages},
		{"GET /api/v1/images/{digest}", store.RoleViewer, s.apiImage},
		{"GET /api/v1/images/{digest}/packages", store.RoleViewer, s.apiImagePackages},
		{"GET /api/v1/images/{digest}/findings", store.RoleViewer, s.cached(s.apiImageFindings)},
		{"GET /api/v1/images/{digest}/sbom", store.RoleViewer, s.apiImageSBOM},
		{"GET /api/v1/tags", store.RoleViewer, s.apiTags},
		{"GET /api/v1/tags/history", store.RoleViewer, s.apiTagHistory},
		{"GET /api/v1/affected", store.RoleViewer, s.cached(s.apiAffected)},
		{"GET /api/v1/advisories", store.RoleViewer, s.apiAdvisoryStats},
		{"GET /api/v1/advisories/{id}", store.RoleViewer, s.apiAdvisory},
		{"GET /api/v1/trend", store.RoleViewer, s.apiTrend},
		{"GET /api/v1/jobs", store.RoleViewer, s.apiJobs},
		{"GET /api/v1/jobs/{id}", store.RoleViewer, s.apiJob},
		{"POST /api/v1/scans", store.RoleDeveloper, s.apiScan},
		{"GET /api/v1/deployments", store.RoleViewer, s.apiDeployments},
		{"POST /api/v1/deployments", store.RoleDeveloper, s.apiPutDeployment},
		{"GET /api/v1/fleet/version", store.RoleViewer, s.apiFleetVersion},
		{"POST /api/v1/promotions", store.RoleDeveloper, s.apiPromote},
		{"GET /api/v1/promotions", store.RoleViewer, s.apiPromotions},
		{"GET /api/v1/promotions/{id}", store.RoleViewer, s.apiPromotion},
		{"POST /api/v1/promotions/{id}/approve", store.RoleApprover, s.apiApprove},
		{"POST /api/v1/rollback", store.RoleDeveloper, s.apiRollback},
		{"GET /api/v1/drift", store.RoleViewer, s.apiDrift},
		{"GET /api/v1/audit", store.RoleApprover, s.apiAudit},
		{"GET /api/v1/exposure", store.RoleViewer, s.apiExposure},
		{"GET /api/v1/remediations", store.RoleViewer, s.apiRemediations},
		{"GET /api/v1/fixruns", store.RoleViewer, s.apiFixRuns},
		{"GET /api/v1/fixruns/mttr", store.RoleViewer, s.apiMTTR},
		{"GET /api/v1/fixruns/{id}", store.RoleViewer, s.apiFixRun},
		{"POST /api/v1/fixruns/{id}/{action}", store.RoleAdmin, s.apiFixRunControl},
		{"GET /api/v1/images/{digest}/attribution", store.RoleViewer, s.apiAttribution},
		{"POST /api/v1/registry/gc", store.RoleAdmin, s.apiRegistryGC},
		{"GET /api/v1/sessions", store.RoleViewer, s.apiSessions},
		{"POST /api/v1/audit/checkpoints", store.RoleAdmin, s.apiCheckpoint},
		{"DELETE /api/v1/sessions/{id}", store.RoleViewer, s.apiRevokeSession},
		{"GET /api/v1/running", store.RoleViewer, s.apiRunning},
		{"GET /api/v1/whoami", store.RoleViewer, s.apiWhoami},
		{"POST /api/v1/tokens", store.RoleAdmin, s.apiCreateToken},
		{"GET /api/v1/tokens", store.RoleAdmin, s.apiTokens},
		{"DELETE /api/v1/tokens/{id}", store.RoleAdmin, s.apiRevokeToken},
		{"GET /api/v1/plan", store.RoleViewer, s.apiPlan},
		{"POST /api/v1/builds", store.RoleDeveloper, s.apiBuild},
		{"POST /api/v1/remediations", store.RoleDeveloper, s.apiRemediate},
		{"POST /api/v1/feeds/sync", store.RoleDeveloper, s.apiSyncFeeds},
		{"POST /api/v1/vex", store.RoleApprover, s.apiVEX},
		{"POST /api/v1/sboms", store.RoleDeveloper, s.apiImportSBOM},
	}
}

// APIRoutes lists the REST API's route patterns ("GET /api/v1/jobs").
func (s *API) APIRoutes() []string {
	var out []string
	for _, rt := range s.apiRoutes() {
		out = append(out, rt.pattern)
	}
	return out
}

// observe records metrics and a log line per request, by route pattern
// (never by raw path, which would let clients create label values).
func (s *API) observe(mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		_, route := mux.Handler(r)
		if route == "" {
			route = "unmatched"
		}
		d := time.Since(start)
		s.metrics.httpRequests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		s.metrics.httpDuration.WithLabelValues(route).Observe(d.Seconds())
		if route != "GET /healthz" && route != "GET /readyz" {
			s.log.Debug("http request", "method", r.Method, "route", route, "status", sw.code, "duration", d)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		next.ServeHTTP(w, r)
	})
}

func (s *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *API) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.st.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "store unreachable"})
		return
	}
	if s.ready != nil {
		if err := s.ready(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Ensure the watcher satisfies Scans.
var _ Scans = (*watch.Watcher)(nil)
