package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/socle-dev/socle/internal/admission"
	"github.com/socle-dev/socle/internal/audit"
	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/feeds"
	"github.com/socle-dev/socle/internal/jobs"
	"github.com/socle-dev/socle/internal/loop"
	"github.com/socle-dev/socle/internal/notify"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/remediate"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
	"github.com/socle-dev/socle/internal/watch"
)

// Config is what socle serve runs with: the command line's flags merged
// with socle.yaml by the caller. Zero values take the defaults.
type Config struct {
	// File is socle.yaml.
	File *config.File
	// Store is the opened store; the App uses it and never closes it.
	Store store.Store
	// StoreLocation names the database in the start banner.
	StoreLocation string
	// DataDir holds the registry, caches, TLS material and the admin
	// token.
	DataDir string
	// Addr is the API and dashboard address (default 127.0.0.1:8080);
	// RegistryAddr the embedded registry's (default 127.0.0.1:5050).
	Addr         string
	RegistryAddr string
	// ExternalRegistry, when set, replaces the embedded registry.
	ExternalRegistry       string
	InsecureRegistryUnsafe bool
	// Workers bounds the background jobs run at once (default 2).
	Workers int
	// TLSCert and TLSKey serve both listeners over TLS; TLSSelfSigned
	// makes a loopback certificate in DATA_DIR/tls instead.
	TLSCert, TLSKey string
	TLSSelfSigned   bool
	// ShutdownGrace is how long running jobs may finish on shutdown
	// (default 30s); JobLease how long a dead server's job waits before
	// another takes it (default 30s).
	ShutdownGrace time.Duration
	JobLease      time.Duration
	Logger        *slog.Logger
	// Out receives the start banner.
	Out io.Writer
	// PromotionPause, when set, is the promoter's fault hook.
	PromotionPause func(stage string)
	// AdmissionAddr is the admission webhooks' TLS listener; empty runs
	// none.
	AdmissionAddr string
}

