package store

import (
	"context"
	"time"
)

// Remediation statuses.
const (
	// RemediationApplied: built, verified and pushed.
	RemediationApplied = "applied"
	// RemediationRejected: built, but verification found it removes no
	// finding or adds one; nothing was pushed.
	RemediationRejected = "rejected"
	// RemediationNone: no fix exists yet; socle keeps watching.
	RemediationNone = "no-fix-yet"
	// RemediationFailed: the build or push failed.
	RemediationFailed = "failed"
)

// Remediation is one attempt to carry fixes to a new digest.
type Remediation struct {
	ID int64
	// Image is the catalog image, Repository where it lives.
	Image      string
	Repository string
	// Strategy is rebuild, rebase, git or none.
	Strategy string
	From, To string
	// Fixes are the advisories the new digest no longer has; Added the
	// ones it brought (a rejected remediation has some).
	Fixes  []string
	Added  []string
	Status string
	Detail string
	At     time.Time
	By     string
}

// Remediations records remediations, each with its audit event.
type Remediations interface {
	RecordRemediation(ctx context.Context, r Remediation, ev AuditEvent) (int64, error)
	ListRemediations(ctx context.Context, image string, limit int) ([]Remediation, error)
}
