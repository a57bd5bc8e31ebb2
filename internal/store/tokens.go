package store

import (
	"context"
	"time"
)

// Roles a token may have, in increasing power.
const (
	RoleViewer    = "viewer"
	RoleDeveloper = "developer"
	RoleApprover  = "approver"
	RoleAdmin     = "admin"
)

// Token is an API credential. The secret itself is never stored.
type Token struct {
	ID string
	// User is the person the token belongs to ("" for a service token,
	// which acts as its Name).
	User string
	Name string
	Role string
	// Repositories, when set, are the repository patterns the token may
	// push to (registry.MatchRepository); empty means every repository.
	Repositories []string
	Hash         []byte
	CreatedAt    time.Time
	ExpiresAt    time.Time
	RevokedAt    time.Time
	LastUsed     time.Time
}

// Tokens stores API tokens by the hash of their secret.
type Tokens interface {
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash returns the token with that secret hash.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	ListTokens(ctx context.Context) ([]Token, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error
	TouchToken(ctx context.Context, id string, at time.Time) error
}
