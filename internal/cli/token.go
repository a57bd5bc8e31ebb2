package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/store"
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
	var secret string
	var tok store.Token
	err := g.either(ctx, func(c *client.Client) error {
		in := map[string]any{"user": o.user, "name": o.name, "role": o.role, "repositories": o.repositories}
		if o.expires > 0 {
			in["expires"] = o.expires.String()
		}
		var body struct {
			Secret string    `json:"secret"`
			Token  tokenJSON `json:"token"`
		}
		err := c.Do(ctx, "POST", "/api/v1/tokens", in, &body)
		secret, tok = body.Secret, body.Token.record()
		return err
	}, func(st store.Store) (err error) {
		secret, tok, err = auth.Issue(ctx, st, auth.Spec{User: o.user, Name: o.name, Role: o.role, TTL: o.expires, Repositories: o.repositories}, "cli:"+currentUser(), time.Now())
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(g.out, secret)
	fmt.Fprintf(g.errOut, "token %s (%s) created; it is shown only now\n", tok.ID, tok.Role)
	return nil
}

// tokenJSON is a token as the API shows it.
type tokenJSON struct {
	ID           string    `json:"id"`
	User         string    `json:"user"`
	Name         string    `json:"name"`
	Role         string    `json:"role"`
	Repositories []string  `json:"repositories"`
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	RevokedAt    time.Time `json:"revoked_at"`
	LastUsed     time.Time `json:"last_used"`
}

func (t tokenJSON) record() store.Token {
	return store.Token{ID: t.ID, User: t.User, Name: t.Name, Role: t.Role, Repositories: t.Repositories,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, LastUsed: t.LastUsed}
}

func newTokenListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var toks []store.Token
			err := g.either(cmd.Context(), func(c *client.Client) error {
				var body struct {
					Tokens []tokenJSON `json:"tokens"`
				}
				err := c.Do(cmd.Context(), "GET", "/api/v1/tokens", nil, &body)
				for _, t := range body.Tokens {
					toks = append(toks, t.record())
				}
				return err
			}, func(st store.Store) (err error) {
				toks, err = st.ListTokens(cmd.Context())
				return err
			})
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
			err := g.either(cmd.Context(), func(c *client.Client) error {
				return c.Do(cmd.Context(), "DELETE", "/api/v1/tokens/"+url.PathEscape(args[0]), nil, nil)
			}, func(st store.Store) error {
				return auth.Revoke(cmd.Context(), st, args[0], "cli:"+currentUser(), time.Now())
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "token %s revoked\n", args[0])
			return nil
		},
	}
}
