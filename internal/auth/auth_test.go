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
