package server

import (
	"context"
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
)

const (
	sessionCookie = "socle_session"
	// loginCookie carries the sign-in form's CSRF token, and oidcCookie
	// the state of an OIDC sign-in under way, signed.
	loginCookie = "socle_login"
	oidcCookie  = "socle_oidc"
)

var errNotFoundRoute = fmt.Errorf("no such API route: %w", store.ErrNotFound)

// credential finds how a request authenticates: an API token (bearer,
// or a basic-auth password), or the dashboard's session cookie.
func credential(r *http.Request) (token, session string) {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t), ""
		}
		if _, pass, ok := r.BasicAuth(); ok {
			return pass, ""
		}
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		return "", c.Value
	}
	return "", ""
}

type csrfKey struct{}

// authenticate resolves the principal and checks the role and, for
// state-changing requests made with a session, its CSRF token.
func (s *API) authenticate(r *http.Request, role string) (auth.Principal, *http.Request, error) {
	token, session := credential(r)
	var p auth.Principal
	var err error
	switch {
	case token != "":
		p, err = s.auth.Authenticate(r.Context(), token)
	case session != "":
		var se store.Session
		p, se, err = s.sessions.Resolve(r.Context(), session)
		if err == nil {
			r = r.WithContext(context.WithValue(r.Context(), csrfKey{}, se.CSRF))
			if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameSecret(csrfSent(r), se.CSRF) {
				return p, r, errBadRequest("missing or wrong CSRF token")
			}
		}
	default:
		err = auth.ErrUnauthenticated
	}
	if err != nil {
		return p, r, err
	}
	return p, r, auth.Require(p, role)
}

func csrfSent(r *http.Request) string {
	if v := r.Header.Get("X-Socle-CSRF"); v != "" {
		return v
	}
	return r.PostFormValue("csrf")
}

func sameSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// csrfOf is the CSRF token of the request's session, for forms.
func csrfOf(r *http.Request) string {
	v, _ := r.Context().Value(csrfKey{}).(string)
	return v
}

// requireAPI protects an API route: failures are JSON errors.
func (s *API) requireAPI(role string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, r, err := s.authenticate(r, role)
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
		p, r, err := s.authenticate(r, role)
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

// safeNext keeps redirects on this site: a path of printable characters
// that starts with one "/" and names no other host, however written.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || next[0] != '/' {
		return "/"
	}
	for _, c := range next {
		if c <= ' ' || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(next, "//") {
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
