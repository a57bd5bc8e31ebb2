package cli

import (
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/oci"
)

// runningRow is a row of GET /api/v1/running.
type runningRow struct {
	Cluster     string    `json:"cluster"`
	Namespace   string    `json:"namespace"`
	Workload    string    `json:"workload"`
	Container   string    `json:"container"`
	Environment string    `json:"environment"`
	Repository  string    `json:"repository"`
	Digest      string    `json:"digest"`
	Pods        int       `json:"pods"`
	Since       time.Time `json:"since"`
	StoppedAt   time.Time `json:"stopped_at"`
	Drift       bool      `json:"drift"`
	Open        int       `json:"open"`
	Fixable     int       `json:"fixable"`
}

func newRunningCmd(g *globals) *cobra.Command {
	var cfgPath, env, cluster, output string
	var stopped bool
	cmd := &cobra.Command{
		Use:   "running",
		Short: "What runs in the watched clusters, the longest unchanged first (asks socle serve)",
		Long: `running lists the digests the clusters of clusters: run, per workload and
environment, as socle serve's pod watch records them: how long each has
run unchanged, its open fixable findings, and DRIFT when the digest was
never promoted to its environment. It exits 1 when there is drift.`,
		Example: `  socle running --environment prod
  SOCLE_SERVER=https://socle.example SOCLE_TOKEN=… socle running -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := textOrJSON(output); err != nil {
				return err
			}
			cfg, err := loadConfig(g, cfgPath)
			if err != nil {
				return err
			}
			c, err := g.apiClient(cfg)
			if err != nil {
				return err
			}
			q := url.Values{"environment": {env}, "cluster": {cluster}}
			if stopped {
				q.Set("stopped", "true")
			}
			var resp struct {
				Running []runningRow `json:"running"`
			}
			if err := c.Do(cmd.Context(), "GET", "/api/v1/running?"+q.Encode(), nil, &resp); err != nil {
				return err
			}
			drift := 0
			for _, r := range resp.Running {
				if r.Drift {
					drift++
				}
			}
			if output == "json" {
				if err := writeJSON(g.out, resp.Running); err != nil {
					return err
				}
			} else {
				printRunning(g, resp.Running)
			}
			if drift > 0 {
				return &statusError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	configFlag(f, &cfgPath)
	f.StringVar(&env, "environment", "", "only this environment")
	f.StringVar(&cluster, "cluster", "", "only this cluster")
	f.BoolVar(&stopped, "stopped", false, "include what stopped running")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printRunning(g *globals, rows []runningRow) {
	if len(rows) == 0 {
		fmt.Fprintln(g.out, "nothing runs in a watched cluster")
		return
	}
	tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tCLUSTER/NAMESPACE\tWORKLOAD\tCONTAINER\tIMAGE\tPODS\tUNCHANGED FOR\tFIXABLE\t")
	for _, r := range rows {
		state := ""
		if r.Drift {
			state = "DRIFT"
		}
		age := time.Since(r.Since).Truncate(time.Second).String()
		if !r.StoppedAt.IsZero() {
			age, state = "stopped "+r.StoppedAt.Format(time.RFC3339), "stopped"
		}
		fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s@%s\t%d\t%s\t%d\t%s\n", r.Environment, r.Cluster, r.Namespace, r.Workload, r.Container,
			r.Repository, oci.ShortDigest(r.Digest), r.Pods, age, r.Fixable, state)
	}
	tw.Flush()
}