// App is socle serve: the embedded registry, the API and dashboard, and
// the background loops (jobs, polls, feed syncs, promotion
// reconciliation, auto-remediation), built by New, started by Run and
// stopped by Shutdown.
type App struct {
	cfg   Config
	log   *slog.Logger
	st    store.Store
	owner string
	// kevAlert fires findings.kev for known-exploited findings newly in
	// the last environment; nil without environments.
	kevAlert     func(ctx context.Context) error
	tls          *tls.Config
	advisoryNote string
	tokenNote    string

	reg      *registry.Registry
	regLn    net.Listener
	api      *API
	apiLn    net.Listener
	apiSrv   *http.Server
	regSrv   *http.Server
	watcher  *watch.Watcher
	runner   *jobs.Runner
	promoter *promote.Promoter
	watches  []config.Watch
	// checkpoints signs the audit log's head to a sink outside the store.
	checkpoints *audit.Checkpointer
	// remote reaches registries (the embedded one in process).
	remote []remote.Option
	// scanner indexes what builds push to buildRegistry.
	scanner       *scan.Scanner
	buildRegistry string
	remediating   sync.Mutex
	// clusters are watched; admission answers their webhooks on admLn.
	clusters    clusterSet
	admission   *admission.Controller
	admissionCA []byte
	admLn       net.Listener
	admSrv      *http.Server

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// New builds the App: the advisories (the bundled sample when the store
// has none), the first admin token, TLS, the registry and its listener,
// the watcher, the job runner, the promoter and the API. Nothing runs
// until Run.
func New(ctx context.Context, cfg Config) (*App, error) {
	cfg.Addr = cmp.Or(cfg.Addr, "127.0.0.1:8080")
	cfg.RegistryAddr = cmp.Or(cfg.RegistryAddr, "127.0.0.1:5050")
	cfg.ShutdownGrace = cmp.Or(cfg.ShutdownGrace, 30*time.Second)
	cfg.JobLease = cmp.Or(cfg.JobLease, 30*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("a TLS certificate and key go together")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: cfg.Logger, st: cfg.Store, stop: make(chan struct{}), done: make(chan struct{})}
	hostname, _ := os.Hostname()
	a.owner = fmt.Sprintf("%s-%d-%s", hostname, os.Getpid(), randomHex(4))

	var err error
	if a.advisoryNote, err = loadAdvisories(ctx, a.st); err != nil {
		return nil, err
	}
	if a.tokenNote, err = auth.BootstrapAdmin(ctx, a.st, cfg.DataDir, time.Now()); err != nil {
		return nil, err
	}
	if err := audit.RecordConfig(ctx, a.st, cfg.File.Path(), cfg.File.Digest(), "socle serve "+a.owner); err != nil {
		return nil, err
	}
	if a.tls, err = tlsConfig(cfg); err != nil {
		return nil, err
	}
	if err := a.buildParts(ctx); err != nil {
		a.closeListeners()
		return nil, err
	}
	return a, nil
}

// loadAdvisories imports the bundled sample when the store has no
// advisory, and says which the server matches with.
func loadAdvisories(ctx context.Context, st store.Store) (string, error) {
	n, err := st.AdvisoryCount(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return fmt.Sprintf("%d records", n), nil
	}
	stats, err := vuln.ImportBundled(ctx, st)
	if err != nil {
		return "", fmt.Errorf("loading the bundled sample advisories: %w", err)
	}
	return fmt.Sprintf("bundled SAMPLE only (%d records): import real feeds with `socle db import`", stats.Records), nil
}

// buildParts makes the registry, the watcher, the jobs, the promoter
// and the API, and opens the listeners.
func (a *App) buildParts(ctx context.Context) error {
	cfg, log := a.cfg, a.log
	kept := vuln.NewStoredVEX(a.st)
	sc, err := scan.NewWithAnalyzer(a.st, scan.WithOwner(a.owner), scan.WithClaimLease(cfg.JobLease), scan.WithLogger(log),
		scan.WithVEX(kept.Hook))
	if err != nil {
		return err
	}
	authr := auth.NewAuthenticator(a.st)
	remoteOpts := source.Options{InsecureRegistryUnsafe: cfg.InsecureRegistryUnsafe || cfg.File.Registry.InsecureUnsafe}
	if cfg.ExternalRegistry == "" {
		if err := a.openRegistry(authr); err != nil {
			return err
		}
	}
	regHost := ""
	if a.regLn != nil {
		regHost = shownAddr(cfg.RegistryAddr, a.regLn)
	}
	a.watcher = watch.New(a.st, sc, watch.Options{
		Embedded: a.reg, EmbeddedHost: regHost, Remote: remoteOpts, Known: followedRegistries(cfg), Logger: log.With("component", "watch"),
		Check: check.Keeper{St: a.st}.Check,
		Wake: func() {
			if a.runner != nil {
				a.runner.Wake()
			}
		},
	})
	metrics := NewMetrics(a.st)
	syncer := feeds.NewSyncer(a.st, cfg.DataDir, sc.ReevaluateWith(a.st), log.With("component", "feeds"))
	syncer.ApplyVEX = kept.Hook
	syncer.Notify = notify.FromConfig(cfg.File.Webhooks, log).Func()
	if envs := cfg.File.Environments; len(envs) > 0 {
		prod := envs[len(envs)-1].Name
		syncer.KEVAlert = vuln.KEVAlerter(a.st, prod, syncer.Notify)
		a.kevAlert = syncer.KEVAlert
	}
	a.scanner, a.buildRegistry = sc, cmp.Or(cfg.ExternalRegistry, regHost)
	if cfg.File.Remediation.Auto && len(cfg.File.Images) > 0 {
		syncer.After = a.autoRemediate()
	}
	syncJob := syncer.Job(cfg.File.Feeds)
	a.runner = jobs.NewRunner(a.st, map[string]jobs.Handler{
		watch.KindScan:  a.watcher.HandleScan,
		watch.KindCheck: a.watcher.HandleCheck,
		feeds.JobKind: func(ctx context.Context, j *store.Job, p jobs.Progress) error {
			return syncJob(ctx, j, p)
		},
		JobBuild:     a.buildJob,
		JobRemediate: a.remediateJob,
	}, jobs.Options{Owner: a.owner, Workers: cfg.Workers, Lease: cfg.JobLease, Logger: log.With("component", "jobs"), OnFinish: metrics.ObserveJob})

	if a.reg != nil {
		// The promoter (and admission's signature checks) reach the
		// embedded registry in process: the promoter is the one client
		// that may move environment tags.
		a.remote = []remote.Option{
			remote.WithAuthFromKeychain(authn.DefaultKeychain),
			remote.WithTransport(registry.Route(registry.LocalNames(regHost), a.reg.Transport(), source.NewTransport(source.Timeouts{}))),
		}
	}
	if len(cfg.File.Environments) > 0 {
		popts := promote.Options{
			NameOpts: remoteOpts.NameOptions(), Logger: log.With("component", "promote"), Remote: a.remote,
			Ensure: func(ctx context.Context, ref name.Digest) error { return sc.EnsureIndexed(ctx, a.st, ref, remoteOpts) },
		}
		if a.promoter, err = promote.New(cfg.File, a.st, popts); err != nil {
			return err
		}
		a.promoter.Pause = cfg.PromotionPause
	}
	if a.checkpoints, err = checkpointer(cfg, a.st, remoteOpts, log); err != nil {
		return err
	}
	if a.remote == nil {
		a.remote = remoteOpts.RemoteOptions(context.Background())
	}
	if err := a.buildClusters(ctx, metrics); err != nil {
		return err
	}
	deps := Deps{
		Store: a.st, Scans: a.watcher, Auth: authr, Metrics: metrics, Logger: log.With("component", "server"),
		Version: sbom.ToolVersion, AuthConfig: cfg.File.Auth, Promoter: a.promoter,
		GCGrace: cfg.File.Registry.GCGrace.Duration, Checkpoints: a.checkpoints, Environments: cfg.File.Environments,
		Through: cfg.File.Remediation.Promote.Through,
	}
	if a.admission != nil {
		deps.Promoted = a.admission
	}
	deps.Work, deps.Importer = a, a.scanner
	if a.reg != nil {
		deps.Registry = a.reg
	}
	api, err := NewAPI(deps)
	if err != nil {
		return err
	}
	a.api = api
	if a.apiLn, err = net.Listen("tcp", cfg.Addr); err != nil {
		return fmt.Errorf("API address %s: %w", cfg.Addr, err)
	}
	if a.tls != nil {
		a.apiLn = tls.NewListener(a.apiLn, a.tls)
		if a.regLn != nil {
			a.regLn = tls.NewListener(a.regLn, a.tls)
		}
	}
	a.apiSrv = &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: 5 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 1 << 20}
	if a.regLn != nil {
		// No whole-request read timeout for the registry: a large blob may
		// take long. Its uploads time out when they stall instead.
		a.regSrv = &http.Server{Handler: a.reg, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 1 << 20}
	}
	a.watches = cfg.File.Watch
	if cfg.ExternalRegistry != "" && len(a.watches) == 0 {
		if a.watches, err = watch.CatalogWatches(ctx, cfg.ExternalRegistry, remoteOpts); err != nil {
			log.Warn("listing the external registry's catalog", "registry", cfg.ExternalRegistry, "err", err)
		}
	}
	return nil
}

