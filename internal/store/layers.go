package store

import (
	"context"
	"time"
)

// LayerCache keeps the analysis of each layer, by DiffID.
type LayerCache interface {
	// LoadLayerAnalysis returns the stored analysis, or nil data and a
	// nil error when there is none.
	LoadLayerAnalysis(ctx context.Context, diffID string) ([]byte, error)
	// StoreLayerAnalysis records an analysis, replacing any other.
	StoreLayerAnalysis(ctx context.Context, diffID string, data []byte) error
	// ClaimLayer takes a lease on analysing a layer, so that two servers
	// sharing one database never read the same layer at once. It
	// returns false when another owner holds an unexpired lease.
	ClaimLayer(ctx context.Context, diffID, owner string, lease time.Duration) (bool, error)
	// ReleaseLayer drops owner's lease.
	ReleaseLayer(ctx context.Context, diffID, owner string) error
	// LayerCount returns how many layer analyses are stored.
	LayerCount(ctx context.Context) (int, error)
}
