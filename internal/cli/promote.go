package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
)

// promoteOptions are the flags of the promotion commands.
type promoteOptions struct {
	config   string
	token    string
	insecure bool
	output   string
}

func (o *promoteOptions) AddFlags(f *pflag.FlagSet) {
	configFlag(f, &o.config)
	f.StringVar(&o.token, "token", "", "API token to act as (env SOCLE_TOKEN); its role decides what is allowed")
	insecureFlag(f, &o.insecure)
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
}

// actor authenticates the token.
func (o *promoteOptions) actor(ctx context.Context, st store.Store) (promote.Actor, error) {
	secret := cmp.Or(o.token, os.Getenv("SOCLE_TOKEN"))
	if secret == "" {
		return promote.Actor{}, usageError(errors.New("promotion acts as a token: give --token or SOCLE_TOKEN (socle token create --role ...)"))
	}
	p, err := auth.NewAuthenticator(st).Authenticate(ctx, secret)
	if err != nil {
		return promote.Actor{}, fmt.Errorf("the token: %w", err)
	}
	return promote.Actor{Name: p.Name, Role: p.Role}, nil
}

// newPromoter builds the promoter of socle.yaml's environments, which
// indexes the images the store does not know before their gates run.
func newPromoter(g *globals, cfg *config.File, st store.Store, sopts source.Options) (*promote.Promoter, error) {
	sc, err := newScanner(g, st)
	if err != nil {
		return nil, err
	}
	popts := promote.Options{
		NameOpts: sopts.NameOptions(), Logger: g.logger,
		Ensure: func(ctx context.Context, ref name.Digest) error { return sc.EnsureIndexed(ctx, st, ref, sopts) },
	}
	// On the host running socle serve, its embedded registry takes
	// environment tags from the promoter secret in the data directory.
	if secret, err := os.ReadFile(filepath.Join(g.dataDir, "registry", "promoter-secret")); err == nil {
		host := cmp.Or(cfg.Server.RegistryAddr, "127.0.0.1:5050")
		popts.Remote = []remote.Option{remote.WithAuthFromKeychain(
			registry.PromoterKeychain(host, strings.TrimSpace(string(secret)), authn.DefaultKeychain))}
	}
	p, err := promote.New(cfg, st, popts)
	if err != nil {
		return nil, err
	}
	p.Pause = promotionPause(g)
	return p, nil
}

// withPromoter opens the store and the promoter for a command that runs
// on the host of socle serve.
func (o *promoteOptions) withPromoter(cmd *cobra.Command, g *globals, fn func(ctx context.Context, st store.Store, p *promote.Promoter) error) error {
	if err := textOrJSON(o.output); err != nil {
		return err
	}
	ctx := cmd.Context()
	cfg, err := loadConfig(g, o.config)
	if err != nil {
		return err
	}
	st, err := g.sharedStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := newPromoter(g, cfg, st, source.Options{InsecureRegistryUnsafe: o.insecure || cfg.Registry.InsecureUnsafe})
	if err != nil {
		return err
	}
	// Settle what an interrupted promotion left behind.
	if done, aborted, err := p.Reconcile(ctx, promote.StaleMoving); err != nil {
		g.logger.Warn("reconciling promotions", "err", err)
	} else if done+aborted > 0 {
		fmt.Fprintf(g.errOut, "settled %d interrupted promotions (%d done, %d aborted)\n", done+aborted, done, aborted)
	}
	return fn(ctx, st, p)
}

// withPromotions runs fn with the promotions of the configured server
// (as its token), or of the local promoter (as --token's actor).
func (o *promoteOptions) withPromotions(cmd *cobra.Command, g *globals, fn func(ctx context.Context, ps promotions) error) error {
	if err := textOrJSON(o.output); err != nil {
		return err
	}
	c, err := g.remote()
	if err != nil {
		return err
	}
	if c != nil {
		if o.token != "" {
			c = c.WithToken(o.token)
		}
		return fn(cmd.Context(), &remotePromotions{c: c})
	}
	return o.withPromoter(cmd, g, func(ctx context.Context, st store.Store, p *promote.Promoter) error {
		return fn(ctx, &localPromotions{p: p, st: st, actor: func(ctx context.Context) (promote.Actor, error) { return o.actor(ctx, st) }})
	})
}

// act runs a promotion step and prints its result.
func (o *promoteOptions) act(cmd *cobra.Command, g *globals, step func(ctx context.Context, ps promotions) (*promote.Result, error)) error {
	return o.withPromotions(cmd, g, func(ctx context.Context, ps promotions) error {
		res, err := step(ctx, ps)
		if res != nil {
			if werr := writeResult(g.out, o.output, res); werr != nil {
				return werr
			}
		}
		return err
	})
}

