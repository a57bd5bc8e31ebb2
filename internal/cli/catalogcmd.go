package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/store"
)

// catalogOptions are the flags of the commands that read the catalog and
// reach the registry it is built into.
type catalogOptions struct {
	config   string
	registry string
	insecure bool
}

func (o *catalogOptions) AddFlags(f *pflag.FlagSet) {
	configFlag(f, &o.config)
	f.StringVar(&o.registry, "registry", "", "registry to build into (default registry.url of socle.yaml, else the embedded registry of socle serve at server.registry_addr)")
	insecureFlag(f, &o.insecure)
}

// load reads and checks the catalog.
func (o *catalogOptions) load(g *globals) (*config.File, *catalog.Catalog, error) {
	cfg, err := loadConfig(g, o.config)
	if err != nil {
		return nil, nil, err
	}
	if len(cfg.Images) == 0 {
		return cfg, nil, fmt.Errorf("%s declares no images: add an images: section (see `socle catalog discover`)", cfg.Path())
	}
	c, err := catalog.New(cfg)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, c, nil
}

// target is the registry catalog images go to (see catalog.TargetFor).
func (o *catalogOptions) target(cfg *config.File) catalog.Target {
	return catalog.TargetFor(cfg, o.registry, o.insecure)
}

// assembler is the Debian package assembler, caching in the data
// directory; the mirror is the host's apt configuration.
func assembler(g *globals) (*assemble.Assembler, error) {
	return assemble.New(assemble.Options{Cache: assemble.CacheDir(g.dataDir), Logger: g.logger})
}

func newCatalogCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "catalog",
		Short: "Check the image catalog of socle.yaml, or discover one from Dockerfiles",
	}
	o := &catalogOptions{}
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the catalog: fields, parents, cycles, tag templates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, c, err := o.load(g)
			if err != nil {
				return err
			}
			return writeCatalog(g.out, cfg.Path(), c)
		},
	}
	configFlag(check.Flags(), &o.config)
	var prefix, file string
	discover := &cobra.Command{
		Use:   "discover DIR",
		Short: "Write a first catalog from the Dockerfiles under DIR",
		Long: `discover reads every Dockerfile under DIR (FROM lines, multi-stage builds,
ARG-based FROM, COPY --from) with the buildkit parser, links images whose
base is another discovered image, and writes a socle.yaml catalog to start
from. What it cannot decide is left as a TODO comment.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dfs, errs := catalog.Discover(args[0])
			for _, err := range errs {
				fmt.Fprintf(g.errOut, "warning: %v\n", err)
			}
			if len(dfs) == 0 {
				return fmt.Errorf("no Dockerfile under %s", args[0])
			}
			y, err := catalog.DiscoveredCatalog(dfs, prefix)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.errOut, "%d Dockerfiles\n", len(dfs))
			return writeTo(g.out, file, func(w io.Writer) error { _, err := w.Write(y); return err })
		},
	}
	discover.Flags().StringVar(&prefix, "repository-prefix", "", "repository prefix of the discovered images (platform/)")
	discover.Flags().StringVarP(&file, "file", "f", "", "write the catalog to this file instead of standard output")
	cmd.AddCommand(check, discover)
	return cmd
}

// writeCatalog prints the images level by level with their tags.
func writeCatalog(w io.Writer, path string, c *catalog.Catalog) error {
	levels := catalog.Levels(c.Images)
	fmt.Fprintf(w, "%s: %d images in %d levels, no errors\n\n", path, len(c.Images), len(levels))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LEVEL\tIMAGE\tBUILD\tPARENT\tTAG\tFLOATING")
	for i, l := range levels {
		for _, im := range l {
			tags, err := im.Tags()
			if err != nil {
				return err
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s:%s\t%s\n", i, im.Name, im.Kind, dash(im.Parent), im.Repository, tags.Immutable, dash(strings.Join(tags.Floating, " ")))
		}
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

type planOptions struct {
	catalogOptions
	output          string
	noPackageChecks bool
}

func (o *planOptions) AddFlags(f *pflag.FlagSet) {
	o.catalogOptions.AddFlags(f)
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&o.noPackageChecks, "no-package-check", false, "do not ask the Debian archive for package updates")
}

// makePlan loads the catalog and plans the builds of names (all when
// empty). The store must be open.
func (o *planOptions) makePlan(ctx context.Context, g *globals, st store.Store, names []string) (*catalog.Catalog, catalog.Target, *assemble.Assembler, *catalog.Plan, error) {
	cfg, c, err := o.load(g)
	if err != nil {
		return nil, catalog.Target{}, nil, nil, err
	}
	t := o.target(cfg)
	var asm *assemble.Assembler
	planner := &catalog.Planner{Catalog: c, Store: st, Target: t}
	if c.Assembles() {
		if asm, err = assembler(g); err != nil {
			return nil, t, nil, nil, err
		}
		if !o.noPackageChecks {
			planner.Packages = asm
		}
	}
	p, err := planner.Plan(ctx, catalog.PlanOptions{Names: names})
	if err != nil {
		return nil, t, nil, nil, explainRegistry(err, t)
	}
	return c, t, asm, p, nil
}

// explainRegistry adds a hint when the target registry does not answer.
func explainRegistry(err error, t catalog.Target) error {
	if err != nil && strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%w\n(the registry %s does not answer: start `socle serve`, or point --registry or registry.url at one)", err, t.Registry)
	}
	return err
}

func newPlanCmd(g *globals) *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan [NAMES...]",
		Short: "Show what must be (re)built, why, in which order, and which floating tags move",
		Long: `plan compares each catalog image with its last build: never built, catalog
entry or input files changed, parent rebuilt or its digest changed, package
updates available in the archive (assembled images). NAMES forces those
images and their descendants.`,
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
			_, _, _, p, err := o.makePlan(ctx, g, st, args)
			if err != nil {
				return err
			}
			if o.output == "json" {
				return p.WriteJSON(g.out)
			}
			return p.WriteText(g.out)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

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

func currentUser() string {
	for _, k := range []string{"SOCLE_USER", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "unknown"
}

func newLineageCmd(g *globals) *cobra.Command {
	var image imageOptions
	var output string
	cmd := &cobra.Command{
		Use:   "lineage REF",
		Short: "Print an image's chain of bases down to the OS image",
		Long: `lineage finds each base by the OCI annotations org.opencontainers.image.base.*
(checked against the layers) and by layer-prefix matching against the images
socle knows. The image is inventoried and stored first if socle has not
seen it; scan or build the bases so that they are known.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := textOrJSON(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			ref, err := oci.ParseImageRef(args[0])
			if err != nil {
				return usageError(err)
			}
			sopts, err := image.sourceOptions(g.dataDir)
			if err != nil {
				return err
			}
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			sc, err := newScanner(g, st)
			if err != nil {
				return err
			}
			inv, img, err := sc.InventoryRef(ctx, ref, sopts, nil)
			if err != nil {
				return err
			}
			if err := sc.Index(ctx, inv, img.Repository); err != nil {
				return err
			}
			links, err := catalog.Lineage(ctx, st, inv.Digest)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(g.out, links)
			}
			catalog.WriteLineage(g.out, links)
			return nil
		},
	}
	image.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
