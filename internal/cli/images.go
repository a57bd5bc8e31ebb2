package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/store"
)

// imageRow is an image as GET /api/v1/images shows it.
type imageRow struct {
	Digest       string         `json:"digest"`
	Repository   string         `json:"repository"`
	Tags         []string       `json:"tags"`
	Environments []string       `json:"environments"`
	Packages     int            `json:"packages"`
	Open         map[string]int `json:"open"`
	Fixable      map[string]int `json:"fixable"`
}

func newImagesCmd(g *globals) *cobra.Command {
	var repo, output string
	var limit int
	cmd := &cobra.Command{
		Use:   "images",
		Short: "The images socle knows, newest scan first, with their open and fixable findings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := textOrJSON(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			var rows []imageRow
			err := g.either(ctx, func(c *client.Client) error {
				var body struct {
					Images []imageRow `json:"images"`
				}
				q := url.Values{"limit": {strconv.Itoa(limit)}}
				if repo != "" {
					q.Set("repository", repo)
				}
				err := c.Do(ctx, "GET", "/api/v1/images?"+q.Encode(), nil, &body)
				rows = body.Images
				return err
			}, func(st store.Store) error {
				imgs, err := st.Images(ctx, store.ImageFilter{Repository: repo, Limit: limit})
				for _, im := range imgs {
					rows = append(rows, imageRow{Digest: im.Digest, Repository: im.Repository, Tags: im.Tags, Environments: im.Environments,
						Packages: im.Packages, Open: im.Open, Fixable: im.Fixable})
				}
				return err
			})
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(g.out, rows)
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tTAGS\tENVIRONMENTS\tPACKAGES\tCRITICAL\tHIGH\tFIXABLE")
			for _, r := range rows {
				fixable := 0
				for _, n := range r.Fixable {
					fixable += n
				}
				fmt.Fprintf(tw, "%s@%s\t%s\t%s\t%d\t%d\t%d\t%d\n", r.Repository, oci.ShortDigest(r.Digest), dash(strings.Join(r.Tags, ",")),
					dash(strings.Join(r.Environments, ",")), r.Packages, r.Open["CRITICAL"], r.Open["HIGH"], fixable)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&repo, "repository", "", "only this repository (host/path)")
	cmd.Flags().IntVar(&limit, "limit", 1000, "images shown")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// affectedRow is a row of GET /api/v1/affected.
type affectedRow struct {
	Digest       string   `json:"digest"`
	Repository   string   `json:"repository"`
	Environments []string `json:"environments"`
	Advisory     string   `json:"advisory"`
	Package      string   `json:"package"`
	Version      string   `json:"version"`
	FixedVersion string   `json:"fixed_version"`
	Severity     string   `json:"severity"`
}

func newAffectedCmd(g *globals) *cobra.Command {
	var pkg, env, output string
	cmd := &cobra.Command{
		Use:   "affected [ADVISORY]",
		Short: "Which images (and environments) an advisory, or a package, affects",
		Example: `  socle affected CVE-2024-6119
  socle affected --package openssl --environment prod`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := textOrJSON(output); err != nil {
				return err
			}
			advisory := ""
			if len(args) == 1 {
				advisory = args[0]
			}
			if (advisory == "") == (pkg == "") {
				return usageError(errors.New("give an advisory, or --package NAME"))
			}
			rows, err := affectedRows(cmd.Context(), g, advisory, pkg)
			if err != nil {
				return err
			}
			if env != "" {
				kept := rows[:0]
				for _, r := range rows {
					if slices.Contains(r.Environments, env) {
						kept = append(kept, r)
					}
				}
				rows = kept
			}
			if output == "json" {
				return writeJSON(g.out, rows)
			}
			tw := tabwriter.NewWriter(g.out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tENVIRONMENTS\tADVISORY\tSEVERITY\tPACKAGE\tFIXED IN")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s@%s\t%s\t%s\t%s\t%s %s\t%s\n", r.Repository, oci.ShortDigest(r.Digest), dash(strings.Join(r.Environments, ",")),
					r.Advisory, dash(r.Severity), r.Package, r.Version, dash(r.FixedVersion))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&pkg, "package", "", "a package name instead of an advisory")
	cmd.Flags().StringVar(&env, "environment", "", "only images running in this environment")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func affectedRows(ctx context.Context, g *globals, advisory, pkg string) ([]affectedRow, error) {
	var rows []affectedRow
	err := g.either(ctx, func(c *client.Client) error {
		var body struct {
			Affected []affectedRow `json:"affected"`
		}
		q := url.Values{"limit": {"10000"}}
		if advisory != "" {
			q.Set("advisory", advisory)
		} else {
			q.Set("package", pkg)
		}
		err := c.Do(ctx, "GET", "/api/v1/affected?"+q.Encode(), nil, &body)
		rows = body.Affected
		return err
	}, func(st store.Store) error {
		res, err := st.AffectedImages(ctx, store.AffectedQuery{Advisory: advisory, Package: pkg, Limit: store.All})
		for _, a := range res.Rows {
			rows = append(rows, affectedRow{Digest: a.Digest, Repository: a.Repository, Environments: a.Environments, Advisory: a.AdvisoryID,
				Package: a.Package.Name, Version: a.Package.Version, FixedVersion: a.FixedVersion, Severity: a.Severity})
		}
		return err
	})
	return rows, err
}
