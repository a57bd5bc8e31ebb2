package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"text/tabwriter"

	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
	"github.com/spf13/cobra"
)

func newBuildCmd(g *globals) *cobra.Command {
	o := &planOptions{}
	var jobs int
	cmd := &cobra.Command{
		Use:   "build [NAMES...]",
		Short: "Build the plan: parents first, independent images in parallel",
		Long: `build executes socle plan: each image is built (assembled from Debian
packages, appended onto its parent, or built from its Dockerfile by buildah,
BuildKit or docker with the parent passed by digest), pushed under a new
immutable tag, its floating tags moved, its SBOM stored, and a signed SLSA
provenance attached (signing.key, or socle's own key in DATA_DIR/keys). A
Dockerfile build's output streams here as it runs. A failure stops only the
images built on it; images of one level build --jobs at a time.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := textOrJSON(o.output); err != nil {
				return err
			}
			ctx := cmd.Context()
			if c, err := g.remote(); err != nil || c != nil {
				if err != nil {
					return err
				}
				return remoteJob(ctx, g, c, "/api/v1/builds", map[string]any{"names": args})
			}
			st, err := g.sharedStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			pl, err := o.makePlan(ctx, g, st, args)
			if err != nil {
				return err
			}
			if len(pl.plan.Steps) == 0 {
				fmt.Fprintln(g.out, "everything is up to date")
				return nil
			}
			b, err := newCatalogBuilder(g, st, pl, jobs)
			if err != nil {
				return err
			}
			out, runErr := b.Run(ctx, pl.plan)
			if o.output == "json" {
				if err := writeJSON(g.out, out); err != nil {
					return err
				}
			} else {
				writeOutcomes(g.out, out)
			}
			if errors.Is(runErr, catalog.ErrBuildsFailed) {
				return &statusError{code: 1}
			}
			return explainRegistry(runErr, pl.target)
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().IntVar(&jobs, "jobs", 4, "images of one level built at once")
	cmd.Flags().IntVar(&jobs, "parallel", 4, "the same as --jobs")
	cmd.Flags().MarkHidden("parallel")
	return cmd
}

// newCatalogBuilder is the builder of socle build: it indexes what it
// pushes, signs provenance, keeps buildah's layer cache in DATA_DIR, and
// prints progress and build logs to stderr.
func newCatalogBuilder(g *globals, st store.Store, pl *planned, jobs int) (*catalog.Builder, error) {
	sc, err := newScanner(g, st)
	if err != nil {
		return nil, err
	}
	signer, _, err := sign.OwnKey(pl.cfg.Resolve(pl.cfg.Signing.Key), sign.OwnKeyDir(g.dataDir))
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	b := &catalog.Builder{
		Catalog: pl.catalog, Store: st, Target: pl.target, Parallel: jobs,
		Indexer: catalog.ImageIndexer{Scanner: sc, Tags: st}, Provenance: signer,
		BuildahRoot: filepath.Join(g.dataDir, "buildah"),
		By:          "cli:" + currentUser(), Logger: g.logger,
		Progress: func(e catalog.Event) {
			mu.Lock()
			defer mu.Unlock()
			if e.Phase == catalog.PhaseLog {
				fmt.Fprintf(g.errOut, "%-12s | %s\n", e.Name, e.Message)
				return
			}
			fmt.Fprintf(g.errOut, "%-12s %-9s %s\n", e.Name, e.Phase, cmp.Or(e.Message, e.Digest))
		},
	}
	if pl.asm != nil { // not a typed nil in the interface
		b.Assembler = pl.asm
	}
	return b, nil
}

func writeOutcomes(w io.Writer, out []catalog.Outcome) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tSTATUS\tTAG\tDIGEST\tSECONDS\tERROR")
	for _, o := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%s\n", o.Name, o.Status, dash(o.Tag), dash(o.Digest), o.Seconds, o.Error)
	}
	tw.Flush()
}

// remoteJob queues a server job (a build, a remediation) and follows it
// to its end, printing its progress and, last, its summary.
func remoteJob(ctx context.Context, g *globals, c *client.Client, path string, in any) error {
	var q queued
	if err := c.Do(ctx, "POST", path, in, &q); err != nil {
		return err
	}
	fmt.Fprintf(g.errOut, "job %d queued on %s\n", q.Job, c.Server())
	j, err := waitJob(ctx, g, c, q.Job)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.out, j.Message)
	return nil
}
