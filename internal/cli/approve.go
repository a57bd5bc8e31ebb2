package cli

import (
	"context"
	"fmt"
	"strconv"

	"github.com/socle-dev/socle/internal/promote"
	"github.com/spf13/cobra"
)

func newApproveCmd(g *globals) *cobra.Command {
	o := &promoteOptions{}
	cmd := &cobra.Command{
		Use:   "approve ID",
		Short: "Approve a promotion that waits for approvers (approver or admin token)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return usageError(fmt.Errorf("promotion ID %q: %w", args[0], err))
			}
			return o.act(cmd, g, func(ctx context.Context, ps promotions) (*promote.Result, error) {
				return ps.Approve(ctx, id)
			})
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}
