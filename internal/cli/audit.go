package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/audit"
	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The append-only, hash-chained audit log"}
	verify := newAuditVerifyCmd(g)
	var after int64
	var limit int
	show := &cobra.Command{
		Use:   "log",
		Short: "Print audit events",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var evs []store.AuditEvent
			err := g.either(cmd.Context(), func(c *client.Client) (err error) {
				evs, err = remoteAudit{c}.AuditEvents(cmd.Context(), after, limit)
				return err
			}, func(st store.Store) (err error) {
				evs, err = st.AuditEvents(cmd.Context(), after, limit)
				return err
			})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SEQ\tAT\tACTOR\tACTION\tSUBJECT\tDETAILS")
			for _, e := range evs {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Format(time.RFC3339), e.Actor, e.Action, e.Subject, strings.TrimSpace(string(e.Details)))
			}
			return tw.Flush()
		},
	}
	show.Flags().Int64Var(&after, "after", 0, "events after this sequence number")
	show.Flags().IntVar(&limit, "limit", 100, "events shown")
	cmd.AddCommand(verify, show, newAuditCheckpointCmd(g))
	return cmd
}

type auditVerifyOptions struct {
	config      string
	checkpoints string
	keys        []string
	output      string
}

func newAuditVerifyCmd(g *globals) *cobra.Command {
	o := &auditVerifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log: its hash chain and its signed checkpoints",
		Long: `verify reads the whole audit log and checks four things: the hash chain,
event by event (an edited, inserted or removed row breaks it); the signature
of every checkpoint, with the trusted public keys; that the log still holds
every checkpointed head with its hash (deleting the tail, or rewriting the
whole chain with recomputed hashes, loses it); and that no sequence number
was checkpointed twice with different heads.

Checkpoints are read from --checkpoints (a directory, an http(s):// URL
that lists them, or oci://registry/repository), by default the configured
sink (audit.sink, or DATA_DIR/audit-checkpoints). Keys are --key files, by
default the public half of the key that signs them.`,
		Example: `  socle audit verify
  socle audit verify --checkpoints oci://registry.example/audit/checkpoints --key release.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := textOrJSON(o.output); err != nil {
				return err
			}
			return runAuditVerify(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	configFlag(f, &o.config)
	f.StringVar(&o.checkpoints, "checkpoints", "", "where the checkpoints are (directory, http(s):// URL, oci://registry/repository)")
	f.StringSliceVar(&o.keys, "key", nil, "public keys the checkpoints must verify with")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func runAuditVerify(ctx context.Context, g *globals, o *auditVerifyOptions) error {
	cfg, err := loadConfig(g, o.config)
	if err != nil {
		return err
	}
	c, err := g.remote()
	if err != nil {
		return err
	}
	if c != nil && (o.checkpoints == "" || len(o.keys) == 0) {
		// Away from the server's host, the auditor brings the checkpoints
		// (a copy the operators cannot rewrite) and the public key.
		return usageError(errors.New("verifying a server's log: give --checkpoints (the sink's location) and --key (the public key that signs them)"))
	}
	src := cmp.Or(o.checkpoints, cfg.Audit.Sink, filepath.Join(g.dataDir, "audit-checkpoints"))
	sink, err := audit.OpenSink(src, []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)}, nil)
	if err != nil {
		return usageError(err)
	}
	keyFiles := o.keys
	if len(keyFiles) == 0 {
		if k := cfg.Resolve(cfg.Signing.Key); k != "" {
			keyFiles = []string{strings.TrimSuffix(k, ".key") + ".pub"}
		} else {
			keyFiles = []string{filepath.Join(sign.OwnKeyDir(g.dataDir), "socle.pub")}
		}
	}
	var keys []*sign.Verifier
	for _, k := range keyFiles {
		v, err := sign.LoadVerifierFile(k)
		if errors.Is(err, fs.ErrNotExist) && len(o.keys) == 0 {
			continue // no checkpoint was ever signed here
		}
		if err != nil {
			return fmt.Errorf("--key: %w", err)
		}
		keys = append(keys, v)
	}
	cps, err := sink.List(ctx)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading checkpoints from %s: %w", sink, err)
	}
	var rep audit.Report
	err = g.either(ctx, func(c *client.Client) (err error) {
		rep, err = audit.Verify(ctx, remoteAudit{c}, cps, keys)
		return err
	}, func(st store.Store) (err error) {
		rep, err = audit.Verify(ctx, st, cps, keys)
		return err
	})
	if err != nil {
		return err
	}
	if o.output == "json" {
		if err := writeJSON(g.out, rep); err != nil {
			return err
		}
	} else if rep.OK() {
		fmt.Fprintf(g.out, "audit log intact: %d events, last hash %s; %d checkpoints from %s verified\n",
			rep.Events, cmp.Or(rep.LastHash, "(empty log)"), rep.Checkpoints, sink)
	}
	if !rep.OK() {
		return &statusError{code: exitError, msg: "socle: the audit log does not verify:\n  " + strings.Join(rep.Problems, "\n  ")}
	}
	return nil
}

func newAuditCheckpointCmd(g *globals) *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign the audit log's head now and write it to the checkpoint sink (admin)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(g, cfgPath)
			if err != nil {
				return err
			}
			c, err := g.apiClient(cfg)
			if err != nil {
				return err
			}
			var out struct {
				Checkpoint audit.Signed `json:"checkpoint"`
				Sink       string       `json:"sink"`
			}
			if err := c.Do(cmd.Context(), "POST", "/api/v1/audit/checkpoints", nil, &out); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "checkpoint at event %d (%s) written to %s\n", out.Checkpoint.Seq, out.Checkpoint.Head, out.Sink)
			return nil
		},
	}
	configFlag(cmd.Flags(), &cfgPath)
	return cmd
}
