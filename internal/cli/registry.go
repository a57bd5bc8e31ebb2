package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/registry"
)

func newRegistryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Look after the embedded registry",
	}
	cmd.AddCommand(newRegistryGCCmd(g))
	return cmd
}

func newRegistryGCCmd(g *globals) *cobra.Command {
	var cfgPath, output string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove the blobs no manifest references (admin)",
		Long: `gc asks the socle server to collect its embedded registry's garbage: every
manifest of every repository (referrers included) is read, and the blobs
none of them references are removed, unless they were written, pushed
or checked within the grace period (registry.gc_grace, default 1h). It
runs safely while pushes go on. Manifests are never removed.`,
		Example: `  socle registry gc --dry-run
  socle registry gc -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := textOrJSON(output); err != nil {
				return err
			}
			cfg, err := loadConfig(g, cfgPath)
			if err != nil {
				return err
			}
			c, err := g.apiClient(cfg)
			if err != nil {
				return err
			}
			var rep registry.GCReport
			if err := c.Do(cmd.Context(), "POST", "/api/v1/registry/gc", map[string]bool{"dry_run": dryRun}, &rep); err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(g.out, rep)
			}
			verb := "removed"
			if rep.DryRun {
				verb = "would remove"
			}
			fmt.Fprintf(g.out, "%d manifests, %d blobs: %d referenced, %d too recent to judge; %s %d (%d bytes)\n",
				rep.Manifests, rep.Blobs, rep.Referenced, rep.Fresh, verb, len(rep.Removed), rep.Bytes)
			for _, d := range rep.Removed {
				fmt.Fprintln(g.out, "  "+d)
			}
			return nil
		},
	}
	configFlag(cmd.Flags(), &cfgPath)
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be removed, remove nothing")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
