package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
)

type sbomOptions struct {
	image    imageOptions
	output   string
	file     string
	progress bool
}

func newSBOMCmd(g *globals) *cobra.Command {
	o := &sbomOptions{}
	cmd := &cobra.Command{
		Use:   "sbom REF",
		Short: "Write an image's SBOM as CycloneDX 1.6 or SPDX 2.3 JSON",
		Long: `Write the software bill of materials of an image, with the layer that
introduced each package. REF takes the same forms as in socle scan.`,
		Example: `  socle sbom docker-archive:alpine.tar.gz
  socle sbom -o spdx --file app.spdx.json registry.example/app:1.2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSBOM(cmd.Context(), g, o, args[0])
		},
	}
	cmd.AddCommand(newSBOMImportCmd(g))
	o.image.AddFlags(cmd.Flags())
	cmd.Flags().StringVarP(&o.output, "output", "o", "cyclonedx", "format: cyclonedx or spdx")
	cmd.Flags().StringVar(&o.file, "file", "", "write to this file instead of standard output")
	cmd.Flags().BoolVar(&o.progress, "progress", isTerminal(os.Stderr), "show layer progress on standard error")
	return cmd
}

func runSBOM(ctx context.Context, g *globals, o *sbomOptions, refArg string) error {
	if o.output != "cyclonedx" && o.output != "spdx" {
		return usageError(fmt.Errorf("--output %q: want cyclonedx or spdx", o.output))
	}
	ref, err := oci.ParseImageRef(refArg)
	if err != nil {
		return usageError(err)
	}
	sopts, err := o.image.sourceOptions(g.dataDir)
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
	var progress func(scan.Progress)
	if o.progress {
		progress = progressPrinter(g.errOut)
	}
	inv, img, err := sc.InventoryRef(ctx, ref, sopts, progress)
	if err != nil {
		return err
	}
	name := sbom.ImageName{Repository: img.Repository, Tag: img.Tag}
	return writeTo(g.out, o.file, func(w io.Writer) error {
		if o.output == "spdx" {
			return sbom.WriteSPDX(w, sbom.SPDX(inv, name))
		}
		return sbom.WriteCycloneDX(w, sbom.CycloneDX(inv, name))
	})
}
