package store

import (
	"context"
	"time"
)

// Advisory is one OSV record and what matching needs of it.
type Advisory struct {
	ID        string
	Modified  time.Time
	Published time.Time
	// Withdrawn is zero unless the advisory was withdrawn.
	Withdrawn time.Time
	Aliases   []string
	Summary   string
	// Severity is CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN; Score its CVSS
	// base score, when one is known.
	Severity string
	Score    float64
	// Source names the feed or file the record came from.
	Source string
	// Ratings are the severities the record itself states, by the
	// source it speaks for.
	Ratings []Rating
	// Raw is the record as OSV JSON.
	Raw      []byte
	Affected []Affected
}

// Affected is one package an advisory names, with the ranges and
// versions that decide whether a version is affected, in an encoding the
// vuln package owns.
type Affected struct {
	Ecosystem string
	Name      string
	Spec      []byte
}

// PackageName is an (OSV ecosystem, package name) pair.
type PackageName struct {
	Ecosystem string
	Name      string
}

// UpsertResult says what an UpsertAdvisories call changed.
type UpsertResult struct {
	Added, Updated, Unchanged int
	// Changed lists the advisories added or updated.
	Changed []string
	// Packages lists every package named by a changed advisory, before or
	// after the change: the packages whose matches must be recomputed.
	Packages []PackageName
}

// AffectedRow is an Affected entry with the advisory facts findings show.
type AffectedRow struct {
	AdvisoryID string
	Ecosystem  string
	Name       string
	Spec       []byte
	Withdrawn  bool
	Severity   string
	Score      float64
	Aliases    []string
	Summary    string
	Modified   time.Time
	Published  time.Time
	RatingFacts
}

// EcosystemStat summarises the advisories for one ecosystem.
type EcosystemStat struct {
	Ecosystem string
	Records   int
	Withdrawn int
	// NewestModified is the latest "modified" time among the records.
	NewestModified time.Time
	Sources        []string
}

// Feed is the state of one advisory source.
type Feed struct {
	Name string
	// Kind is how the feed is read: "file", "osv-zip", "osv-dir", "git",
	// "alpine-secdb", "bundled".
	Kind        string
	URL         string
	Records     int
	LastAttempt time.Time
	LastSuccess time.Time
	// LastError is empty after a successful sync.
	LastError string
	// Cursor is the feed's own change marker (an ETag, a commit).
	Cursor string
}

// Advisories stores OSV records.
type Advisories interface {
	// UpsertAdvisories inserts or replaces records. A record whose
	// Modified time and Raw content are unchanged is counted as
	// Unchanged and not written.
	UpsertAdvisories(ctx context.Context, advs []Advisory) (UpsertResult, error)
	// Advisory returns one record by ID, with Raw and Affected.
	Advisory(ctx context.Context, id string) (Advisory, error)
	// ResolveAdvisoryIDs returns the IDs of the records whose ID or
	// aliases include id, or nil.
	ResolveAdvisoryIDs(ctx context.Context, id string) ([]string, error)
	// AffectedFor returns the affected entries for a package. An entry
	// for an ecosystem without a release ("Debian") applies to every
	// release ("Debian:12") and is returned for it.
	AffectedFor(ctx context.Context, ecosystem, name string) ([]AffectedRow, error)
	// AdvisoryStats summarises the store by ecosystem.
	AdvisoryStats(ctx context.Context) ([]EcosystemStat, error)
	// PutFeed records the state of a feed.
	PutFeed(ctx context.Context, f Feed) error
	// Feeds lists every feed.
	Feeds(ctx context.Context) ([]Feed, error)
	// AdvisoryCount returns the number of records.
	AdvisoryCount(ctx context.Context) (int, error)
	// AdvisoryGeneration returns a number that changes whenever a record
	// is added, updated or removed, by any process sharing the store, so
	// that caches of advisories know when to drop.
	AdvisoryGeneration(ctx context.Context) (int64, error)
}
