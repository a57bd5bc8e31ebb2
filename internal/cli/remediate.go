package cli

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/remediate"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
)

func newRemediateCmd(g *globals) *cobra.Command {
	o := &planOptions{}
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "remediate",
		Short: "Carry available fixes to new digests: rebuild, rebase or bump in Git, each verified first",
		Long: `remediate looks at the last build of every catalog image, attributes each open
fixable finding to the catalog image whose layers brought it, and picks a
strategy, which it explains:

  rebuild  an assembled image whose packages have fixed versions in the archive
           (pins in socle.yaml are bumped);
  rebase   an image's own layers onto its parent's new digest, when they do not
           depend on it (append-layer images, rebase: safe);
  git      the new digests are committed to the repositories of
           remediation.git (Dockerfile FROM, kustomize, Helm values);
  none     no fix exists upstream yet: socle keeps watching.

Every candidate is built and scanned first, and kept only if it removes
findings and adds none. --dry-run builds and verifies but pushes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := textOrJSON(o.output); err != nil {
				return err
			}
			ctx := cmd.Context()
			if rc, err := g.remote(); err != nil || rc != nil {
				if err != nil {
					return err
				}
				return remoteJob(ctx, g, rc, "/api/v1/remediations", map[string]any{"dry_run": dryRun})
			}
			cfg, c, err := o.load(g)
			if err != nil {
				return err
			}
			st, err := g.sharedStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			t := o.target(cfg)
			r, err := newRemediator(g, cfg, c, st, t)
			if err != nil {
				return err
			}
			plan, err := r.Plan(ctx)
			if err != nil {
				return explainRegistry(err, t)
			}
			if err := r.Apply(ctx, plan, dryRun); err != nil {
				return err
			}
			if o.output == "json" {
				return writeJSON(g.out, plan)
			}
			writeRemediation(g.out, plan, dryRun)
			return nil
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "build and verify the candidates, push and record nothing")
	return cmd
}

// newRemediator builds the remediator of a catalog (see remediate.New).
func newRemediator(g *globals, cfg *config.File, c *catalog.Catalog, st store.Store, t catalog.Target) (*remediate.Remediator, error) {
	sc, err := newScanner(g, st)
	if err != nil {
		return nil, err
	}
	signer, _, err := sign.OwnKey(cfg.Resolve(cfg.Signing.Key), sign.OwnKeyDir(g.dataDir))
	if err != nil {
		return nil, err
	}
	return remediate.New(remediate.Deps{Config: cfg, Catalog: c, Store: st, Scanner: sc, Target: t,
		AptCache: assemble.CacheDir(g.dataDir), BuildahRoot: filepath.Join(g.dataDir, "buildah"), Provenance: signer,
		By: "cli:" + currentUser(), Logger: g.logger})
}

func writeRemediation(w io.Writer, p *remediate.Plan, dryRun bool) {
	if len(p.Actions) == 0 {
		fmt.Fprintf(w, "Nothing to remediate: %d catalog images have no open fixable finding.\n", len(p.Clean))
		return
	}
	for _, a := range p.Actions {
		fmt.Fprintf(w, "%s (%s@%s)\n", a.Image, a.Repository, oci.ShortDigest(a.From))
		fmt.Fprintf(w, "  strategy  %s: %s\n", a.Strategy, a.Why)
		if n := len(a.Owned); n > 0 {
			fmt.Fprintf(w, "  owns      %d fixable findings: %s\n", n, findingList(a.Owned))
		}
		if n := len(a.Inherited); n > 0 {
			fmt.Fprintf(w, "  inherits  %d from its bases: %s\n", n, findingList(a.Inherited))
		}
		if a.Status != "" {
			fmt.Fprintf(w, "  result    %s", a.Status)
			if a.To != "" {
				fmt.Fprintf(w, " → %s", a.To)
			}
			if len(a.Fixed)+len(a.Added) > 0 {
				fmt.Fprintf(w, " (fixes %d, adds %d)", len(a.Fixed), len(a.Added))
			}
			if a.Detail != "" && a.Detail != a.Why {
				fmt.Fprintf(w, "; %s", a.Detail)
			}
			fmt.Fprintln(w)
		}
		for _, c := range a.Commits {
			fmt.Fprintf(w, "  git       commit %s\n", c)
		}
	}
	if dryRun {
		fmt.Fprintln(w, "\n(dry run: nothing was pushed or recorded)")
	}
}

func findingList(fs []remediate.Attributed) string {
	var s []string
	for i, f := range fs {
		if i == 4 {
			s = append(s, fmt.Sprintf("and %d more", len(fs)-4))
			break
		}
		owner := ""
		if f.Owner != "" {
			owner = " from " + f.Owner
		}
		s = append(s, fmt.Sprintf("%s (%s %s → %s%s)", f.AdvisoryID, f.Package.Name, f.Package.Version, f.FixedVersion, owner))
	}
	return strings.Join(s, ", ")
}
