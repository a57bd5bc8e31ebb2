package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

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
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			var docs []string
			for _, p := range args {
				b, _ := os.ReadFile(p)
				sum := sha256.Sum256(b)
				docs = append(docs, filepath.Base(p)+"@sha256:"+hex.EncodeToString(sum[:]))
			}
			res, err := vuln.ApplyStored(ctx, st, v, docs, "cli:"+currentUser(), time.Now())
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
