package store

import (
	"context"
	"time"
)

// Build is one build of a catalog image.
type Build struct {
	ID         int64
	Name       string
	Repository string
	Digest     string
	// Tag is the immutable tag; Tags every tag pushed (floating too).
	Tag  string
	Tags []string
	// Parent is the parent's reference and ParentDigest what it
	// resolved to for this build.
	Parent       string
	ParentDigest string
	// Inputs hashes what the catalog said and the files it named.
	Inputs string
	// Packages are name → version for assembled images.
	Packages map[string]string
	// Reasons are why the build ran.
	Reasons []string
	// Status is succeeded, failed or skipped; Error says why not.
	Status     string
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	By         string
}

// Build statuses.
const (
	BuildSucceeded = "succeeded"
	BuildFailed    = "failed"
	BuildSkipped   = "skipped"
)

// Builds records catalog builds.
type Builds interface {
	// RecordBuild appends a build and returns its ID.
	RecordBuild(ctx context.Context, b Build) (int64, error)
	// LastBuild returns the newest successful build of a catalog image,
	// or ErrNotFound.
	LastBuild(ctx context.Context, name string) (Build, error)
	// BuildHistory returns the builds of a catalog image (every image
	// when name is ""), newest first.
	BuildHistory(ctx context.Context, name string, limit int) ([]Build, error)
}
