package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// Errors callers branch on; the server maps them to 401 and 403.
var (
	ErrUnauthenticated = errors.New("a valid token is required")
	ErrForbidden       = errors.New("the token's role does not allow this")
)

// tokenPrefix marks socle tokens, so that secret scanners recognise them.
const tokenPrefix = "socle_"

// Roles lists the roles in increasing power.
var Roles = []string{store.RoleViewer, store.RoleDeveloper, store.RoleApprover, store.RoleAdmin}

func rank(role string) int {
	for i, r := range Roles {
		if r == role {
			return i + 1
		}
	}
	return 0
}

// ValidRole reports whether role is one of Roles.
func ValidRole(role string) bool { return rank(role) > 0 }

// Allows reports whether a token with role have may do what needs want.
func Allows(have, want string) bool { return rank(have) >= rank(want) && rank(want) > 0 }

// Principal is who a request acts as.
type Principal struct {
	TokenID string
	// User is the person acting ("" for a service token).
	User string
	Name string
	Role string
	// Repositories limit where the principal may push (empty: anywhere).
	Repositories []string
	// Session is the dashboard session the request came with, if any.
	Session string
}

// Actor names who acts: the user, else the token's name, else the token.
// Approvals count distinct actors.
func (p Principal) Actor() string {
	switch {
	case p.User != "":
		return p.User
	case p.Name != "":
		return p.Name
	}
	return "token " + p.TokenID
}

// String names the principal in audit records.
func (p Principal) String() string {
	switch {
	case p.Session != "":
		return p.User + " (session " + p.Session + ")"
	case p.User != "" && p.Name != "":
		return p.User + " (token " + p.Name + ", " + p.TokenID + ")"
	case p.User != "":
		return p.User + " (token " + p.TokenID + ")"
	case p.Name != "":
		return p.Name + " (token " + p.TokenID + ")"
	}
	return "token " + p.TokenID
}

// Hash returns the stored form of a secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// TokenStore is the part of the store tokens live in.
type TokenStore interface {
	CreateToken(ctx context.Context, t store.Token) error
	TokenByHash(ctx context.Context, hash []byte) (store.Token, error)
	TouchToken(ctx context.Context, id string, at time.Time) error
}

// Spec describes a token to make.
type Spec struct {
	// User owns the token; Name labels it ("" for a service token with a
	// name only).
	User string
	Name string
	Role string
	// TTL bounds its life (0: no expiry).
	TTL time.Duration
	// Repositories scope its pushes (empty: every repository).
	Repositories []string
}

// Create makes a token and returns its secret, which is not kept.
func Create(ctx context.Context, st TokenStore, spec Spec, now time.Time) (secret string, tok store.Token, err error) {
	name, role, ttl := spec.Name, spec.Role, spec.TTL
	if !ValidRole(role) {
		return "", store.Token{}, fmt.Errorf("unknown role %q (want one of %s)", role, strings.Join(Roles, ", "))
	}
	idBytes := make([]byte, 6)
	secretBytes := make([]byte, 24)
	if _, err := rand.Read(idBytes); err != nil {
		return "", store.Token{}, err
	}
	if _, err := rand.Read(secretBytes); err != nil {
		return "", store.Token{}, err
	}
	id := hex.EncodeToString(idBytes)
	secret = tokenPrefix + id + "_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secretBytes))
	tok = store.Token{ID: id, User: spec.User, Name: name, Role: role, Hash: Hash(secret), CreatedAt: now.UTC(), Repositories: spec.Repositories}
	if ttl > 0 {
		tok.ExpiresAt = now.Add(ttl).UTC()
	}
	if err := st.CreateToken(ctx, tok); err != nil {
		return "", store.Token{}, err
	}
	return secret, tok, nil
}

// Authenticator checks secrets against the store. It remembers a token
// it read for CacheTTL, so that a busy API does not read the store on
// every request: a revocation takes effect within that time.
type Authenticator struct {
	st  TokenStore
	now func() time.Time
	// CacheTTL is how long a token read from the store is trusted
	// (default 5s; 0 after construction disables the cache).
	CacheTTL time.Duration

	mu    sync.Mutex
	cache map[string]cachedToken
}

type cachedToken struct {
	tok store.Token
	at  time.Time
}

// maxCachedTokens bounds the cache; it is emptied when full.
const maxCachedTokens = 10000

// NewAuthenticator returns an Authenticator.
func NewAuthenticator(st TokenStore) *Authenticator {
	return &Authenticator{st: st, now: time.Now, CacheTTL: 5 * time.Second, cache: map[string]cachedToken{}}
}

