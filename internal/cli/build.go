package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"sync"
	"text/tabwriter"

	"github.com/socle-dev/socle/internal/catalog"
	"github.com/spf13/cobra"
)

func newBuildCmd(g *globals) *cobra.Command {
	o := &planOptions{}
	var parallel int
	cmd := &cobra.Command{
		Use:   "build [NAMES...]",
		Short: "Build the plan: parents first, independent images in parallel",
		Long: `build executes socle plan: each image is built (assembled from Debian
packages, appended onto its parent, or built by BuildKit/docker), pushed
under a new immutable tag, its floating tags moved, and its SBOM stored.
A failure stops only the images built on it.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := textOrJSON(o.output); err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			c, t, asm, p, err := o.makePlan(ctx, g, st, args)
			if err != nil {
				return err
			}
			if len(p.Steps) == 0 {
				fmt.Fprintln(g.out, "everything is up to date")
				return nil
			}
			sc, err := newScanner(g, st)
			if err != nil {
				return err
			}
			var mu sync.Mutex
			b := &catalog.Builder{
				Catalog: c, Store: st, Target: t, Parallel: parallel,
				Indexer: catalog.ImageIndexer{Scanner: sc, Tags: st},
				By:      "cli:" + currentUser(), Logger: g.logger,
				Progress: func(e catalog.Event) {
					mu.Lock()
					defer mu.Unlock()
					fmt.Fprintf(g.errOut, "%-12s %-9s %s\n", e.Name, e.Phase, cmp.Or(e.Message, e.Digest))
				},
			}
			if asm != nil { // not a typed nil in the interface
				b.Assembler = asm
			}
			out, runErr := b.Run(ctx, p)
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
			return explainRegistry(runErr, t)
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().IntVar(&parallel, "parallel", 4, "images of one level built at once")
	return cmd
}

func writeOutcomes(w io.Writer, out []catalog.Outcome) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tSTATUS\tTAG\tDIGEST\tSECONDS\tERROR")
	for _, o := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f\t%s\n", o.Name, o.Status, dash(o.Tag), dash(o.Digest), o.Seconds, o.Error)
	}
	tw.Flush()
}
