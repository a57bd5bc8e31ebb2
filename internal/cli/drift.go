package cli

import (
	"cmp"
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func newDriftCmd(g *globals) *cobra.Command {
	o := &promoteOptions{}
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "Report environment tags that point elsewhere than socle's record",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return o.withPromotions(cmd, g, func(ctx context.Context, ps promotions) error {
				ds, err := ps.Drifts(ctx)
				if err != nil {
					return err
				}
				if o.output == "json" {
					if err := writeJSON(g.out, ds); err != nil {
						return err
					}
				} else if len(ds) == 0 {
					fmt.Fprintln(g.out, "no drift: every environment tag is where socle put it")
				} else {
					for _, d := range ds {
						fmt.Fprintf(g.out, "DRIFT %s:%s (%s): recorded %s, points at %s\n", d.Repository, d.Tag, d.Environment, d.Recorded, cmp.Or(d.Actual, "(nothing)"))
					}
				}
				if len(ds) > 0 {
					return &statusError{code: 1}
				}
				return nil
			})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