// token returns the stored token of a hash, from the cache when fresh.
func (a *Authenticator) token(ctx context.Context, h []byte) (store.Token, error) {
	key := string(h)
	now := a.now()
	if a.CacheTTL > 0 {
		a.mu.Lock()
		c, ok := a.cache[key]
		a.mu.Unlock()
		if ok && now.Sub(c.at) < a.CacheTTL {
			return c.tok, nil
		}
	}
	t, err := a.st.TokenByHash(ctx, h)
	if err != nil || a.CacheTTL <= 0 {
		return t, err
	}
	a.mu.Lock()
	if a.cache == nil || len(a.cache) >= maxCachedTokens {
		a.cache = map[string]cachedToken{}
	}
	a.cache[key] = cachedToken{tok: t, at: now}
	a.mu.Unlock()
	return t, nil
}

// Authenticate returns the principal of a secret, or ErrUnauthenticated.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (Principal, error) {
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) > 200 {
		return Principal{}, ErrUnauthenticated
	}
	h := Hash(secret)
	t, err := a.token(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return Principal{}, ErrUnauthenticated
	}
	if err != nil {
		return Principal{}, err
	}
	if subtle.ConstantTimeCompare(t.Hash, h) != 1 {
		return Principal{}, ErrUnauthenticated
	}
	now := a.now()
	if !t.RevokedAt.IsZero() || (!t.ExpiresAt.IsZero() && now.After(t.ExpiresAt)) {
		return Principal{}, ErrUnauthenticated
	}
	if now.Sub(t.LastUsed) > time.Minute {
		_ = a.st.TouchToken(ctx, t.ID, now)
		a.mu.Lock()
		if c, ok := a.cache[string(h)]; ok {
			c.tok.LastUsed = now
			a.cache[string(h)] = c
		}
		a.mu.Unlock()
	}
	return Principal{TokenID: t.ID, User: t.User, Name: t.Name, Role: t.Role, Repositories: t.Repositories}, nil
}

// Require checks that p may act with role want.
func Require(p Principal, want string) error {
	if !Allows(p.Role, want) {
		return fmt.Errorf("%w: %s has role %s, %s needed", ErrForbidden, p, p.Role, want)
	}
	return nil
}

type principalKey struct{}

// WithPrincipal returns a context carrying the request's principal.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal a request acts as.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// BootstrapStore lists tokens and makes the first one.
type BootstrapStore interface {
	AuditedTokenStore
	ListTokens(ctx context.Context) ([]store.Token, error)
}

// BootstrapAdmin makes the first admin token when the store has none,
// and writes it to DIR/admin-token, readable only by the user: never to
// a log. It returns what a start banner says about it ("" when there is
// nothing to say).
func BootstrapAdmin(ctx context.Context, st BootstrapStore, dir string, now time.Time) (string, error) {
	toks, err := st.ListTokens(ctx)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "admin-token")
	if len(toks) > 0 {
		if _, err := os.Stat(path); err == nil {
			return "in " + path, nil
		}
		return "", nil
	}
	secret, _, err := Issue(ctx, st, Spec{Name: "bootstrap admin", Role: store.RoleAdmin}, "socle serve (first start)", now)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return "written to " + path + " (make more with socle token create)", nil
}

// AuditedTokenStore is a TokenStore that also revokes tokens and keeps
// the audit log.
type AuditedTokenStore interface {
	TokenStore
	RevokeToken(ctx context.Context, id string, at time.Time) error
	AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error)
}

// Issue makes a token, as Create does, and records it in the audit log
// (never its secret): who made it, for whom, with what role and scope.
func Issue(ctx context.Context, st AuditedTokenStore, spec Spec, by string, now time.Time) (string, store.Token, error) {
	secret, tok, err := Create(ctx, st, spec, now)
	if err != nil {
		return "", tok, err
	}
	details, _ := json.Marshal(map[string]any{"id": tok.ID, "user": tok.User, "name": tok.Name, "role": tok.Role,
		"repositories": tok.Repositories, "expires": tok.ExpiresAt})
	if _, err := st.AppendAudit(ctx, store.AuditEvent{At: now.UTC(), Actor: by, Action: "token.create", Subject: "token " + tok.ID, Details: details}); err != nil {
		// A token the log does not know is not handed out.
		_ = st.RevokeToken(ctx, tok.ID, now)
		return "", store.Token{}, err
	}
	return secret, tok, nil
}

// Revoke revokes a token and records it in the audit log.
func Revoke(ctx context.Context, st AuditedTokenStore, id, by string, now time.Time) error {
	if err := st.RevokeToken(ctx, id, now); err != nil {
		return err
	}
	_, err := st.AppendAudit(ctx, store.AuditEvent{At: now.UTC(), Actor: by, Action: "token.revoke", Subject: "token " + id, Details: []byte(`{}`)})
	return err
}
