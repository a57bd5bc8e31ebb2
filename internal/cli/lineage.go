package cli

import (
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/spf13/cobra"
)

func newLineageCmd(g *globals) *cobra.Command {
	var image imageOptions
	var output string
	cmd := &cobra.Command{
		Use:   "lineage REF",
		Short: "Print an image's chain of bases down to the OS image",
		Long: `lineage finds each base by the OCI annotations org.opencontainers.image.base.*
(checked against the layers) and by layer-prefix matching against the images
socle knows. The image is inventoried and stored first if socle has not
seen it; scan or build the bases so that they are known.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := textOrJSON(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			ref, err := oci.ParseImageRef(args[0])
			if err != nil {
				return usageError(err)
			}
			sopts, err := image.sourceOptions(g.dataDir)
			if err != nil {
				return err
			}
			st, err := g.openStore(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			sc, err := newScanner(g, st)
			if err != nil {
				return err
			}
			inv, img, err := sc.InventoryRef(ctx, ref, sopts, nil)
			if err != nil {
				return err
			}
			if err := sc.Index(ctx, inv, img.Repository); err != nil {
				return err
			}
			links, err := catalog.Lineage(ctx, st, inv.Digest)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(g.out, links)
			}
			catalog.WriteLineage(g.out, links)
			return nil
		},
	}
	image.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
