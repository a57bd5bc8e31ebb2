package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

func newDBCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Manage the local advisory store",
	}
	cmd.AddCommand(newDBImportCmd(g), newDBStatusCmd(g), newDBSyncCmd(g))
	return cmd
}

type dbImportOptions struct {
	source string
}

func newDBImportCmd(g *globals) *cobra.Command {
	o := &dbImportOptions{}
	cmd := &cobra.Command{
		Use:   "import PATH...",
		Short: "Load advisories from OSV files, zips, tarballs, directories or Alpine secdb",
		Long: `Load advisories into the local store. Each PATH may be:

  - an OSV record in JSON or YAML, or a JSON array of records;
  - a zip of records, as osv.dev exports each ecosystem (all.zip);
  - a .tar.gz of records, or a directory holding any of these;
  - an Alpine secdb document (the YAML/JSON Alpine publishes per branch, or
    one package per file as vuln-list keeps it): each secfixes entry becomes
    a record with its fixed version.

Records already stored with the same content are left alone; stored images
holding a package a changed record names are matched again, without
reading any layer.`,
		Example: `  socle db import all.zip
  socle db import --source golang-vulndb golang-vulndb-data-osv.tar.gz
  socle db import alpine-secdb/v3.10/main.yaml`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDBImport(cmd.Context(), g, o, args)
		},
	}
	cmd.Flags().StringVar(&o.source, "source", "", "name recorded as the records' source (default: the file or directory name)")
	return cmd
}

func runDBImport(ctx context.Context, g *globals, o *dbImportOptions, paths []string) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	for _, p := range paths {
		src := o.source
		if src == "" {
			src = filepath.Base(filepath.Clean(p))
		}
		im := vuln.NewImporter(st, src)
		if err := im.ImportPath(ctx, p); err != nil {
			return err
		}
		stats, err := im.Finish(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		feed := store.Feed{Name: src, Kind: "file", URL: p, Records: stats.Records, LastAttempt: now, LastSuccess: now}
		if err := st.PutFeed(ctx, feed); err != nil {
			return err
		}
		fmt.Fprintf(g.out, "%s: %d records from %d files: %d added, %d updated, %d unchanged",
			p, stats.Records, stats.Files, stats.Added, stats.Updated, stats.Unchanged)
		if stats.Skipped > 0 {
			fmt.Fprintf(g.out, ", %d skipped", stats.Skipped)
		}
		fmt.Fprintln(g.out)
		for _, e := range stats.Errors {
			fmt.Fprintf(g.errOut, "  skipped: %s\n", e)
		}
		if stats.Skipped > len(stats.Errors) {
			fmt.Fprintf(g.errOut, "  ... and %d more\n", stats.Skipped-len(stats.Errors))
		}
		if e := stats.Enrichment(); e != "" {
			fmt.Fprintf(g.out, "  %s\n", e)
		}
		if !stats.Found() {
			return fmt.Errorf("%s: no advisory found (expected OSV JSON/YAML, a zip or tarball of them, Alpine secdb, a Debian tracker export, NVD records, the KEV catalog, EPSS CSV, or OpenVEX/CSAF)", p)
		}
		if stats.VEX > 0 {
			res, err := vuln.NewStoredVEX(st).Apply(ctx, nil)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "  VEX: closed %d findings in %d images\n", res.Closed, res.Images)
		}
		if len(stats.Packages) > 0 {
			sc, err := newScanner(g, st)
			if err != nil {
				return err
			}
			re, err := sc.Reevaluate(ctx, st, stats.Packages)
			if err != nil {
				return err
			}
			if re.Versions > 0 {
				fmt.Fprintf(g.out, "  re-evaluated %d stored package versions\n", re.Versions)
			}
		}
	}
	g.logger.Info("import finished", "duration", time.Since(start))
	return nil
}

func newDBStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the advisories loaded, by ecosystem, and where they came from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDBStatus(cmd.Context(), g)
		},
	}
}

func runDBStatus(ctx context.Context, g *globals) error {
	c, err := g.remote()
	if err != nil {
		return err
	}
	if c != nil {
		return remoteDBStatus(ctx, g, c)
	}
	st, err := g.sharedStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	stats, err := st.AdvisoryStats(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "Store: %s (%s)\n\n", st.Backend(), g.storeLocation())
	if len(stats) == 0 {
		fmt.Fprintln(g.out, "No advisories are loaded. `socle scan` will load the small bundled sample;")
		fmt.Fprintln(g.out, "import real data with `socle db import PATH` (OSV JSON, osv.dev zips, Alpine secdb).")
	} else {
		tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ECOSYSTEM\tRECORDS\tWITHDRAWN\tNEWEST MODIFIED\tSOURCES")
		sample := false
		for _, s := range stats {
			newest := "-"
			if !s.NewestModified.IsZero() {
				newest = s.NewestModified.UTC().Format(time.RFC3339)
			}
			for _, src := range s.Sources {
				sample = sample || src == vuln.BundledSource
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", s.Ecosystem, s.Records, s.Withdrawn, newest, strings.Join(s.Sources, ", "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if sample {
			fmt.Fprintf(g.out, "\n%q is the small sample embedded in socle, not a database.\n", vuln.BundledSource)
		}
	}
	feeds, err := st.Feeds(ctx)
	if err != nil {
		return err
	}
	if len(feeds) > 0 {
		fmt.Fprintln(g.out, "\nSources:")
		tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tRECORDS\tLAST SUCCESS\tLAST ERROR\tFROM")
		for _, f := range feeds {
			ok := "-"
			if !f.LastSuccess.IsZero() {
				ok = f.LastSuccess.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", f.Name, f.Kind, f.Records, ok, orNone(f.LastError), f.URL)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	imgs, err := st.ImageCount(ctx)
	if err != nil {
		return err
	}
	layers, err := st.LayerCount(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out, "\nImages indexed: %d   Layers cached: %d\n", imgs, layers)
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (g *globals) storeLocation() string {
	if g.database != "" {
		return RedactURL(g.database)
	}
	return filepath.Join(g.dataDir, "socle.db")
}

// remoteDBStatus prints the server's advisories and feeds.
func remoteDBStatus(ctx context.Context, g *globals, c *client.Client) error {
	var body struct {
		Ecosystems []store.EcosystemStat `json:"ecosystems"`
		Feeds      []struct {
			Name, Kind, URL string
			Records         int
			LastSuccess     time.Time `json:"last_success"`
			LastError       string    `json:"last_error"`
		} `json:"feeds"`
	}
	if err := c.Do(ctx, "GET", "/api/v1/advisories", nil, &body); err != nil {
		return err
	}
	fmt.Fprintf(g.out, "Server: %s\n\n", c.Server())
	tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ECOSYSTEM\tRECORDS\tWITHDRAWN\tSOURCES")
	for _, e := range body.Ecosystems {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", e.Ecosystem, e.Records, e.Withdrawn, strings.Join(e.Sources, ", "))
	}
	tw.Flush()
	if len(body.Feeds) > 0 {
		fmt.Fprintln(g.out, "\nSources:")
		tw = tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tKIND\tRECORDS\tLAST SUCCESS\tLAST ERROR\tFROM")
		for _, f := range body.Feeds {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", f.Name, f.Kind, f.Records, fmtTime(f.LastSuccess), orNone(f.LastError), f.URL)
		}
		tw.Flush()
	}
	return nil
}
