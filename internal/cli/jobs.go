package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/store"
	"github.com/spf13/cobra"
)

func newJobsCmd(g *globals) *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List background jobs (scans, syncs) with their progress",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var js []store.Job
			err := g.either(cmd.Context(), func(c *client.Client) error {
				var body struct {
					Jobs []store.Job `json:"jobs"`
				}
				err := c.Do(cmd.Context(), "GET", fmt.Sprintf("/api/v1/jobs?limit=%d", limit), nil, &body)
				js = body.Jobs
				return err
			}, func(st store.Store) (err error) {
				js, err = st.Jobs(cmd.Context(), limit)
				return err
			})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(g.out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tSTATE\tPROGRESS\tATTEMPTS\tSUBJECT\tMESSAGE")
			for _, j := range js {
				prog := "-"
				if j.Total > 0 {
					prog = fmt.Sprintf("%d/%d", j.Done, j.Total)
				}
				msg := j.Message
				if j.Error != "" {
					msg = j.Error
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", j.ID, j.Kind, j.State, prog, j.Attempts, j.Key, msg)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many of the newest jobs to show")
	return cmd
}
