package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/units"
)

func newLayersCmd(g *globals) *cobra.Command {
	var img imageOptions
	var output string
	var biggest int
	cmd := &cobra.Command{
		Use:   "layers REF",
		Short: "Show where an image's bytes are, and how many its layers waste",
		Long: `layers reads every layer of an image once and reports, as Dive does, the bytes
each layer adds, the bytes later layers replace or delete (wasted), the
image's efficiency (its final bytes over every byte its layers add), its
biggest files and its largest wasted ones.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usageError(fmt.Errorf("--output %q: want table or json", output))
			}
			res, err := checkImage(cmd.Context(), g, img, args[0], biggest)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(g.out, res.Layers)
			}
			return writeLayers(g.out, args[0], res.Layers)
		},
	}
	img.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	cmd.Flags().IntVar(&biggest, "biggest", 10, "how many of the biggest and most wasted files to list")
	return cmd
}

// checkImage opens an image and runs the image rules and the layer
// report; when its annotations name its base by digest, the base's layers
// are counted so that findings in them are attributed to it.
func checkImage(ctx context.Context, g *globals, img imageOptions, refArg string, biggest int) (*check.ImageResult, error) {
	ref, err := oci.ParseImageRef(refArg)
	if err != nil {
		return nil, usageError(err)
	}
	sopts, err := img.sourceOptions(g.dataDir)
	if err != nil {
		return nil, err
	}
	src, err := source.Open(ctx, ref, sopts)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	annotations := check.Annotations(src)
	opts := check.ImageOptions{Biggest: biggest, BaseName: annotations[oci.AnnotationBaseName]}
	if n, ok := baseLayers(ctx, annotations, sopts); ok {
		opts.BaseLayers = n
	}
	return check.CheckImage(ctx, refArg, src, annotations, opts)
}

// baseLayers counts the layers of the base an image's annotations name,
// read from its registry by digest; false when they name none or it
// cannot be read.
func baseLayers(ctx context.Context, annotations map[string]string, sopts source.Options) (int, bool) {
	name, digest := annotations[oci.AnnotationBaseName], annotations[oci.AnnotationBaseDigest]
	if name == "" || digest == "" {
		return 0, false
	}
	repo := name
	if i := strings.LastIndex(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	ref, err := oci.ParseImageRef(repo + "@" + digest)
	if err != nil {
		return 0, false
	}
	base, err := source.Open(ctx, ref, sopts)
	if err != nil {
		return 0, false
	}
	defer base.Close()
	ls, err := base.Layers()
	if err != nil {
		return 0, false
	}
	return len(ls), true
}

func writeLayers(w io.Writer, ref string, r check.LayerReport) error {
	fmt.Fprintf(w, "%s: %s in %d layers, %s wasted, efficiency %.1f%%\n\n", ref, units.Bytes(r.Total), len(r.Layers), units.Bytes(r.Wasted), 100*r.Efficiency)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tFILES\tSIZE\tWASTED\tCREATED BY")
	for _, l := range r.Layers {
		by := l.CreatedBy
		if len(by) > 60 {
			by = by[:57] + "..."
		}
		base := ""
		if l.Base {
			base = " (base)"
		}
		fmt.Fprintf(tw, "%d%s\t%d\t%s\t%s\t%s\n", l.Index, base, l.Files, units.Bytes(l.Bytes), units.Bytes(l.Wasted), by)
	}
	tw.Flush()
	for _, list := range []struct {
		title string
		files []check.FileSize
	}{{"Biggest files", r.Biggest}, {"Largest wasted files (replaced or deleted later)", r.WastedFiles}} {
		if len(list.files) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", list.title)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range list.files {
			fmt.Fprintf(tw, "  %s\t%s\tlayer %d\n", units.Bytes(f.Size), f.Path, f.Layer)
		}
		tw.Flush()
	}
	return nil
}
