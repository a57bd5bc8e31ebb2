package cli

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/feeds"
	"github.com/socle-dev/socle/internal/jobs"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
	"github.com/socle-dev/socle/internal/watch"
)

type serveOptions struct {
	config           string
	addr             string
	registryAddr     string
	registry         string
	insecureRegistry bool
	workers          int
	tlsCert, tlsKey  string
	tlsSelfSigned    bool
	shutdownGrace    time.Duration
	jobLease         time.Duration
}

func newServeCmd(g *globals) *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the registry, API, dashboard and background scans",
		Long: `Run socle's main job. With no flag it starts, on loopback:

  - an embedded OCI registry storing in DATA_DIR/registry;
  - the API (/api/v1) and the dashboard;
  - SQLite in DATA_DIR/socle.db (or PostgreSQL with --database postgres://...).

Every image pushed to the embedded registry, or listed under watch: in
socle.yaml, is inventoried and scanned in the background. The first start
writes an admin token to DATA_DIR/admin-token.`,
		Example: `  socle serve
  socle serve --addr 0.0.0.0:8080 --tls-cert cert.pem --tls-key key.pem
  socle serve --registry harbor.example/project --database postgres://socle@db/socle`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.config, "config", "", "socle.yaml to read (default ./socle.yaml, then DATA_DIR/socle.yaml, when present)")
	f.StringVar(&o.addr, "addr", "", "API and dashboard address (default 127.0.0.1:8080)")
	f.StringVar(&o.registryAddr, "registry-addr", "", "embedded registry address (default 127.0.0.1:5050); beyond loopback it requires tokens")
	f.StringVar(&o.registry, "registry", "", "use this existing registry (host[/prefix]) instead of the embedded one; credentials come from the docker config")
	f.BoolVar(&o.insecureRegistry, "insecure-registry", false, "reach --registry over plain HTTP (unsafe)")
	f.IntVar(&o.workers, "workers", 0, "background jobs run at once (default 2)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate (PEM) for both listeners")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS private key (PEM)")
	f.BoolVar(&o.tlsSelfSigned, "tls-self-signed", false, "serve HTTPS with a self-signed certificate for loopback, kept in DATA_DIR/tls")
	f.DurationVar(&o.shutdownGrace, "shutdown-grace", 30*time.Second, "how long running jobs may take to finish on shutdown")
	f.DurationVar(&o.jobLease, "job-lease", 30*time.Second, "how long a crashed server's running job waits before another server (or the same one restarted) takes it over")
	return cmd
}

