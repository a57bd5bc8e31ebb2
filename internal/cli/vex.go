package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

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
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			now := time.Now()
			images, closed := 0, 0
			for offset := 0; ; offset += 1000 {
				imgs, err := st.Images(ctx, store.ImageFilter{Limit: 1000, Offset: offset})
				if err != nil {
					return err
				}
				for _, im := range imgs {
					rows, err := st.ImageFindings(ctx, im.Digest)
					if err != nil {
						return err
					}
					_, suppressed := v.Apply(im.Digest, vuln.FromStore(rows))
					byReason := map[string][]store.FindingKey{}
					for _, f := range suppressed {
						for _, adv := range f.Advisories {
							byReason[f.Suppressed] = append(byReason[f.Suppressed], store.FindingKey{AdvisoryID: adv, Package: f.Package.Name})
						}
					}
					n := 0
					for reason, keys := range byReason {
						c, err := st.CloseFindings(ctx, im.Digest, keys, store.CloseVEX+": "+reason, now)
						if err != nil {
							return err
						}
						n += c
					}
					if n > 0 {
						images++
						closed += n
					}
				}
				if len(imgs) < 1000 {
					break
				}
			}
			fmt.Fprintf(g.out, "%d statements: closed %d findings in %d images\n", v.Len(), closed, images)
			return nil
		},
	}
	cmd.AddCommand(apply)
	return cmd
}
