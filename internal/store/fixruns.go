package store

import (
	"context"
	"time"
)

// Fix run states.
const (
	FixRunning          = "running"
	FixPaused           = "paused"
	FixCancelled        = "cancelled"
	FixDone             = "done"
	FixFailed           = "failed"
	FixAwaitingApproval = "awaiting_approval"
)

// FixRun is the closed loop for advisories that opened fixable findings:
// each step with its time, from the feed sync to the fixed digests
// running.
type FixRun struct {
	ID         int64     `json:"id"`
	Advisories []string  `json:"advisories"`
	Status     string    `json:"status"`
	StartedAt  time.Time `json:"started_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Detail says why a run stopped.
	Detail string    `json:"detail,omitempty"`
	Steps  []FixStep `json:"steps"`
	// Fixed are the fixed digests, "repository@digest", by catalog image.
	Fixed map[string]string `json:"fixed,omitempty"`
}

// FixStep is one step of a fix run.
type FixStep struct {
	At          time.Time `json:"at"`
	Name        string    `json:"name"`
	Environment string    `json:"environment,omitempty"`
	Image       string    `json:"image,omitempty"`
	OK          bool      `json:"ok"`
	Detail      string    `json:"detail,omitempty"`
}

// FixRuns keeps fix runs.
type FixRuns interface {
	CreateFixRun(ctx context.Context, r FixRun) (int64, error)
	// AppendFixStep adds a step and sets the run's time.
	AppendFixStep(ctx context.Context, id int64, s FixStep) error
	// UpdateFixRun sets a run's status, detail and fixed digests.
	UpdateFixRun(ctx context.Context, id int64, status, detail string, fixed map[string]string, at time.Time) error
	// FixRun returns one run, or ErrNotFound.
	FixRun(ctx context.Context, id int64) (FixRun, error)
	// FixRuns lists the newest runs first.
	FixRuns(ctx context.Context, limit int) ([]FixRun, error)
}
