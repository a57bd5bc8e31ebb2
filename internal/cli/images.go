package cli

import (
	"context"
	"os"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
)

// newScanner returns the scanner of the command line commands: the
// extractors, the store's layer cache and the command's logger.
func newScanner(g *globals, st store.Store) (*scan.Scanner, error) {
	an, err := sbom.NewAnalyzer(sbom.WithTempDir(os.TempDir()))
	if err != nil {
		return nil, err
	}
	return scan.New(st, an, scan.WithLogger(g.logger)), nil
}

// inventoryImage opens ref and inventories it through the layer cache.
// The returned source is closed; its names (Repository, Tag) remain.
func inventoryImage(ctx context.Context, sc *scan.Scanner, ref oci.ImageRef, sopts source.Options, progress func(scan.Progress)) (*sbom.Inventory, *source.Image, error) {
	img, err := source.Open(ctx, ref, sopts)
	if err != nil {
		return nil, nil, err
	}
	defer img.Close()
	inv, err := sc.Inventory(ctx, img, progress)
	return inv, img, err
}
