package auth_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
)

func TestCreateAndAuthenticate(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	secret, tok, err := auth.Create(ctx, st, auth.Spec{Name: "ci", Role: store.RoleDeveloper, TTL: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "socle_"+tok.ID+"_") {
		t.Fatalf("secret %q does not carry its id", secret)
	}
	a := auth.NewAuthenticator(st)
	p, err := a.Authenticate(ctx, secret)
	if err != nil || p.Role != store.RoleDeveloper || p.TokenID != tok.ID {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	for _, bad := range []string{"", "socle_", secret + "x", strings.Replace(secret, "socle_", "sócle_", 1)} {
		if _, err := a.Authenticate(ctx, bad); !errors.Is(err, auth.ErrUnauthenticated) {
			t.Errorf("Authenticate(%q) = %v", bad, err)
		}
	}
	// A token read within CacheTTL is not read again: a revocation
	// reaches an authenticator that cached it only when the TTL is over.
	cached := auth.NewAuthenticator(st)
	cached.CacheTTL = time.Hour
	if _, err := cached.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, tok.ID, now); err != nil {
		t.Fatal(err)
	}
	a.CacheTTL = 0
	if _, err := a.Authenticate(ctx, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revoked token accepted: %v", err)
	}
	if _, err := auth.NewAuthenticator(st).Authenticate(ctx, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revoked token accepted by a fresh authenticator: %v", err)
	}
	if _, err := cached.Authenticate(ctx, secret); err != nil {
		t.Fatalf("the cache was not used: %v", err)
	}
	expired, _, err := auth.Create(ctx, st, auth.Spec{Name: "old", Role: store.RoleViewer, TTL: time.Nanosecond}, now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, expired); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("expired token accepted: %v", err)
	}
	if _, _, err := auth.Create(ctx, st, auth.Spec{Name: "x", Role: "root"}, now); err == nil {
		t.Fatal("unknown role accepted")
	}
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		ok         bool
	}{
		{store.RoleAdmin, store.RoleApprover, true},
		{store.RoleApprover, store.RoleApprover, true},
		{store.RoleDeveloper, store.RoleApprover, false},
		{store.RoleViewer, store.RoleDeveloper, false},
		{"", store.RoleViewer, false},
		{store.RoleAdmin, "", false},
	} {
		if got := auth.Allows(tc.have, tc.want); got != tc.ok {
			t.Errorf("Allows(%q, %q) = %v", tc.have, tc.want, got)
		}
	}
}

// TestSessionBounds: a session ends when idle too long, and at its
// absolute end however busy; a revoked one at once.
func TestSessionBounds(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 5, 6, 9, 0, 0, 0, time.UTC)
	m := auth.NewSessions(st, time.Hour, 3*time.Hour)
	m.Now = func() time.Time { return now }
	secret, se, err := m.Start(ctx, "alice", store.RoleApprover, "test", "")
	if err != nil {
		t.Fatal(err)
	}
	// Busy every 50 minutes: alive until the absolute end.
	for i := 0; i < 3; i++ {
		now = now.Add(50 * time.Minute)
		if p, _, err := m.Resolve(ctx, secret); err != nil || p.User != "alice" || p.Session != se.ID {
			t.Fatalf("after %d visits: %+v %v", i, p, err)
		}
	}
	now = now.Add(40 * time.Minute) // 3h10 after sign-in
	if _, _, err := m.Resolve(ctx, secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("past the absolute end: %v", err)
	}
	idle, _, _ := m.Start(ctx, "bob", store.RoleViewer, "test", "")
	now = now.Add(61 * time.Minute)
	if _, _, err := m.Resolve(ctx, idle); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("idle an hour: %v", err)
	}
	revoked, rs, _ := m.Start(ctx, "carol", store.RoleViewer, "test", "")
	if err := m.Revoke(ctx, rs.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Resolve(ctx, revoked); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("revoked: %v", err)
	}
	if _, _, err := m.Resolve(ctx, "socle_"+secret); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("a token where a session goes: %v", err)
	}
}