// loadConfig reads socle.yaml from the flag, the working directory or the
// data directory; a missing default file is no error.
func loadConfig(g *globals, path string) (*config.File, error) {
	if path != "" {
		return config.Load(path)
	}
	for _, p := range []string{"socle.yaml", filepath.Join(g.dataDir, "socle.yaml")} {
		if _, err := os.Stat(p); err == nil {
			return config.Load(p)
		}
	}
	return config.Parse("(defaults)", nil)
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

func runServe(ctx context.Context, g *globals, o *serveOptions) error {
	cfg, err := loadConfig(g, o.config)
	if err != nil {
		return err
	}
	addr := cmp.Or(o.addr, cfg.Server.Addr, "127.0.0.1:8080")
	regAddr := cmp.Or(o.registryAddr, cfg.Server.RegistryAddr, "127.0.0.1:5050")
	external := cmp.Or(o.registry, cfg.Registry.URL)
	workers := o.workers
	if workers == 0 {
		workers = cfg.Server.Workers
	}
	tlsCert, tlsKey := cmp.Or(o.tlsCert, cfg.Server.TLS.Cert), cmp.Or(o.tlsKey, cfg.Server.TLS.Key)
	selfSigned := o.tlsSelfSigned || cfg.Server.TLS.SelfSigned
	if (tlsCert == "") != (tlsKey == "") {
		return usageError(errors.New("--tls-cert and --tls-key go together"))
	}
	if err := os.MkdirAll(g.dataDir, 0o700); err != nil {
		return err
	}
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	log := g.logger

	advisories, err := st.AdvisoryCount(ctx)
	if err != nil {
		return err
	}
	advisoryNote := fmt.Sprintf("%d records", advisories)
	if advisories == 0 {
		stats, err := vuln.ImportBundled(ctx, st)
		if err != nil {
			return fmt.Errorf("loading the bundled sample advisories: %w", err)
		}
		advisoryNote = fmt.Sprintf("bundled SAMPLE only (%d records): import real feeds with `socle db import`", stats.Records)
	}
	tokenNote, err := bootstrapAdminToken(ctx, g, st)
	if err != nil {
		return err
	}

	hostname, _ := os.Hostname()
	owner := fmt.Sprintf("%s-%d-%s", hostname, os.Getpid(), randomSuffix())
	an, err := sbom.NewAnalyzer(sbom.WithTempDir(os.TempDir()))
	if err != nil {
		return err
	}
	sc := scan.New(st, an, scan.WithOwner(owner), scan.WithClaimLease(o.jobLease), scan.WithLogger(log))
	authn := auth.NewAuthenticator(st)
	remoteOpts := source.Options{InsecureRegistryUnsafe: o.insecureRegistry || cfg.Registry.InsecureUnsafe}

	var tlsConf *tls.Config
	switch {
	case tlsCert != "":
		c, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
		if err != nil {
			return fmt.Errorf("loading the TLS certificate: %w", err)
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
	case selfSigned:
		c, err := selfSignedCert(filepath.Join(g.dataDir, "tls"))
		if err != nil {
			return err
		}
		tlsConf = &tls.Config{Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}
	}

	// The embedded registry, unless an external one is used.
	var reg *registry.Registry
	var regLn net.Listener
	var watcher *watch.Watcher
	if external == "" {
		ropts := registry.Options{
			Dir:    filepath.Join(g.dataDir, "registry"),
			Logger: log.With("component", "registry"),
			OnEvent: func(ctx context.Context, ev registry.Event) error {
				return watcher.OnRegistryEvent(ctx, ev)
			},
		}
		if !isLoopback(regAddr) {
			ropts.Authorizer = server.RegistryAuthorizer{Auth: authn}
		}
		if reg, err = registry.New(ropts); err != nil {
			return err
		}
		if regLn, err = net.Listen("tcp", regAddr); err != nil {
			return fmt.Errorf("registry address %s: %w", regAddr, err)
		}
	}
	runner := (*jobs.Runner)(nil)
	regHost := ""
	if regLn != nil {
		regHost = regLn.Addr().String()
	}
	watcher = watch.New(st, sc, watch.Options{
		Embedded: reg, EmbeddedHost: regHost, Remote: remoteOpts, Logger: log.With("component", "watch"),
		Wake: func() {
			if runner != nil {
				runner.Wake()
			}
		},
	})
	metrics := server.NewMetrics(st)
	syncer, err := newSyncer(g, st)
	if err != nil {
		return err
	}
	syncer.Logger = log.With("component", "feeds")
	syncer.Notify = notifier(g, cfg).Func()
	if cfg.Remediation.Auto && len(cfg.Images) > 0 {
		syncer.After = autoRemediate(g, cfg, st, cmp.Or(external, regHost), log)
	}
	syncJob := syncer.Job(cfg.Feeds)
	runner = jobs.NewRunner(st, map[string]jobs.Handler{
		watch.KindScan: watcher.HandleScan,
		feeds.JobKind: func(ctx context.Context, j *store.Job, p jobs.Progress) error {
			return syncJob(ctx, j, p)
		},
	}, jobs.Options{Owner: owner, Workers: workers, Lease: o.jobLease, Logger: log.With("component", "jobs"), OnFinish: metrics.ObserveJob})

	var promoter *promote.Promoter
	if len(cfg.Environments) > 0 {
		if promoter, err = newPromoter(g, cfg, st, remoteOpts); err != nil {
			return err
		}
		promoter.Logger = log.With("component", "promote")
	}
	srv, err := server.New(server.Deps{
		Store: st, Scans: watcher, Auth: authn, Metrics: metrics, Logger: log.With("component", "server"),
		Version: sbom.ToolVersion, SecureCookies: tlsConf != nil, Promoter: promoter,
	})
	if err != nil {
		return err
	}
	apiLn, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("API address %s: %w", addr, err)
	}
	scheme := "http"
	if tlsConf != nil {
		scheme = "https"
		apiLn = tls.NewListener(apiLn, tlsConf)
		if regLn != nil {
			regLn = tls.NewListener(regLn, tlsConf)
		}
	}
	apiSrv := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	var regSrv *http.Server
	serveErr := make(chan error, 2)
	go func() { serveErr <- ignoreClosed(apiSrv.Serve(apiLn)) }()
	if regLn != nil {
		regSrv = &http.Server{Handler: reg, ReadHeaderTimeout: 10 * time.Second}
		go func() { serveErr <- ignoreClosed(regSrv.Serve(regLn)) }()
	}

	claimCtx, stopClaiming := context.WithCancel(context.WithoutCancel(ctx))
	hardStop, kill := context.WithCancel(context.WithoutCancel(ctx))
	defer kill()
	runnerDone := make(chan struct{})
	go func() { runner.Run(claimCtx, hardStop); close(runnerDone) }()
	if _, err := watcher.Reconcile(ctx); err != nil {
		log.Error("reconciling the embedded registry", "err", err)
	}
	pollCtx, stopPolls := context.WithCancel(ctx)
	defer stopPolls()
	watches := cfg.Watch
	if external != "" && len(watches) == 0 {
		if watches, err = catalogWatches(ctx, external, remoteOpts); err != nil {
			log.Warn("listing the external registry's catalog", "registry", external, "err", err)
		}
	}
	watcher.RunPolls(pollCtx, watches)
	if syncer != nil && len(cfg.Feeds) > 0 {
		// Each feed's sync is a job: replicas sharing the store claim it,
		// so one of them syncs a feed at a time, with progress on the Jobs
		// page.
		for _, f := range cfg.Feeds {
			go func(f config.Feed) {
				payload, _ := json.Marshal(feeds.JobPayload{Feed: f.Name})
				t := time.NewTicker(f.SyncInterval())
				defer t.Stop()
				for {
					if _, _, err := st.EnqueueJob(pollCtx, feeds.JobKind, "feed:"+f.Name, payload); err != nil && pollCtx.Err() == nil {
						log.Warn("queueing a feed sync", "feed", f.Name, "err", err)
					}
					runner.Wake()
					select {
					case <-pollCtx.Done():
						return
					case <-t.C:
					}
				}
			}(f)
		}
	}
	if promoter != nil {
		// Settle promotions an interrupted process left moving.
		go func() {
			t := time.NewTicker(30 * time.Second)
			defer t.Stop()
			for {
				if _, _, err := promoter.Reconcile(pollCtx, staleMoving); err != nil && pollCtx.Err() == nil {
					log.Warn("reconciling promotions", "err", err)
				}
				select {
				case <-pollCtx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}

	fmt.Fprintf(g.out, "socle %s serving\n", sbom.ToolVersion)
	if regLn != nil {
		access := "open on loopback"
		if !isLoopback(regAddr) {
			access = "tokens required"
		}
		fmt.Fprintf(g.out, "  registry    %s://%s  (%s; data in %s)\n", scheme, regLn.Addr(), access, filepath.Join(g.dataDir, "registry"))
	} else {
		fmt.Fprintf(g.out, "  registry    %s (external; %d repositories watched)\n", external, len(watches))
	}
	fmt.Fprintf(g.out, "  dashboard   %s://%s/\n", scheme, apiLn.Addr())
	fmt.Fprintf(g.out, "  api         %s://%s/api/v1  (OpenAPI at /api/v1/openapi.yaml)\n", scheme, apiLn.Addr())
	fmt.Fprintf(g.out, "  database    %s %s\n", st.Backend(), g.storeLocation())
	fmt.Fprintf(g.out, "  advisories  %s\n", advisoryNote)
	if promoter != nil {
		var envs []string
		for _, e := range cfg.Environments {
			envs = append(envs, e.Name)
		}
		fmt.Fprintf(g.out, "  promotion   %s\n", strings.Join(envs, " → "))
	}
	if tokenNote != "" {
		fmt.Fprintf(g.out, "  admin token %s\n", tokenNote)
	}
	log.Info("serving", "api", apiLn.Addr().String(), "registry", regHost, "owner", owner)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if err != nil {
			log.Error("a listener failed", "err", err)
		}
	}
	log.Info("shutting down: no new jobs; running ones may finish", "grace", o.shutdownGrace)
	stopPolls()
	stopClaiming()
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = apiSrv.Shutdown(shutCtx)
	if regSrv != nil {
		_ = regSrv.Shutdown(shutCtx)
	}
	select {
	case <-runnerDone:
	case <-time.After(o.shutdownGrace):
		log.Warn("jobs still running after the grace period; they resume after restart")
		kill()
		<-runnerDone
	}
	log.Info("stopped")
	return nil
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// autoRemediate returns the hook socle serve runs after a feed sync that
// opened findings: the catalog's remediation, as socle remediate does it.
func autoRemediate(g *globals, cfg *config.File, st store.Store, registry string, log *slog.Logger) func(ctx context.Context, r feeds.Result) {
	var mu sync.Mutex
	return func(ctx context.Context, res feeds.Result) {
		if res.Findings.Opened == 0 {
			return
		}
		mu.Lock() // one remediation at a time
		defer mu.Unlock()
		c, err := catalog.New(cfg)
		if err != nil {
			log.Error("auto-remediation: the catalog", "err", err)
			return
		}
		o := catalogOptions{registry: registry}
		r, err := newRemediator(g, cfg, c, st, o.target(cfg))
		if err != nil {
			log.Error("auto-remediation", "err", err)
			return
		}
		r.By = "socle serve (auto-remediation)"
		plan, err := r.Plan(ctx)
		if err == nil {
			err = r.Apply(ctx, plan, false)
		}
		if err != nil {
			log.Error("auto-remediation", "err", err)
			return
		}
		for _, a := range plan.Actions {
			log.Info("auto-remediation", "image", a.Image, "strategy", a.Strategy, "status", a.Status, "to", a.To, "fixed", len(a.Fixed))
		}
	}
}

// bootstrapAdminToken makes the first admin token when there is none, and
// writes it to a file only the user can read: never to a log.
func bootstrapAdminToken(ctx context.Context, g *globals, st store.Store) (string, error) {
	toks, err := st.ListTokens(ctx)
	if err != nil {
		return "", err
	}
	path := filepath.Join(g.dataDir, "admin-token")
	if len(toks) > 0 {
		if _, err := os.Stat(path); err == nil {
			return "in " + path, nil
		}
		return "", nil
	}
	secret, _, err := auth.Create(ctx, st, "bootstrap admin", store.RoleAdmin, 0, time.Now())
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return "written to " + path + " (make more with socle token create)", nil
}

// catalogWatches follows every repository an external registry lists.
func catalogWatches(ctx context.Context, reg string, o source.Options) ([]config.Watch, error) {
	host, prefix, _ := strings.Cut(reg, "/")
	r, err := name.NewRegistry(host, o.NameOptions()...)
	if err != nil {
		return nil, err
	}
	repos, err := remote.Catalog(ctx, r, o.RemoteOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	var out []config.Watch
	for _, repo := range repos {
		if prefix != "" && repo != prefix && !strings.HasPrefix(repo, prefix+"/") {
			continue
		}
		out = append(out, config.Watch{Repository: host + "/" + repo})
	}
	return out, nil
}

// selfSignedCert loads or makes a certificate for localhost, 127.0.0.1
// and ::1, kept in dir.
func selfSignedCert(dir string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil && time.Now().Before(leaf.NotAfter.Add(-24*time.Hour)) {
			return c, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "socle (self-signed, loopback)"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}