// openRegistry makes the embedded registry, whose pushes become scan
// jobs through the watcher; beyond loopback it requires tokens.
func (a *App) openRegistry(authr *auth.Authenticator) error {
	dir := filepath.Join(a.cfg.DataDir, "registry")
	secret, err := registry.PromoterSecret(dir)
	if err != nil {
		return err
	}
	rc := a.cfg.File.Registry
	ropts := registry.Options{
		Dir:    dir,
		Logger: a.log.With("component", "registry"),
		OnEvent: func(ctx context.Context, ev registry.Event) error {
			if err := a.watcher.OnRegistryEvent(ctx, ev); err != nil {
				return err
			}
			return auditRegistryDelete(ctx, a.st, ev)
		},
		PromoterSecret: secret,
		Protected:      promote.ProtectedTags(a.cfg.File.Environments),
		Immutable:      registry.ImmutableBy(immutableRules(rc.ImmutableTags)),
		MaxBlobSize:    rc.MaxBlobSize,
		UploadTimeout:  rc.UploadTimeout.Duration,
	}
	if !isLoopback(a.cfg.RegistryAddr) {
		ropts.Authorizer = RegistryAuthorizer{Auth: authr}
	}
	if a.reg, err = registry.New(ropts); err != nil {
		return err
	}
	if a.regLn, err = net.Listen("tcp", a.cfg.RegistryAddr); err != nil {
		return fmt.Errorf("registry address %s: %w", a.cfg.RegistryAddr, err)
	}
	return nil
}