func writeResult(w io.Writer, output string, res *promote.Result) error {
	if output == "json" {
		return writeJSON(w, res)
	}
	pr := res.Promotion
	if res.Unchanged {
		fmt.Fprintf(w, "%s already runs %s (promotion %d)\n", pr.Environment, pr.Digest, pr.ID)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GATE\tRESULT\tDETAIL")
	for _, gt := range res.Gates {
		r := "pass"
		switch {
		case gt.Pending:
			r = "waiting"
		case !gt.Passed:
			r = "BLOCK"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", gt.Gate, r, gt.Detail)
	}
	tw.Flush()
	switch pr.State {
	case store.PromotionDone:
		fmt.Fprintf(w, "\npromotion %d: %s:%s → %s\n", pr.ID, pr.Target, pr.Tag, pr.Digest)
	case store.PromotionAwaitingApproval:
		fmt.Fprintf(w, "\npromotion %d awaits approval: socle approve %d (approver or admin token)\n", pr.ID, pr.ID)
	default:
		fmt.Fprintf(w, "\npromotion %d: %s\n", pr.ID, pr.State)
	}
	return nil
}

func newPromoteCmd(g *globals) *cobra.Command {
	o := &promoteOptions{}
	var to, note string
	var override bool
	cmd := &cobra.Command{
		Use:   "promote IMAGE@DIGEST --to ENV",
		Short: "Move an environment's tag to a digest, through its gates",
		Long: `promote evaluates the gates of the environment (previous environment, soak,
signature, vulnerabilities, SBOM attestation, approvals, Rego policy), then
copies the digest to the environment's repository if it has its own (blobs
mounted, signatures with it), signs a promotion attestation when signing.key
is set, and moves the environment's tag. Every step is in the audit log.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageError(errors.New("--to ENV is required"))
			}
			return o.act(cmd, g, func(ctx context.Context, ps promotions) (*promote.Result, error) {
				return ps.Promote(ctx, promote.Request{Image: args[0], To: to, Override: override, Note: note})
			})
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&to, "to", "", "environment")
	recordFlags(cmd.Flags(), &note, &override)
	var stale time.Duration
	reconcile := &cobra.Command{
		Use:   "reconcile",
		Short: "Settle promotions an interruption left half done",
		Long: `A promotion is recorded before its tag moves and marked done after. reconcile
looks at the tag of every promotion left in between for longer than --stale:
done if the tag points at the digest, aborted otherwise.`,
		Args: cobra.NoArgs,
	}
	o2 := &promoteOptions{}
	o2.AddFlags(reconcile.Flags())
	reconcile.Flags().DurationVar(&stale, "stale", promote.StaleMoving, "settle promotions moving for longer than this")
	reconcile.RunE = func(cmd *cobra.Command, _ []string) error {
		return o2.withPromoter(cmd, g, func(ctx context.Context, st store.Store, p *promote.Promoter) error {
			done, aborted, err := p.Reconcile(ctx, stale)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%d settled as done, %d aborted\n", done, aborted)
			return nil
		})
	}
	cmd.AddCommand(reconcile, newPromoteListCmd(g))
	return cmd
}

// newPromoteListCmd lists promotions across repositories: what awaits
// approval, what was blocked.
func newPromoteListCmd(g *globals) *cobra.Command {
	o := &promoteOptions{}
	var state, env string
	var limit int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List promotions (e.g. --state awaiting-approval for what approvers should look at)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := store.PromotionQuery{Environment: env, Limit: limit}
			if state != "" {
				q.States = []string{state}
			}
			return o.withPromotions(cmd, g, func(ctx context.Context, ps promotions) error {
				list, err := ps.List(ctx, q)
				if err != nil {
					return err
				}
				if o.output == "json" {
					return writeJSON(g.out, list)
				}
				writePromotions(g.out, list)
				return nil
			})
		},
	}
	o.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&state, "state", "", "only this state (awaiting-approval, moving, done, blocked, aborted, failed)")
	cmd.Flags().StringVar(&env, "env", "", "only this environment")
	cmd.Flags().IntVar(&limit, "limit", 100, "most recent promotions shown")
	return cmd
}

// writePromotions prints promotions, newest first.
func writePromotions(w io.Writer, ps []store.Promotion) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHEN\tKIND\tFROM\tTO\tSTATE\tIMAGE\tBY\tNOTE")
	for _, h := range ps {
		kind := h.Kind
		if h.Override {
			kind += " (override)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.ID, h.UpdatedAt.Format(time.RFC3339), kind, dash(h.From),
			h.Environment, h.State, h.Target+"@"+oci.ShortDigest(h.Digest), h.By+" ("+h.Role+")", h.Note)
	}
	tw.Flush()
}

func recordFlags(f *pflag.FlagSet, note *string, override *bool) {
	f.StringVar(note, "note", "", "why, for the record")
	f.BoolVar(override, "override", false, "skip the gates (admin only; logged)")
}
