package store

import (
	"context"
	"time"
)

// Job is a unit of background work.
type Job struct {
	ID   int64
	Kind string
	// Key deduplicates jobs: a second enqueue of a key already pending
	// or running is ignored.
	Key     string
	Payload []byte
	State   string // pending, running, done, failed
	Owner   string
	// LeaseUntil is when a running job's owner is presumed dead.
	LeaseUntil time.Time
	Attempts   int
	Error      string
	Done       int
	Total      int
	Message    string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Job states.
const (
	JobPending = "pending"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Jobs is a durable work queue shared by every server on one database.
type Jobs interface {
	// EnqueueJob adds a job unless one with the same key is pending or
	// running; it returns the job's ID and whether it was added.
	EnqueueJob(ctx context.Context, kind, key string, payload []byte) (int64, bool, error)
	// ClaimJob takes the oldest pending job of the given kinds, or a
	// running one whose lease expired, for owner; nil when none. Two
	// callers never claim the same job.
	ClaimJob(ctx context.Context, owner string, kinds []string, lease time.Duration) (*Job, error)
	// ExtendJob renews owner's lease and records progress.
	ExtendJob(ctx context.Context, id int64, owner string, lease time.Duration, done, total int, msg string) error
	// FinishJob ends a job as done (err empty) or failed. A failed job
	// with retry and attempts left is made pending again, and claimed no
	// sooner than retryAfter from now.
	FinishJob(ctx context.Context, id int64, owner string, errMsg string, retry bool, retryAfter time.Duration) error
	// Jobs lists recent jobs, newest first.
	Jobs(ctx context.Context, limit int) ([]Job, error)
	// JobByID returns one job.
	JobByID(ctx context.Context, id int64) (Job, error)
}