// Run serves and runs the background loops until ctx ends, a listener
// fails or Shutdown is called; then it stops taking work, lets running
// jobs finish within the grace period, and returns.
func (a *App) Run(ctx context.Context) error {
	defer close(a.done)
	// Before the listeners answer: what the first questions would
	// otherwise wait for (or compete with, on a small machine).
	stale := a.imagesToCheck(ctx)
	a.warm(ctx)
	serveErr := make(chan error, 3)
	go func() { serveErr <- ignoreClosed(a.apiSrv.Serve(a.apiLn)) }()
	if a.regSrv != nil {
		go func() { serveErr <- ignoreClosed(a.regSrv.Serve(a.regLn)) }()
	}
	claimCtx, stopClaiming := context.WithCancel(context.WithoutCancel(ctx))
	hardStop, kill := context.WithCancel(context.WithoutCancel(ctx))
	defer kill()
	runnerDone := make(chan struct{})
	go func() { a.runner.Run(claimCtx, hardStop); close(runnerDone) }()
	if _, err := a.watcher.Reconcile(ctx); err != nil {
		a.log.Error("reconciling the embedded registry", "err", err)
	}
	loops, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	a.watcher.RunPolls(loops, a.watches)
	feeds.Schedule(loops, a.st, a.cfg.File.Feeds, a.runner.Wake, a.log.With("component", "feeds"))
	if a.promoter != nil {
		go a.promoter.ReconcileEvery(loops, 30*time.Second)
	}
	a.runClusters(loops, serveErr)
	if every := a.cfg.File.Audit.Interval.Duration; every >= 0 {
		go a.checkpoints.Every(loops, cmp.Or(every, time.Hour))
	}
	if a.kevAlert != nil {
		go a.alertKEVEvery(loops, time.Minute)
	}
	go a.recheckImages(loops, stale)
	a.banner()

	var err error
	select {
	case <-ctx.Done():
	case <-a.stop:
	case err = <-serveErr:
		if err != nil {
			a.log.Error("a listener failed", "err", err)
		}
	}
	a.log.Info("shutting down: no new jobs; running ones may finish", "grace", a.cfg.ShutdownGrace)
	stopLoops()
	stopClaiming()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = a.apiSrv.Shutdown(shutCtx)
	if a.regSrv != nil {
		_ = a.regSrv.Shutdown(shutCtx)
	}
	if a.admSrv != nil {
		_ = a.admSrv.Shutdown(shutCtx)
	}
	select {
	case <-runnerDone:
	case <-time.After(a.cfg.ShutdownGrace):
		a.log.Warn("jobs still running after the grace period; they resume after restart")
		kill()
		<-runnerDone
	}
	if a.reg != nil {
		a.reg.Close()
	}
	a.log.Info("stopped")
	return err
}

