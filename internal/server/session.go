package server

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/web"
)

// signIn holds how people sign in to the dashboard.
type signIn struct {
	publicURL string
	proxies   []*net.IPNet
	// cookieKey signs the OIDC state cookie; replicas share it through
	// the store.
	cookieKey []byte
	oidc      *config.OIDC
	secret    string

	mu       sync.Mutex
	provider *oidc.Provider
}

func newSignIn(ctx context.Context, a config.Auth, meta metaStore) (*signIn, error) {
	si := &signIn{publicURL: strings.TrimSuffix(a.PublicURL, "/"), oidc: a.OIDC}
	for _, c := range a.TrustedProxies {
		if _, n, err := net.ParseCIDR(c); err == nil {
			si.proxies = append(si.proxies, n)
		}
	}
	key, err := sharedKey(ctx, meta, "cookie_key")
	if err != nil {
		return nil, err
	}
	si.cookieKey = key
	if si.oidc != nil {
		si.secret = os.Getenv(si.oidc.ClientSecretEnv)
	}
	return si, nil
}

// metaStore keeps small shared settings.
type metaStore interface {
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
}

// sharedKey returns a random key kept in the store, made on first use.
func sharedKey(ctx context.Context, meta metaStore, name string) ([]byte, error) {
	v, err := meta.GetMeta(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if v == "" {
		v = randomHex(32)
		if err := meta.SetMeta(ctx, name, v); err != nil {
			return nil, err
		}
		// Another replica may have written its own first: read back.
		if v, err = meta.GetMeta(ctx, name); err != nil {
			return nil, err
		}
	}
	return []byte(v), nil
}

// secureRequest reports whether cookies of this request must be Secure:
// served over TLS, behind a trusted proxy that says so, or whenever the
// public URL is https.
func (si *signIn) secureRequest(r *http.Request) bool {
	if r.TLS != nil || strings.HasPrefix(si.publicURL, "https://") {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil || r.Header.Get("X-Forwarded-Proto") != "https" {
		return false
	}
	return slices.ContainsFunc(si.proxies, func(n *net.IPNet) bool { return n.Contains(ip) })
}

func (s *API) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: s.signIn.secureRequest(r)}
	switch {
	case value == "":
		c.MaxAge = -1
	case maxAge > 0:
		c.MaxAge = int(maxAge.Seconds())
	}
	http.SetCookie(w, c)
}

// loginPage shows the sign-in form, with a CSRF token bound to this
// browser, and the identity provider's button when one is configured.
func (s *API) loginPage(w http.ResponseWriter, r *http.Request) {
	s.renderLogin(w, r, http.StatusOK, safeNext(r.URL.Query().Get("next")), "")
}

func (s *API) renderLogin(w http.ResponseWriter, r *http.Request, code int, next, msg string) {
	token := randomHex(16)
	s.setCookie(w, r, loginCookie, token, 30*time.Minute)
	page := web.LoginPage{Next: next, Error: msg, CSRF: token}
	if s.signIn.oidc != nil {
		page.OIDC = s.signIn.oidc.Issuer
	}
	s.render(w, r, code, "login", "Sign in", page)
}

// loginCSRF checks the sign-in form's token against its cookie.
func loginCSRF(r *http.Request) bool {
	c, err := r.Cookie(loginCookie)
	return err == nil && sameSecret(r.PostFormValue("csrf"), c.Value)
}

// login checks a pasted token and opens a session: the cookie holds the
// session's secret, never the token.
func (s *API) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	next := safeNext(r.PostFormValue("next"))
	if !loginCSRF(r) {
		s.renderLogin(w, r, http.StatusBadRequest, next, "The sign-in form expired: try again.")
		return
	}
	p, err := s.auth.Authenticate(r.Context(), strings.TrimSpace(r.PostFormValue("token")))
	if err != nil {
		s.log.Info("dashboard sign-in refused", "remote", r.RemoteAddr)
		s.renderLogin(w, r, http.StatusUnauthorized, next, "That token is not valid.")
		return
	}
	s.startSession(w, r, p.Actor(), p.Role, "token:"+p.TokenID, next)
}

