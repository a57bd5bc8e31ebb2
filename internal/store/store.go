package store

import (
	"context"
	"errors"
)

// All, given as a Limit, asks for every row. A Limit of 0 asks for the
// method's default page.
const All = -1

// Errors a caller may branch on.
var (
	// ErrNotFound is returned when the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a write would break a uniqueness or
	// state rule (an approval given twice, a tag moved concurrently).
	ErrConflict = errors.New("conflict")
)

// Store is everything socle keeps. Implementations must be safe for
// concurrent use by several goroutines and, for PostgreSQL, by several
// processes.
type Store interface {
	LayerCache
	Advisories
	Images
	Matches
	Findings
	Jobs
	Tokens
	Sessions
	Audit
	Deployments
	Inventory
	ImportedSBOMs
	Ratings
	VEXDocuments
	ImageChecks
	FixRuns
	Promotions
	Remediations
	Builds
	Meta
	// Close releases the database.
	Close() error
	// Backend names the implementation ("sqlite", "postgres").
	Backend() string
	// Ping checks the database answers.
	Ping(ctx context.Context) error
	// DataGeneration returns a value that changes whenever images, tags,
	// deployments, matches, findings or advisories change, in any process
	// sharing the store: the key of caches of answers derived from them.
	DataGeneration(ctx context.Context) (string, error)
	// Warm readies conns of the database connections, and the store's
	// caches, for the questions asked most: it asks an image's findings
	// of the newest images and loads what "affected by" answers show of
	// each image.
	Warm(ctx context.Context, conns int) error
}
