package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

func newVEXCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "vex", Short: "VEX statements (OpenVEX, CSAF) about stored images"}
	apply := &cobra.Command{
		Use:   "apply FILE...",
		Short: "Keep VEX documents and close the findings they declare not_affected or fixed",
		Long: `apply reads OpenVEX or CSAF 2.0 VEX documents, keeps them, and closes, in every
stored image they name (by digest, package URL or CPE), the open findings whose
status is not_affected (CSAF: known_not_affected) or fixed, with the reason
"vex: STATUS: JUSTIFICATION". Those findings stay closed when advisories are
matched again, and the kept documents apply to every image stored later.
socle scan --vex applies VEX to one scan without storing anything.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if _, err := loadVEX(args); err != nil {
				return err
			}
			var docs []string
			var raw []json.RawMessage
			for _, p := range args {
				b, _ := os.ReadFile(p)
				docs = append(docs, filepath.Base(p)+"@"+oci.SHA256(b))
				raw = append(raw, b)
			}
			var res vuln.VEXResult
			err := g.either(ctx, func(c *client.Client) error {
				return c.Do(ctx, "POST", "/api/v1/vex", map[string]any{"documents": raw, "names": docs}, &res)
			}, func(st store.Store) (err error) {
				bs := make([][]byte, len(raw))
				for i := range raw {
					bs[i] = raw[i]
				}
				res, err = vuln.NewStoredVEX(st).KeepAndApply(ctx, bs, docs, "cli:"+currentUser())
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
