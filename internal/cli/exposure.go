package cli

import (
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/remediate"
	"github.com/socle-dev/socle/internal/store"
	"github.com/spf13/cobra"
)

func newExposureCmd(g *globals) *cobra.Command {
	var cfgPath, output string
	cmd := &cobra.Command{
		Use:   "exposure [ENV...]",
		Short: "Per environment: open fixable findings, the age of the oldest, the mean time to remediate",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := textOrJSON(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			envs := args
			if len(envs) == 0 {
				if cfg, err := loadConfig(g, cfgPath); err == nil {
					for _, e := range cfg.Environments {
						envs = append(envs, e.Name)
					}
				}
			}
			var ex []remediate.EnvExposure
			err := g.either(ctx, func(c *client.Client) error {
				var body struct {
					Environments []remediate.EnvExposure `json:"environments"`
				}
				q := url.Values{}
				for _, e := range args {
					q.Add("environment", e)
				}
				err := c.Do(ctx, "GET", "/api/v1/exposure?"+q.Encode(), nil, &body)
				ex = body.Environments
				return err
			}, func(st store.Store) (err error) {
				ex, err = remediate.Exposure(ctx, st, envs, time.Now())
				return err
			})
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(g.out, ex)
			}
			return writeExposure(g.out, ex)
		},
	}
	configFlag(cmd.Flags(), &cfgPath)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func writeExposure(w io.Writer, ex []remediate.EnvExposure) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tIMAGES\tOPEN FIXABLE\tOLDEST\tREMEDIATED\tMTTR")
	for _, e := range ex {
		oldest := "-"
		if e.Oldest != nil {
			oldest = fmt.Sprintf("%s (%s in %s)", days(e.OldestAge), e.Oldest.Advisory, e.Oldest.Repository)
		}
		mttr := "-"
		if e.Remediated > 0 {
			mttr = days(e.MTTR)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\n", e.Environment, e.Images, len(e.Open), oldest, e.Remediated, mttr)
	}
	return tw.Flush()
}

func days(d time.Duration) string {
	if d < 48*time.Hour {
		return fmt.Sprintf("%.1fh", d.Hours())
	}
	return fmt.Sprintf("%.1fd", d.Hours()/24)
}