// Shutdown asks Run to stop and waits until it has, or until ctx ends.
func (a *App) Shutdown(ctx context.Context) error {
	a.stopOnce.Do(func() { close(a.stop) })
	select {
	case <-a.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// closeListeners releases what New opened when it fails half-way.
func (a *App) closeListeners() {
	for _, ln := range []net.Listener{a.apiLn, a.regLn, a.admLn} {
		if ln != nil {
			ln.Close()
		}
	}
}

// banner prints where socle listens and what it runs with.
func (a *App) banner() {
	w, scheme := a.cfg.Out, "http"
	if a.tls != nil {
		scheme = "https"
	}
	fmt.Fprintf(w, "socle %s serving\n", sbom.ToolVersion)
	if a.regLn != nil {
		access := "open on loopback"
		if !isLoopback(a.cfg.RegistryAddr) {
			access = "tokens required"
		}
		fmt.Fprintf(w, "  registry    %s://%s  (%s; data in %s)\n", scheme, shownAddr(a.cfg.RegistryAddr, a.regLn), access, filepath.Join(a.cfg.DataDir, "registry"))
	} else {
		fmt.Fprintf(w, "  registry    %s (external; %d repositories watched)\n", a.cfg.ExternalRegistry, len(a.watches))
	}
	fmt.Fprintf(w, "  dashboard   %s://%s/\n", scheme, shownAddr(a.cfg.Addr, a.apiLn))
	fmt.Fprintf(w, "  api         %s://%s/api/v1  (OpenAPI at /api/v1/openapi.yaml)\n", scheme, shownAddr(a.cfg.Addr, a.apiLn))
	fmt.Fprintf(w, "  database    %s %s\n", a.st.Backend(), a.cfg.StoreLocation)
	fmt.Fprintf(w, "  advisories  %s\n", a.advisoryNote)
	if a.promoter != nil {
		var envs []string
		for _, e := range a.cfg.File.Environments {
			envs = append(envs, e.Name)
		}
		fmt.Fprintf(w, "  promotion   %s\n", strings.Join(envs, " → "))
	}
	if a.admLn != nil {
		fmt.Fprintf(w, "  admission   https://%s  (webhooks: socle admission config --cluster NAME)\n", shownAddr(a.cfg.AdmissionAddr, a.admLn))
	}
	for _, cl := range a.cfg.File.Clusters {
		fmt.Fprintf(w, "  cluster     %s  (%d namespace mappings; pods watched)\n", cl.Name, len(cl.Namespaces))
	}
	if a.tokenNote != "" {
		fmt.Fprintf(w, "  admin token %s\n", a.tokenNote)
	}
	regHost := ""
	if a.regLn != nil {
		regHost = a.regLn.Addr().String()
	}
	a.log.Info("serving", "api", a.apiLn.Addr().String(), "registry", regHost, "owner", a.owner)
}

// autoRemediate returns the hook run after a feed sync that opened
// findings: the catalog's remediation, as socle remediate does it, one
// at a time.
func (a *App) autoRemediate() func(ctx context.Context, r feeds.Result) {
	return func(ctx context.Context, res feeds.Result) {
		if res.Findings.OpenedFixable == 0 {
			return
		}
		// A fix run: the remediation, then the promotions up to
		// remediation.promote.through, every step timed.
		l := &loop.Loop{Store: a.st, Envs: a.cfg.File.Environments, Through: a.cfg.File.Remediation.Promote.Through,
			Notify: notify.FromConfig(a.cfg.File.Webhooks, a.log).Func(), Logger: a.log.With("component", "loop")}
		if a.promoter != nil {
			l.Promoter = a.promoter
		}
		started := time.Now().Add(-time.Duration(res.Seconds * float64(time.Second)))
		run, err := l.Run(ctx, loop.Sync{Feed: res.Feed, Advisories: res.Changed, Started: started, Seconds: res.Seconds},
			func(ctx context.Context, h loop.Hooks) (*remediate.Plan, error) {
				return a.remediateWith(ctx, false, "socle serve (fix run)", h)
			})
		if err != nil {
			a.log.Error("fix run", "err", err)
			return
		}
		a.log.Info("fix run", "run", run.ID, "status", run.Status, "fixed", len(run.Fixed), "detail", run.Detail)
	}
}

// checkpointer signs the audit log's head with socle.yaml's signing key
// (or socle's own key) to the configured sink, by default the
// directory DATA_DIR/audit-checkpoints.
func checkpointer(cfg Config, st store.Store, remoteOpts source.Options, log *slog.Logger) (*audit.Checkpointer, error) {
	signer, _, err := sign.OwnKey(cfg.File.Resolve(cfg.File.Signing.Key), sign.OwnKeyDir(cfg.DataDir))
	if err != nil {
		return nil, err
	}
	sink, err := audit.OpenSink(cmp.Or(cfg.File.Audit.Sink, filepath.Join(cfg.DataDir, "audit-checkpoints")), remoteOpts.RemoteOptions(context.Background()), nil)
	if err != nil {
		return nil, err
	}
	return &audit.Checkpointer{Log: st, Signer: signer, Sink: sink, Logger: log.With("component", "audit")}, nil
}

// auditRegistryDelete records manifest, tag and blob deletes in the
// audit log.
func auditRegistryDelete(ctx context.Context, st store.Audit, ev registry.Event) error {
	if ev.Action != "delete" && ev.Action != "delete-blob" {
		return nil
	}
	subject := ev.Repository + "@" + ev.Digest
	if ev.Tag != "" {
		subject = ev.Repository + ":" + ev.Tag
	}
	details, _ := json.Marshal(map[string]string{"repository": ev.Repository, "tag": ev.Tag, "digest": ev.Digest})
	_, err := st.AppendAudit(ctx, store.AuditEvent{At: ev.At, Actor: cmp.Or(ev.Actor, "registry"), Action: "registry." + ev.Action, Subject: subject, Details: details})
	return err
}

// followedRegistries are the hosts of the registries socle follows
// besides its own: registry.url and those of watch:.
func followedRegistries(cfg Config) []string {
	var out []string
	for _, r := range []string{cfg.ExternalRegistry, cfg.File.Registry.URL} {
		if host, _, _ := strings.Cut(r, "/"); host != "" {
			out = append(out, host)
		}
	}
	for _, w := range cfg.File.Watch {
		host, _, _ := strings.Cut(w.Repository, "/")
		out = append(out, host)
	}
	return out
}

// immutableRules are socle.yaml's immutable tag rules, or the default
// ones when it names none.
func immutableRules(rules *[]config.TagRule) []registry.TagRule {
	if rules == nil {
		return registry.DefaultImmutableTags
	}
	out := make([]registry.TagRule, 0, len(*rules))
	for _, r := range *rules {
		out = append(out, registry.TagRule{Repositories: r.Repositories, Tags: r.Tags})
	}
	return out
}

// shownAddr is where a listener can be reached, as the banner says it:
// the host it was asked for (0.0.0.0 stays 0.0.0.0, not [::]) and the
// port it got.
func shownAddr(configured string, ln net.Listener) string {
	host, _, err := net.SplitHostPort(configured)
	_, port, err2 := net.SplitHostPort(ln.Addr().String())
	if err != nil || err2 != nil || host == "" {
		return ln.Addr().String()
	}
	return net.JoinHostPort(host, port)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// alertKEVEvery looks for known-exploited findings newly in production
// every d, beside after each feed sync: a promotion or a pod can bring
// one there between syncs.
func (a *App) alertKEVEvery(ctx context.Context, d time.Duration) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.kevAlert(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("checking known-exploited findings in production", "err", err)
			}
		}
	}
}

