package scan

import (
	"context"
	"fmt"

	"github.com/socle-dev/socle/internal/store"
)

// PackageLister finds the stored versions of a package.
type PackageLister interface {
	PackagesNamed(ctx context.Context, ecosystem, name string) ([]store.PackageRow, error)
}

// ReevalStats counts what a re-evaluation touched.
type ReevalStats struct {
	Names    int
	Versions int
	Changes  store.FindingChanges
}

// Reevaluate rematches every stored version of the named packages: the
// work after advisories change, proportional to the packages they name,
// with no layer read again.
func (s *Scanner) Reevaluate(ctx context.Context, lister PackageLister, names []store.PackageName) (ReevalStats, error) {
	var st ReevalStats
	var all []store.PackageRow
	for _, n := range names {
		rows, err := lister.PackagesNamed(ctx, n.Ecosystem, n.Name)
		if err != nil {
			return st, fmt.Errorf("packages named %s/%s: %w", n.Ecosystem, n.Name, err)
		}
		st.Names++
		all = append(all, rows...)
	}
	st.Versions = len(all)
	ch, err := s.Rematch(ctx, all)
	st.Changes = ch
	return st, err
}

// ReevaluateWith returns the re-evaluation a feed sync runs after
// records changed: Reevaluate over lister, reporting the versions
// touched and the findings changed.
func (s *Scanner) ReevaluateWith(lister PackageLister) func(ctx context.Context, names []store.PackageName) (int, store.FindingChanges, error) {
	return func(ctx context.Context, names []store.PackageName) (int, store.FindingChanges, error) {
		re, err := s.Reevaluate(ctx, lister, names)
		return re.Versions, re.Changes, err
	}
}
