package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// SessionStore is the part of the store sessions live in.
type SessionStore interface {
	CreateSession(ctx context.Context, s store.Session) error
	SessionByHash(ctx context.Context, hash []byte) (store.Session, error)
	TouchSession(ctx context.Context, id string, at time.Time) error
	RevokeSession(ctx context.Context, id string, at time.Time) error
	ListSessions(ctx context.Context, user string, limit int) ([]store.Session, error)
}

// Sessions signs people in to the dashboard: a session's secret goes in
// the cookie, its hash in the store, with an idle and an absolute end.
// The API token a person signed in with never leaves the sign-in form.
type Sessions struct {
	st SessionStore
	// Idle and Absolute bound a session (defaults 2h and 12h).
	Idle, Absolute time.Duration
	// Now is the clock (time.Now by default).
	Now func() time.Time
}

// NewSessions returns the session manager of a store.
func NewSessions(st SessionStore, idle, absolute time.Duration) *Sessions {
	if idle <= 0 {
		idle = 2 * time.Hour
	}
	if absolute <= 0 {
		absolute = 12 * time.Hour
	}
	return &Sessions{st: st, Idle: idle, Absolute: absolute, Now: time.Now}
}

// sessionPrefix marks session secrets apart from API tokens.
const sessionPrefix = "socles_"

// Start opens a session for a person and returns its secret.
func (m *Sessions) Start(ctx context.Context, user, role, source, remote string) (string, store.Session, error) {
	if !ValidRole(role) {
		return "", store.Session{}, fmt.Errorf("unknown role %q", role)
	}
	id, err := randomString(9)
	if err != nil {
		return "", store.Session{}, err
	}
	raw, err := randomString(32)
	if err != nil {
		return "", store.Session{}, err
	}
	csrf, err := randomString(24)
	if err != nil {
		return "", store.Session{}, err
	}
	secret := sessionPrefix + raw
	now := m.Now().UTC()
	s := store.Session{ID: id, Hash: Hash(secret), User: user, Role: role, Source: source, CSRF: csrf,
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(m.Absolute), Remote: remote}
	if err := m.st.CreateSession(ctx, s); err != nil {
		return "", store.Session{}, err
	}
	return secret, s, nil
}

// Resolve returns the principal of a live session; an unknown, revoked,
// idle or expired one is ErrUnauthenticated.
func (m *Sessions) Resolve(ctx context.Context, secret string) (Principal, store.Session, error) {
	if !strings.HasPrefix(secret, sessionPrefix) || len(secret) > 200 {
		return Principal{}, store.Session{}, ErrUnauthenticated
	}
	h := Hash(secret)
	s, err := m.st.SessionByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, store.Session{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, store.Session{}, err
	}
	now := m.Now()
	switch {
	case subtle.ConstantTimeCompare(s.Hash, h) != 1, !s.RevokedAt.IsZero(),
		now.After(s.ExpiresAt), now.Sub(s.LastSeen) > m.Idle:
		return Principal{}, store.Session{}, ErrUnauthenticated
	}
	if now.Sub(s.LastSeen) > time.Minute {
		_ = m.st.TouchSession(ctx, s.ID, now)
	}
	return Principal{User: s.User, Name: s.User, Role: s.Role, Session: s.ID}, s, nil
}

// Revoke ends a session.
func (m *Sessions) Revoke(ctx context.Context, id string) error {
	return m.st.RevokeSession(ctx, id, m.Now().UTC())
}

// List returns the sessions of user, or of everyone for "".
func (m *Sessions) List(ctx context.Context, user string) ([]store.Session, error) {
	return m.st.ListSessions(ctx, user, 500)
}

// Live reports whether a listed session can still be used.
func (m *Sessions) Live(s store.Session) bool {
	now := m.Now()
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt) && now.Sub(s.LastSeen) <= m.Idle
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return strings.TrimRight(base64.RawURLEncoding.EncodeToString(b), "="), nil
}