// warmConnections is how many database connections socle serve readies
// before it answers: sequential questions use one or two, a dashboard
// page a few at once.
const warmConnections = 4

// warm readies the store, then the answers, for the first questions
// before the listeners answer: a new server's first image findings took
// 20-57 ms against 3.5 ms at the median of the next 1,000 (new database
// connections, empty caches, a heap still growing; 30,000 images on
// PostgreSQL). The wait counts in the time to ready, bounded.
func (a *App) warm(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	t0 := time.Now()
	if err := a.st.Warm(ctx, warmConnections); err != nil {
		a.log.Warn("readying the store for the first questions", "err", err)
		return
	}
	if err := a.api.warmAnswers(ctx, warmAnswerCount); err != nil {
		a.log.Warn("readying the first answers", "err", err)
		return
	}
	a.log.Debug("ready for the first questions", "took", time.Since(t0))
}

// imagesToCheck lists the images whose last check ran other rules
// (after an upgrade that changed them) or that have none. At 100,000
// images the question reads both tables whole (80-500 ms of the
// database's CPU); asked while the first answers ran, it made the first
// five "affected by" answers of a new server 100-275 ms each.
func (a *App) imagesToCheck(ctx context.Context) []store.ImageCheck {
	stale, err := a.st.ImagesToCheck(ctx, check.RulesVersion(), 1_000_000)
	if err != nil {
		a.log.Warn("listing the images to check again", "err", err)
	}
	return stale
}

// recheckImages queues a check of each of stale, as advisories are
// re-matched when they change.
func (a *App) recheckImages(ctx context.Context, stale []store.ImageCheck) {
	v := check.RulesVersion()
	for _, im := range stale {
		if err := a.watcher.EnqueueCheck(ctx, im.Repository, im.Digest, v); err != nil {
			if ctx.Err() == nil {
				a.log.Warn("queueing an image check", "image", im.Digest, "err", err)
			}
			return
		}
	}
	if len(stale) > 0 {
		a.log.Info("checking images with the current rules", "images", len(stale), "rules", v)
	}
}
