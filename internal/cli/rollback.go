package cli

import (
	"context"
	"errors"

	"github.com/socle-dev/socle/internal/promote"
	"github.com/spf13/cobra"
)

func newRollbackCmd(g *globals) *cobra.Command {
	o := &promoteOptions{}
	var env, note string
	var override bool
	cmd := &cobra.Command{
		Use:   "rollback IMAGE --env ENV",
		Short: "Return an environment to the digest it ran before",
		Long: `rollback promotes, to ENV, the digest ENV ran before its current one, through
the same gates; an admin may --override them, which the record and the audit
log keep.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return usageError(errors.New("--env ENV is required"))
			}
			return o.act(cmd, g, func(ctx context.Context, ps promotions) (*promote.Result, error) {
				return ps.Rollback(ctx, args[0], env, override, note)
			})
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&env, "env", "", "environment")
	recordFlags(cmd.Flags(), &note, &override)
	return cmd
}
