package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/oci"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens",
	}
	cmd.AddCommand(newTokenCreateCmd(g), newTokenListCmd(g), newTokenRevokeCmd(g))
	return cmd
}

type tokenCreateOptions struct {
	role         string
	user         string
	name         string
	expires      time.Duration
	repositories []string
}

func newTokenCreateCmd(g *globals) *cobra.Command {
	o := &tokenCreateOptions{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a token and print it once",
		Long: `Create an API token. The token is printed once and only its hash is kept.
Roles, in increasing power: viewer (read), developer (push, scan, report
deployments), approver (approve promotions), admin (everything, overrides).`,
		Example: `  socle token create --user alice --role approver
  socle token create --role viewer --name dashboard
  socle token create --role developer --name billing-ci --repositories 'apps/billing/*' --expires 720h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !auth.ValidRole(o.role) {
				return usageError(fmt.Errorf("--role %q: want one of %s", o.role, strings.Join(auth.Roles, ", ")))
			}
			for _, p := range o.repositories {
				if err := oci.ValidRepositoryPattern(p); err != nil {
					return usageError(fmt.Errorf("--repositories: %w", err))
				}
			}
			return runTokenCreate(cmd.Context(), g, o)
		},
	}
	cmd.Flags().StringVar(&o.role, "role", "", "viewer, developer, approver or admin (required)")
	cmd.Flags().StringVar(&o.user, "user", "", "the person the token belongs to (approvals count distinct users)")
	cmd.Flags().StringVar(&o.name, "name", "", "what the token is for (a service token has a name and no user)")
	cmd.Flags().StringSliceVar(&o.repositories, "repositories", nil, "repository patterns the token may push to (apps/billing/*, apps/**); default all")
	cmd.Flags().DurationVar(&o.expires, "expires", 0, "lifetime, e.g. 720h (default: no expiry)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func runTokenCreate(ctx context.Context, g *globals, o *tokenCreateOptions) error {
	st, err := g.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	secret, tok, err := auth.Issue(ctx, st, auth.Spec{User: o.user, Name: o.name, Role: o.role, TTL: o.expires, Repositories: o.repositories}, "cli:"+currentUser(), time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(g.out, secret)
	fmt.Fprintf(g.errOut, "token %s (%s) created; it is shown only now\n", tok.ID, tok.Role)
	return nil
}

func newTokenListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			toks, err := st.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tEXPIRES\tLAST USED\tSTATE")
			for _, t := range toks {
				state := "active"
				if !t.RevokedAt.IsZero() {
					state = "revoked"
				} else if !t.ExpiresAt.IsZero() && time.Now().After(t.ExpiresAt) {
					state = "expired"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, orNone(t.Name), t.Role, fmtTime(t.CreatedAt), fmtTime(t.ExpiresAt), fmtTime(t.LastUsed), state)
			}
			return tw.Flush()
		},
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func newTokenRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := auth.Revoke(cmd.Context(), st, args[0], "cli:"+currentUser(), time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "token %s revoked\n", args[0])
			return nil
		},
	}
}
