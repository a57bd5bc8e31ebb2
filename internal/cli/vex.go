package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

func newVEXCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "vex", Short: "OpenVEX statements about stored images"}
	apply := &cobra.Command{
		Use:   "apply FILE...",
		Short: "Close the stored findings OpenVEX documents declare not_affected or fixed",
		Long: `apply reads OpenVEX documents and closes, in every stored image they name (by
digest or package URL), the open findings whose status is not_affected or
fixed, with the reason "vex: STATUS: JUSTIFICATION". Those findings stay
closed when advisories are matched again. socle scan --vex applies VEX to one
scan without storing anything.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			v, err := loadVEX(args)
			if err != nil {
				return err
			}
			var docs []string
			var raw []json.RawMessage
			for _, p := range args {
				b, _ := os.ReadFile(p)
				sum := sha256.Sum256(b)
				docs = append(docs, filepath.Base(p)+"@sha256:"+hex.EncodeToString(sum[:]))
				raw = append(raw, b)
			}
			var res vuln.VEXResult
			err = g.either(ctx, func(c *client.Client) error {
				return c.Do(ctx, "POST", "/api/v1/vex", map[string]any{"documents": raw, "names": docs}, &res)
			}, func(st store.Store) (err error) {
				res, err = vuln.ApplyStored(ctx, st, v, docs, "cli:"+currentUser(), time.Now())
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.out, "%d statements: closed %d findings in %d images\n", res.Statements, res.Closed, res.Images)
			return nil
		},
	}
	cmd.AddCommand(apply)
	return cmd
}
