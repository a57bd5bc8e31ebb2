package server

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/web"
)

const (
	tokenCookie = "socle_token"
	csrfCookie  = "socle_csrf"
)

var errNotFoundRoute = fmt.Errorf("no such API route: %w", store.ErrNotFound)

// credential finds the token of a request: a bearer token, or the
// dashboard's cookie. viaCookie tells them apart for CSRF checks.
func credential(r *http.Request) (secret string, viaCookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t), false
		}
		if _, pass, ok := r.BasicAuth(); ok {
			return pass, false
		}
	}
	if c, err := r.Cookie(tokenCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

// authenticate resolves the principal and checks the role and, for
// state-changing requests made with the cookie, the CSRF token.
func (s *API) authenticate(r *http.Request, role string) (auth.Principal, error) {
	secret, viaCookie := credential(r)
	if secret == "" {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	p, err := s.auth.Authenticate(r.Context(), secret)
	if err != nil {
		return auth.Principal{}, err
	}
	if err := auth.Require(p, role); err != nil {
		return p, err
	}
	if viaCookie && r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !validCSRF(r) {
			return p, errBadRequest("missing or wrong CSRF token")
		}
	}
	return p, nil
}

func validCSRF(r *http.Request) bool {
	c, err := r.Cookie(csrfCookie)
	if err != nil || c.Value == "" {
		return false
	}
	sent := r.Header.Get("X-Socle-CSRF")
	if sent == "" {
		sent = r.PostFormValue("csrf")
	}
	return subtle.ConstantTimeCompare([]byte(sent), []byte(c.Value)) == 1
}

// requireAPI protects an API route: failures are JSON errors.
func (s *API) requireAPI(role string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r, role)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		h(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// requirePage protects a dashboard page: an anonymous visitor is sent to
// the login page.
func (s *API) requirePage(role string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r, role)
		if errors.Is(err, auth.ErrUnauthenticated) {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		h(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

func (s *API) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", "Sign in", web.LoginPage{Next: safeNext(r.URL.Query().Get("next"))})
}

// login checks a pasted token and keeps it in an HttpOnly cookie.
func (s *API) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	secret := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(r.PostFormValue("next"))
	p, err := s.auth.Authenticate(r.Context(), secret)
	if err != nil {
		s.log.Info("dashboard sign-in refused", "remote", r.RemoteAddr)
		s.render(w, r, http.StatusUnauthorized, "login", "Sign in", web.LoginPage{Next: next, Error: "That token is not valid."})
		return
	}
	s.log.Info("dashboard sign-in", "principal", p.String())
	for _, c := range []*http.Cookie{
		{Name: tokenCookie, Value: secret, HttpOnly: true},
		{Name: csrfCookie, Value: randomHex(16)},
	} {
		c.Path, c.SameSite, c.Secure = "/", http.SameSiteStrictMode, s.secure
		http.SetCookie(w, c)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *API) logout(w http.ResponseWriter, r *http.Request) {
	if !validCSRF(r) {
		s.pageError(w, r, errBadRequest("missing or wrong CSRF token"))
		return
	}
	for _, n := range []string{tokenCookie, csrfCookie} {
		http.SetCookie(w, &http.Cookie{Name: n, Value: "", Path: "/", MaxAge: -1, SameSite: http.SameSiteStrictMode, Secure: s.secure})
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// safeNext keeps redirects on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}

// RegistryAuthorizer checks registry requests against the same tokens:
// viewers may pull, developers and above may push (where the token's
// repository scope allows), admins may delete.
type RegistryAuthorizer struct {
	Auth *auth.Authenticator
}

// Authorize implements registry.Authorizer.
func (a RegistryAuthorizer) Authorize(r *http.Request, access registry.Access) (registry.Principal, error) {
	secret, _ := credential(r)
	if secret == "" {
		return registry.Principal{}, registry.ErrUnauthenticated
	}
	p, err := a.Auth.Authenticate(r.Context(), secret)
	if errors.Is(err, auth.ErrUnauthenticated) {
		return registry.Principal{}, registry.ErrUnauthenticated
	}
	if err != nil {
		return registry.Principal{}, err
	}
	rp := registry.Principal{Name: p.String()}
	want := map[registry.Action]string{
		registry.ActionPull: store.RoleViewer, registry.ActionPush: store.RoleDeveloper, registry.ActionDelete: store.RoleAdmin,
	}[access.Action]
	if !auth.Allows(p.Role, want) {
		return rp, fmt.Errorf("%w: %s has role %s; to %s, %s is needed", registry.ErrDenied, p, p.Role, access.Action, want)
	}
	if access.Action == registry.ActionPush && access.Repository != "" && !inScope(p.Repositories, access.Repository) {
		return rp, fmt.Errorf("%w: %s may push only to %s", registry.ErrDenied, p, strings.Join(p.Repositories, ", "))
	}
	return rp, nil
}

// inScope reports whether repo matches one of a token's repository
// patterns; no pattern means every repository.
func inScope(patterns []string, repo string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, pat := range patterns {
		if oci.MatchRepository(pat, repo) {
			return true
		}
	}
	return false
}
