package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/postgres"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/vuln"
)

// globals are the flags every command shares.
type globals struct {
	dataDir   string
	database  string
	logLevel  string
	logFormat string
	// local opens the database even when a server is configured.
	local  bool
	out    io.Writer
	errOut io.Writer
	logger *slog.Logger
}

// NewRoot returns the socle command with every subcommand.
func NewRoot(out, errOut io.Writer) *cobra.Command {
	g := &globals{out: out, errOut: errOut}
	root := &cobra.Command{
		Use:   "socle",
		Short: "Keep every container image patched, signed and promotable",
		Long: `socle keeps a platform's images patched, signed and promotable, from the trusted
base image to production: it inventories every layer, watches advisories,
rebuilds or rebases what a fix reaches, promotes digests through gated
environments and enforces it all at admission.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.setup()
		},
	}
	root.SetOut(out)
	root.SetErr(errOut)
	f := root.PersistentFlags()
	f.StringVar(&g.dataDir, "data-dir", defaultDataDir(), "where socle keeps its database, registry and caches (env SOCLE_DATA_DIR)")
	f.StringVar(&g.database, "database", os.Getenv("SOCLE_DATABASE"), "database: a postgres:// URL, or a SQLite file path (default DATA_DIR/socle.db) (env SOCLE_DATABASE)")
	f.StringVar(&g.logLevel, "log-level", envOr("SOCLE_LOG_LEVEL", "warn"), "log level: debug, info, warn, error")
	f.StringVar(&g.logFormat, "log-format", envOr("SOCLE_LOG_FORMAT", "text"), "log format: text or json")
	f.BoolVar(&g.local, "local", false, "open the database of DATA_DIR (or --database) directly, even when a server is configured: for the host of socle serve")
	root.AddCommand(
		newScanCmd(g),
		newCheckCmd(g),
		newLayersCmd(g),
		newSBOMCmd(g),
		newDBCmd(g),
		newServeCmd(g),
		newTokenCmd(g),
		newJobsCmd(g),
		newCatalogCmd(g),
		newAssembleCmd(g),
		newPlanCmd(g),
		newBuildCmd(g),
		newLineageCmd(g),
		newPromoteCmd(g),
		newApproveCmd(g),
		newRollbackCmd(g),
		newHistoryCmd(g),
		newDriftCmd(g),
		newKeyCmd(g),
		newSignCmd(g),
		newAttestCmd(g),
		newVerifyProvenanceCmd(g),
		newAuditCmd(g),
		newRemediateCmd(g),
		newExposureCmd(g),
		newVEXCmd(g),
		newRegistryCmd(g),
		newAdmissionCmd(g),
		newRunningCmd(g),
		newLoginCmd(g),
		newImagesCmd(g),
		newAffectedCmd(g),
		newLogoutCmd(g),
		newContextCmd(g),
		newVersionCmd(g),
	)
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// defaultDataDir follows the XDG base directory convention.
func defaultDataDir() string {
	if d := os.Getenv("SOCLE_DATA_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "socle")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "socle")
	}
	return filepath.Join(os.TempDir(), "socle")
}

func (g *globals) setup() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return usageError(fmt.Errorf("--log-level: %w", err))
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redactAttr}
	switch g.logFormat {
	case "text":
		g.logger = slog.New(slog.NewTextHandler(g.errOut, opts))
	case "json":
		g.logger = slog.New(slog.NewJSONHandler(g.errOut, opts))
	default:
		return usageError(fmt.Errorf("--log-format %q: want text or json", g.logFormat))
	}
	sbom.SetExtractorLogger(g.logger)
	return nil
}

// redactAttr keeps secrets out of logs: any attribute whose key names a
// credential is replaced, and URLs lose their passwords.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	k := strings.ToLower(a.Key)
	for _, s := range []string{"token", "password", "passwd", "secret", "authorization", "credential", "private_key", "api_key"} {
		if strings.Contains(k, s) && !strings.HasSuffix(k, "_id") {
			return slog.String(a.Key, "[redacted]")
		}
	}
	if a.Value.Kind() == slog.KindString {
		if v := a.Value.String(); strings.Contains(v, "://") && strings.Contains(v, "@") {
			return slog.String(a.Key, RedactURL(v))
		}
	}
	return a
}

// RedactURL removes the password of a URL such as a database address.
func RedactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok || strings.Contains(userinfo, "/") {
		return s
	}
	user, _, hasPass := strings.Cut(userinfo, ":")
	if !hasPass {
		return s
	}
	return scheme + "://" + user + ":[redacted]@" + host
}

// withStore runs fn with the store open, and closes it after.
func (g *globals) withStore(ctx context.Context, fn func(st store.Store) error) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// openStore opens the configured store: PostgreSQL for a postgres://
// URL, else SQLite (DATA_DIR/socle.db by default).
func (g *globals) openStore(ctx context.Context) (store.Store, error) {
	db := g.database
	switch {
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return postgres.Open(ctx, db)
	case db == "":
		return sqlite.Open(ctx, filepath.Join(g.dataDir, "socle.db"))
	default:
		return sqlite.Open(ctx, strings.TrimPrefix(db, "sqlite://"))
	}
}

// configFlag is --config of every command that reads socle.yaml.
func configFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "config", "", "socle.yaml (default ./socle.yaml, then DATA_DIR/socle.yaml)")
}

// insecureFlag is --insecure-registry.
func insecureFlag(f *pflag.FlagSet, p *bool) {
	f.BoolVar(p, "insecure-registry", false, "allow plain HTTP to a non-loopback registry (unsafe)")
}

// newScanner returns the scanner of the command line commands: the
// default analyzer, the store's layer cache and the command's logger.
func newScanner(g *globals, st store.Store) (*scan.Scanner, error) {
	return scan.NewWithAnalyzer(st, scan.WithLogger(g.logger), scan.WithVEX(vuln.NewStoredVEX(st).Hook))
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
