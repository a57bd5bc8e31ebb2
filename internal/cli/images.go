package cli

import (
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/store"
)

// newScanner returns the scanner of the command line commands: the
// default analyzer, the store's layer cache and the command's logger.
func newScanner(g *globals, st store.Store) (*scan.Scanner, error) {
	return scan.NewWithAnalyzer(st, scan.WithLogger(g.logger))
}
