package store

import (
	"context"
	"time"
)

// ImportedSBOM is an SBOM another tool made of an image, kept to compare
// with socle's own inventory of it.
type ImportedSBOM struct {
	Digest     string
	Format     string
	Tools      string
	ImportedAt time.Time
	// Packages are its packages as "name version" lines, sorted.
	Packages []string
}

// ImportedSBOMs keeps the SBOMs imported for images.
type ImportedSBOMs interface {
	PutImportedSBOM(ctx context.Context, s ImportedSBOM) error
	ImportedSBOMs(ctx context.Context, digest string) ([]ImportedSBOM, error)
}
