package store

import (
	"context"
	"time"
)

// LayerCache keeps the analysis of each layer, by its verified DiffID,
// and which blob was verified to hold which DiffID. Nothing is stored
// for a layer whose bytes were not hashed: a claim an image's config
// makes is never a key on its own.
type LayerCache interface {
	// LayerDiffID returns the DiffID the blob digest was verified to
	// hold (the hash of its uncompressed bytes), or "" when the blob was
	// never verified.
	LayerDiffID(ctx context.Context, digest string) (string, error)
	// LoadLayerAnalysis returns the stored analysis of a verified DiffID,
	// or nil data and a nil error when there is none.
	LoadLayerAnalysis(ctx context.Context, diffID string) ([]byte, error)
	// StoreLayerAnalysis records, in one transaction, that the blob digest
	// was verified to hold diffID and the analysis of those bytes,
	// replacing any other analysis of diffID. Callers store only what
	// they hashed as they read it.
	StoreLayerAnalysis(ctx context.Context, digest, diffID string, data []byte) error
	// ClaimLayer takes a lease on reading a blob, so that two servers
	// sharing one database never read the same layer at once. It
	// returns false when another owner holds an unexpired lease.
	ClaimLayer(ctx context.Context, digest, owner string, lease time.Duration) (bool, error)
	// ReleaseLayer drops owner's lease.
	ReleaseLayer(ctx context.Context, digest, owner string) error
	// LayerCount returns how many layer analyses are stored.
	LayerCount(ctx context.Context) (int, error)
}
