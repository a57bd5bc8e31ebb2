package cli

import (
	"cmp"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/store"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The append-only, hash-chained audit log"}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check the hash chain of the whole audit log; any edited, removed or inserted row breaks it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			return g.withStore(ctx, func(st store.Store) error {
				prev, seq, n := "", int64(0), 0
				for {
					evs, err := st.AuditEvents(ctx, seq, 5000)
					if err != nil {
						return err
					}
					if len(evs) == 0 {
						break
					}
					if prev, seq, err = store.VerifyAuditChain(prev, seq, evs); err != nil {
						return err
					}
					n += len(evs)
				}
				fmt.Fprintf(g.out, "audit log intact: %d events, last hash %s\n", n, cmp.Or(prev, "(empty log)"))
				return nil
			})
		},
	}
	var after int64
	var limit int
	show := &cobra.Command{
		Use:   "log",
		Short: "Print audit events",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var evs []store.AuditEvent
			err := g.withStore(cmd.Context(), func(st store.Store) (err error) {
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
	cmd.AddCommand(verify, show)
	return cmd
}
