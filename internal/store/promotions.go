package store

import (
	"context"
	"time"
)

// Promotion states.
const (
	// PromotionAwaitingApproval waits for approvers; its gates passed
	// except the approval gate.
	PromotionAwaitingApproval = "awaiting-approval"
	// PromotionMoving: gates passed, the tag is being moved. A record
	// left in this state by a crash is settled by reconciliation: done
	// if the tag points at the digest, aborted otherwise.
	PromotionMoving  = "moving"
	PromotionDone    = "done"
	PromotionBlocked = "blocked"
	PromotionAborted = "aborted"
	PromotionFailed  = "failed"
)

// Promotion is one request to move an environment's tag to a digest.
type Promotion struct {
	ID int64
	// Repository is the source repository (host/path); Target is where
	// the environment's tag lives (the same, or a repository per
	// environment).
	Repository string
	Target     string
	Digest     string
	// Environment is where it goes; From the environment before it.
	Environment string
	From        string
	Tag         string
	// Previous is the digest the tag pointed at before.
	Previous string
	State    string
	// Kind is promote or rollback.
	Kind     string
	By       string
	Role     string
	Override bool
	// Evidence is a JSON document: the gate results.
	Evidence  []byte
	Note      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PromotionQuery selects promotions; empty fields match everything.
type PromotionQuery struct {
	Repository  string
	Target      string
	Environment string
	Digest      string
	States      []string
	// Limit (default 100; All for every one), newest first.
	Limit int
}

// Approval is one approver's consent to a promotion.
type Approval struct {
	PromotionID int64
	Approver    string
	Role        string
	At          time.Time
}

// Promotions records promotions. Every state change appends its audit
// event in the same transaction.
type Promotions interface {
	// CreatePromotion inserts p and its audit event; it returns the ID.
	// At most one promotion per target and environment is moving at a
	// time: a second one gets ErrConflict.
	CreatePromotion(ctx context.Context, p Promotion, ev AuditEvent) (int64, error)
	// TransitionPromotion moves a promotion from one state to another,
	// only if it is still in from (ErrConflict otherwise, or when it
	// would be a second one moving on the same tag); to done, it
	// also records the deployment. Evidence and note replace the old
	// ones when not empty.
	TransitionPromotion(ctx context.Context, id int64, from, to string, evidence []byte, note string, at time.Time, ev AuditEvent) error
	Promotion(ctx context.Context, id int64) (Promotion, error)
	ListPromotions(ctx context.Context, q PromotionQuery) ([]Promotion, error)
	// AddApproval records an approval (once per approver) with its audit
	// event and returns the approvals so far.
	AddApproval(ctx context.Context, a Approval, ev AuditEvent) ([]Approval, error)
	Approvals(ctx context.Context, id int64) ([]Approval, error)
	// PromotedDigests lists every done promotion and rollback, newest
	// first, without evidence: what admission decides from.
	PromotedDigests(ctx context.Context) ([]Promoted, error)
}

// Promoted is a digest that entered an environment's tag.
type Promoted struct {
	Target, Environment, Tag, Digest string
	At                               time.Time
}
