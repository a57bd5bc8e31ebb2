package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

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
// planned is a plan and what made it.
type planned struct {
	cfg     *config.File
	catalog *catalog.Catalog
	target  catalog.Target
	asm     *assemble.Assembler
	plan    *catalog.Plan
}

func (o *planOptions) makePlan(ctx context.Context, g *globals, st store.Store, names []string) (*planned, error) {
	cfg, c, err := o.load(g)
	if err != nil {
		return nil, err
	}
	pl := &planned{cfg: cfg, catalog: c, target: o.target(cfg)}
	planner := &catalog.Planner{Catalog: c, Store: st, Target: pl.target}
	if c.Assembles() {
		if pl.asm, err = assembler(g); err != nil {
			return nil, err
		}
		if !o.noPackageChecks {
			planner.Packages = pl.asm
		}
	}
	if pl.plan, err = planner.Plan(ctx, catalog.PlanOptions{Names: names}); err != nil {
		return nil, explainRegistry(err, pl.target)
	}
	return pl, nil
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
			if c, err := g.remote(); err != nil || c != nil {
				if err != nil {
					return err
				}
				return remotePlan(ctx, g, c, args, o.output)
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
			if o.output == "json" {
				return pl.plan.WriteJSON(g.out)
			}
			return pl.plan.WriteText(g.out)
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// remotePlan prints the server's plan of its catalog.
func remotePlan(ctx context.Context, g *globals, c *client.Client, names []string, output string) error {
	q := url.Values{"name": names}
	if output != "json" {
		q.Set("format", "text")
	}
	b, err := c.Raw(ctx, "GET", "/api/v1/plan?"+q.Encode(), nil, "")
	if err != nil {
		return err
	}
	_, err = g.out.Write(b)
	return err
}
