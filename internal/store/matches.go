package store

import (
	"context"
	"sort"
	"time"
)

// PackageMatch is one advisory that affects a package version.
type PackageMatch struct {
	AdvisoryID string
	// FixedVersion is the first version that fixes it, or empty.
	FixedVersion string
}

// Matches keeps, for each stored package version, the advisories that
// affect it: the index every query about exposure reads.
type Matches interface {
	// PackagesNamed returns the stored versions of a package. An
	// ecosystem without a release ("Debian") selects every release.
	PackagesNamed(ctx context.Context, ecosystem, name string) ([]PackageRow, error)
	// SetPackageMatches replaces the advisories matched to a package and
	// opens or closes the findings of every image holding it. A finding
	// whose advisory no longer matches is closed with closeReasons[id],
	// or "no longer affected" when the map has no entry. at is the time
	// recorded.
	SetPackageMatches(ctx context.Context, pkgID int64, matches []PackageMatch, closeReasons map[string]string, at time.Time) (FindingChanges, error)
	// SetMatches applies several SetPackageMatches updates in one
	// transaction: what indexing an image or re-evaluating after an
	// advisory sync does for many package versions at once.
	SetMatches(ctx context.Context, updates []MatchUpdate, at time.Time) (FindingChanges, error)
	// PackageMatches returns the advisories matched to a package.
	PackageMatches(ctx context.Context, pkgID int64) ([]PackageMatch, error)
}

// MatchUpdate is the new set of advisories matched to one package version.
type MatchUpdate struct {
	PackageID    int64
	Matches      []PackageMatch
	CloseReasons map[string]string
}

// FindingChanges counts the findings a write opened and closed.
type FindingChanges struct {
	Opened, Closed int
	// OpenedFixable counts the opened findings whose advisory names a
	// fixed version.
	OpenedFixable int
	// Images lists the images whose findings changed, at most
	// MaxChangedImages of them, in digest order; ImagesTruncated is true
	// when there may be more.
	Images          []string
	ImagesTruncated bool
}

// Add adds o's counts and images to c, keeping at most MaxChangedImages
// distinct images.
func (c *FindingChanges) Add(o FindingChanges) {
	c.Opened += o.Opened
	c.OpenedFixable += o.OpenedFixable
	c.Closed += o.Closed
	c.ImagesTruncated = c.ImagesTruncated || o.ImagesTruncated
	seen := make(map[string]bool, len(c.Images))
	for _, d := range c.Images {
		seen[d] = true
	}
	for _, d := range o.Images {
		if seen[d] {
			continue
		}
		if len(c.Images) >= MaxChangedImages {
			c.ImagesTruncated = true
			break
		}
		seen[d] = true
		c.Images = append(c.Images, d)
	}
	sort.Strings(c.Images)
}

// MaxChangedImages bounds FindingChanges.Images: a change to a base
// image's package touches every image of the fleet, and the list is for
// people and webhooks, not an export.
const MaxChangedImages = 1000