// startSession opens a session, audits the sign-in, and goes to next.
func (s *API) startSession(w http.ResponseWriter, r *http.Request, user, role, source, next string) {
	secret, se, err := s.sessions.Start(r.Context(), user, role, source, r.RemoteAddr)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if err := s.audit(r.Context(), user+" (session "+se.ID+")", "auth.signin", user, map[string]any{"session": se.ID, "role": role, "source": source}); err != nil {
		s.sessions.Revoke(r.Context(), se.ID)
		s.pageError(w, r, err)
		return
	}
	s.log.Info("dashboard sign-in", "user", user, "role", role, "source", source, "session", se.ID)
	s.setCookie(w, r, loginCookie, "", 0)
	s.setCookie(w, r, sessionCookie, secret, s.sessions.Absolute)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session (CSRF-checked by requirePage).
func (s *API) logout(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	if p.Session != "" {
		if err := s.sessions.Revoke(r.Context(), p.Session); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.pageError(w, r, err)
			return
		}
		if err := s.audit(r.Context(), p.String(), "auth.signout", p.User, map[string]any{"session": p.Session}); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	s.setCookie(w, r, sessionCookie, "", 0)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// audit appends an event of the API's own.
func (s *API) audit(ctx context.Context, actor, action, subject string, details map[string]any) error {
	b, err := json.Marshal(details)
	if err != nil {
		return err
	}
	_, err = s.st.AppendAudit(ctx, store.AuditEvent{At: s.now().UTC(), Actor: actor, Action: action, Subject: subject, Details: b})
	return err
}

// oidcState is what the signed state cookie carries across the round
// trip to the identity provider.
type oidcState struct {
	State    string    `json:"s"`
	Nonce    string    `json:"n"`
	Verifier string    `json:"v"`
	Next     string    `json:"x"`
	Expires  time.Time `json:"e"`
}

func (si *signIn) seal(st oidcState) string {
	b, _ := json.Marshal(st)
	mac := hmac.New(sha256.New, si.cookieKey)
	mac.Write(b)
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (si *signIn) open(v string) (oidcState, bool) {
	var st oidcState
	body, sig, ok := strings.Cut(v, ".")
	if !ok {
		return st, false
	}
	b, err1 := base64.RawURLEncoding.DecodeString(body)
	got, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return st, false
	}
	mac := hmac.New(sha256.New, si.cookieKey)
	mac.Write(b)
	if !hmac.Equal(got, mac.Sum(nil)) || json.Unmarshal(b, &st) != nil || time.Now().After(st.Expires) {
		return st, false
	}
	return st, true
}

// oauth returns the provider and the OAuth2 configuration, discovering
// the provider on first use (with a deadline).
func (si *signIn) oauth(ctx context.Context, r *http.Request) (*oidc.Provider, *oauth2.Config, error) {
	si.mu.Lock()
	defer si.mu.Unlock()
	if si.provider == nil {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		p, err := oidc.NewProvider(dctx, si.oidc.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("discovering the identity provider %s: %w", si.oidc.Issuer, err)
		}
		si.provider = p
	}
	base := si.publicURL
	if base == "" {
		scheme := "http"
		if si.secureRequest(r) {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	scopes := si.oidc.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	return si.provider, &oauth2.Config{
		ClientID: si.oidc.ClientID, ClientSecret: si.secret, Endpoint: si.provider.Endpoint(),
		RedirectURL: base + "/auth/callback", Scopes: scopes,
	}, nil
}

// oidcLogin sends the browser to the identity provider, with state,
// nonce and a PKCE challenge kept in a signed, short-lived cookie.
func (s *API) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if s.signIn.oidc == nil {
		s.pageError(w, r, fmt.Errorf("no identity provider is configured: %w", store.ErrNotFound))
		return
	}
	_, oc, err := s.signIn.oauth(r.Context(), r)
	if err != nil {
		s.log.Error("OIDC sign-in", "err", err)
		s.renderLogin(w, r, http.StatusBadGateway, "/", "The identity provider cannot be reached.")
		return
	}
	st := oidcState{State: randomHex(16), Nonce: randomHex(16), Verifier: oauth2.GenerateVerifier(),
		Next: safeNext(r.URL.Query().Get("next")), Expires: time.Now().Add(10 * time.Minute)}
	s.setCookie(w, r, oidcCookie, s.signIn.seal(st), 10*time.Minute)
	http.Redirect(w, r, oc.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusFound)
}

// oidcCallback ends the round trip: the state matches, the code is
// exchanged, the ID token verified (signature, issuer, audience, nonce),
// and the person's groups mapped to a role.
func (s *API) oidcCallback(w http.ResponseWriter, r *http.Request) {
	refuse := func(code int, msg string, err error) {
		s.log.Info("OIDC sign-in refused", "reason", msg, "err", err, "remote", r.RemoteAddr)
		s.renderLogin(w, r, code, "/", msg)
	}
	if s.signIn.oidc == nil {
		refuse(http.StatusNotFound, "No identity provider is configured.", nil)
		return
	}
	c, err := r.Cookie(oidcCookie)
	if err != nil {
		refuse(http.StatusBadRequest, "The sign-in expired: try again.", err)
		return
	}
	st, ok := s.signIn.open(c.Value)
	if !ok || !sameSecret(r.URL.Query().Get("state"), st.State) {
		refuse(http.StatusBadRequest, "The sign-in expired: try again.", nil)
		return
	}
	s.setCookie(w, r, oidcCookie, "", 0)
	if e := r.URL.Query().Get("error"); e != "" {
		refuse(http.StatusUnauthorized, "The identity provider refused the sign-in.", errors.New(e))
		return
	}
	p, oc, err := s.signIn.oauth(r.Context(), r)
	if err != nil {
		refuse(http.StatusBadGateway, "The identity provider cannot be reached.", err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	tok, err := oc.Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		refuse(http.StatusUnauthorized, "The identity provider did not confirm the sign-in.", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: s.signIn.oidc.ClientID}).Verify(ctx, raw)
	if err != nil || !sameSecret(idt.Nonce, st.Nonce) {
		refuse(http.StatusUnauthorized, "The identity provider's answer did not verify.", err)
		return
	}
	claims, err := s.signIn.claims(ctx, p, oc, tok, idt)
	if err != nil {
		refuse(http.StatusUnauthorized, "The identity provider's answer did not verify.", err)
		return
	}
	user, role := s.signIn.person(claims)
	if user == "" || role == "" {
		refuse(http.StatusForbidden, "Your groups grant no role in socle.", fmt.Errorf("user %q", user))
		return
	}
	s.startSession(w, r, user, role, "oidc:"+s.signIn.oidc.Issuer, st.Next)
}

// claims are the ID token's claims, completed from the provider's
// userinfo endpoint when the ID token lacks the user or groups claim
// (providers may keep profile claims out of the ID token). The ID
// token's own claims win, and userinfo must be about the same subject.
func (si *signIn) claims(ctx context.Context, p *oidc.Provider, oc *oauth2.Config, tok *oauth2.Token, idt *oidc.IDToken) (map[string]any, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	o := si.oidc
	_, hasGroups := claims[cmp.Or(o.GroupsClaim, "groups")]
	_, hasUser := claims[cmp.Or(o.UserClaim, "preferred_username")]
	if (hasGroups && hasUser) || p.UserInfoEndpoint() == "" {
		return claims, nil
	}
	ui, err := p.UserInfo(ctx, oc.TokenSource(ctx, tok))
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	if ui.Subject != idt.Subject {
		return nil, fmt.Errorf("userinfo is about %q, the ID token about %q", ui.Subject, idt.Subject)
	}
	var extra map[string]any
	if err := ui.Claims(&extra); err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	for k, v := range extra {
		if _, ok := claims[k]; !ok {
			claims[k] = v
		}
	}
	return claims, nil
}

// person reads who signed in and their highest role from ID token
// claims.
func (si *signIn) person(claims map[string]any) (user, role string) {
	o := si.oidc
	for _, k := range []string{o.UserClaim, "preferred_username", "email", "sub"} {
		if v, ok := claims[k].(string); k != "" && ok && v != "" {
			user = v
			break
		}
	}
	var groups []string
	switch v := claims[cmp.Or(o.GroupsClaim, "groups")].(type) {
	case string:
		groups = []string{v}
	case []any:
		for _, g := range v {
			if s, ok := g.(string); ok {
				groups = append(groups, s)
			}
		}
	}
	for _, g := range groups {
		if r, ok := o.Roles[g]; ok && (role == "" || auth.Allows(r, role)) {
			role = r
		}
	}
	return user, role
}

// sessionJSON is a session as the API lists it: never its secret.
type sessionJSON struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
	Source    string    `json:"source"`
	Remote    string    `json:"remote"`
	CreatedAt time.Time `json:"created_at"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Live      bool      `json:"live"`
}

// apiSessions lists sessions: an admin's request sees everyone's,
// another only its user's.
func (s *API) apiSessions(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	user := r.URL.Query().Get("user")
	if !auth.Allows(p.Role, store.RoleAdmin) {
		user = p.Actor()
	}
	ss, err := s.sessions.List(r.Context(), user)
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]sessionJSON, 0, len(ss))
	for _, se := range ss {
		out = append(out, sessionJSON{ID: se.ID, User: se.User, Role: se.Role, Source: se.Source, Remote: se.Remote,
			CreatedAt: se.CreatedAt, LastSeen: se.LastSeen, ExpiresAt: se.ExpiresAt, RevokedAt: se.RevokedAt, Live: s.sessions.Live(se)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// apiRevokeSession ends a session: an admin any, anyone their own.
func (s *API) apiRevokeSession(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	id := r.PathValue("id")
	if !auth.Allows(p.Role, store.RoleAdmin) {
		own, err := s.sessions.List(r.Context(), p.Actor())
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		if !slices.ContainsFunc(own, func(se store.Session) bool { return se.ID == id }) {
			s.apiError(w, r, fmt.Errorf("%w: only an admin revokes another person's session", auth.ErrForbidden))
			return
		}
	}
	if err := s.sessions.Revoke(r.Context(), id); err != nil {
		s.apiError(w, r, err)
		return
	}
	if err := s.audit(r.Context(), p.String(), "session.revoke", id, map[string]any{"session": id}); err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "revoked"})
}
