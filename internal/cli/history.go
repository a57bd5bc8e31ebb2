package cli

import (
	"context"

	"github.com/spf13/cobra"
)

func newHistoryCmd(g *globals) *cobra.Command {
	o := &promoteOptions{}
	var limit int
	cmd := &cobra.Command{
		Use:   "history IMAGE",
		Short: "Every promotion of a repository: who, when, where from, and the evidence",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withPromotions(cmd, g, func(ctx context.Context, ps promotions) error {
				hist, err := ps.History(ctx, args[0], limit)
				if err != nil {
					return err
				}
				if o.output == "json" {
					return writeJSON(g.out, hist)
				}
				writePromotions(g.out, hist)
				return nil
			})
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().IntVar(&limit, "limit", 100, "most recent promotions shown")
	return cmd
}
