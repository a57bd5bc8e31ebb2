package store

import (
	"context"
	"time"
)

// Session is a dashboard sign-in. The cookie's secret is never stored,
// only its hash.
type Session struct {
	// ID names the session in lists and revocations; it is not the secret.
	ID   string
	Hash []byte
	// User and Role are who signed in and what they may do; Source how
	// ("token:ID" or "oidc:ISSUER").
	User   string
	Role   string
	Source string
	// CSRF is the token the session's forms must send back.
	CSRF      string
	CreatedAt time.Time
	LastSeen  time.Time
	// ExpiresAt is the absolute end of the session.
	ExpiresAt time.Time
	RevokedAt time.Time
	Remote    string
}

// Sessions stores dashboard sessions by the hash of their secret.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error
	// SessionByHash returns the session with that secret hash.
	SessionByHash(ctx context.Context, hash []byte) (Session, error)
	// TouchSession records activity, which keeps an idle session alive.
	TouchSession(ctx context.Context, id string, at time.Time) error
	// RevokeSession ends a session; ErrNotFound when it is unknown or
	// already revoked.
	RevokeSession(ctx context.Context, id string, at time.Time) error
	// ListSessions returns the sessions of user (every user when ""),
	// newest first, revoked and expired ones included.
	ListSessions(ctx context.Context, user string, limit int) ([]Session, error)
}
