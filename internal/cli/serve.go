package cli

import (
	"cmp"
	"context"
	"errors"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/server"
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
	admissionAddr    string
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
	f.StringVar(&o.admissionAddr, "admission-addr", "", "serve the Kubernetes admission webhooks over TLS on this address (default admission.addr; none when empty)")
	f.DurationVar(&o.jobLease, "job-lease", 30*time.Second, "how long a crashed server's running job waits before another server (or the same one restarted) takes it over")
	return cmd
}

func runServe(ctx context.Context, g *globals, o *serveOptions) error {
	cfg, err := loadConfig(g, o.config)
	if err != nil {
		return err
	}
	if (cmp.Or(o.tlsCert, cfg.Server.TLS.Cert) == "") != (cmp.Or(o.tlsKey, cfg.Server.TLS.Key) == "") {
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
	app, err := server.New(ctx, server.Config{
		File: cfg, Store: st, StoreLocation: g.storeLocation(), DataDir: g.dataDir,
		Addr:                   cmp.Or(o.addr, cfg.Server.Addr),
		RegistryAddr:           cmp.Or(o.registryAddr, cfg.Server.RegistryAddr),
		ExternalRegistry:       cmp.Or(o.registry, cfg.Registry.URL),
		InsecureRegistryUnsafe: o.insecureRegistry,
		Workers:                cmp.Or(o.workers, cfg.Server.Workers),
		TLSCert:                cmp.Or(o.tlsCert, cfg.Server.TLS.Cert),
		TLSKey:                 cmp.Or(o.tlsKey, cfg.Server.TLS.Key),
		TLSSelfSigned:          o.tlsSelfSigned || cfg.Server.TLS.SelfSigned,
		ShutdownGrace:          o.shutdownGrace,
		JobLease:               o.jobLease,
		Logger:                 g.logger,
		Out:                    g.out,
		PromotionPause:         promotionPause(g),
		AdmissionAddr:          cmp.Or(o.admissionAddr, cfg.Admission.Addr),
	})
	if err != nil {
		return err
	}
	return app.Run(ctx)
}
