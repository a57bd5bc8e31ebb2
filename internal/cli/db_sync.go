package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/feeds"
	"github.com/socle-dev/socle/internal/notify"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// newSyncer syncs feeds into st and re-evaluates what they change.
func newSyncer(g *globals, st store.Store) (*feeds.Syncer, error) {
	sc, err := newScanner(g, st)
	if err != nil {
		return nil, err
	}
	syncer := feeds.NewSyncer(st, g.dataDir, sc.ReevaluateWith(st), g.logger)
	syncer.ApplyVEX = vuln.NewStoredVEX(st).Hook
	return syncer, nil
}

func newDBSyncCmd(g *globals) *cobra.Command {
	var cfgPath, output string
	cmd := &cobra.Command{
		Use:   "sync [FEEDS...]",
		Short: "Pull the advisory feeds of socle.yaml, incrementally, and re-evaluate stored images",
		Long: `sync reads each feed under feeds: in socle.yaml (or only those named):
a Git repository of OSV records (git+https://..., git+file://..., or a URL
ending in .git) is fetched and only the files changed since the last synced
commit are read; an HTTP(S) OSV zip or JSON is downloaded only when its ETag
or Last-Modified changed; a local path is read and only changed records are
written. Stored images holding a package a changed record names are matched
again, without reading a layer. A feed that fails keeps its last good data.
socle serve syncs the feeds on their interval.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := textOrJSON(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			if c, err := g.remote(); err != nil || c != nil {
				if err != nil {
					return err
				}
				return remoteSync(ctx, g, c, args)
			}
			cfg, err := loadConfig(g, cfgPath)
			if err != nil {
				return err
			}
			list := cfg.Feeds
			if len(args) > 0 {
				list = nil
				for _, f := range cfg.Feeds {
					if slices.Contains(args, f.Name) {
						list = append(list, f)
					}
				}
				if len(list) != len(args) {
					return usageError(fmt.Errorf("feeds %v: socle.yaml has %s", args, feedNames(cfg.Feeds)))
				}
			}
			if len(list) == 0 {
				return fmt.Errorf("%s declares no feeds: add a feeds: section (name, url)", cfg.Path())
			}
			st, err := g.sharedStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			s, err := newSyncer(g, st)
			if err != nil {
				return err
			}
			s.Notify = notify.FromConfig(cfg.Webhooks, g.logger).Func()
			var results []feeds.Result
			for _, f := range list {
				fmt.Fprintf(g.errOut, "syncing %s (%s)...\n", f.Name, feeds.KindOf(f.URL))
				r := s.Sync(ctx, f)
				fmt.Fprintf(g.errOut, "  %s: %.1fs\n", f.Name, r.Seconds)
				results = append(results, r)
			}
			if output == "json" {
				err = writeJSON(g.out, results)
			} else {
				writeSyncResults(g.out, results)
			}
			if err != nil {
				return err
			}
			for _, r := range results {
				if r.Error != "" {
					return &statusError{code: 1, msg: "some feeds failed; their last good data is kept"}
				}
			}
			return nil
		},
	}
	configFlag(cmd.Flags(), &cfgPath)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func feedNames(fs []config.Feed) string {
	var n []string
	for _, f := range fs {
		n = append(n, f.Name)
	}
	return strings.Join(n, ", ")
}

func writeSyncResults(w io.Writer, rs []feeds.Result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEED\tKIND\tFILES\tRECORDS\tADDED\tUPDATED\tUNCHANGED\tRE-EVALUATED\tOPENED\tCLOSED\tRESULT")
	for _, r := range rs {
		result := "ok"
		switch {
		case r.Error != "":
			result = "FAILED: " + r.Error
		case r.Unchanged:
			result = "no change at the source"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Feed, r.Kind, r.Files, r.Records, r.Added, r.Updated,
			r.UnchangedRecords, r.Reevaluated, r.Findings.Opened, r.Findings.Closed, result)
	}
	tw.Flush()
}

// remoteSync has the server sync its feeds, and follows the jobs.
func remoteSync(ctx context.Context, g *globals, c *client.Client, names []string) error {
	var q queued
	if err := c.Do(ctx, "POST", "/api/v1/feeds/sync", map[string]any{"feeds": names}, &q); err != nil {
		return err
	}
	failed := false
	for _, id := range q.Jobs {
		j, err := waitJob(ctx, g, c, id)
		if err != nil {
			failed = true
			fmt.Fprintln(g.errOut, err)
			continue
		}
		fmt.Fprintf(g.out, "%s: %s\n", strings.TrimPrefix(j.Key, "feed:"), j.Message)
	}
	if failed {
		return &statusError{code: 1, msg: "some feeds failed; their last good data is kept"}
	}
	return nil
}
