package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/sbom"
)

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print socle's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(g.out, "socle %s (%s, %s/%s)\n", sbom.ToolVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, d := range bi.Deps {
					switch d.Path {
					case "github.com/google/osv-scalibr", "github.com/google/go-containerregistry":
						fmt.Fprintf(g.out, "  %s %s\n", d.Path, d.Version)
					}
				}
			}
			return nil
		},
	}
}
