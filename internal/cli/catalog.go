package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
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

func currentUser() string {
	for _, k := range []string{"SOCLE_USER", "USER", "LOGNAME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "unknown"
}
