package server

import (
	"net/http"
	"time"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/store"
)

// tokenJSON is a token as the API lists it: never its secret or hash.
type tokenJSON struct {
	ID           string    `json:"id"`
	User         string    `json:"user,omitempty"`
	Name         string    `json:"name,omitempty"`
	Role         string    `json:"role"`
	Repositories []string  `json:"repositories,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
	LastUsed     time.Time `json:"last_used,omitzero"`
}

func toTokenJSON(t store.Token) tokenJSON {
	return tokenJSON{ID: t.ID, User: t.User, Name: t.Name, Role: t.Role, Repositories: t.Repositories,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, LastUsed: t.LastUsed}
}

// apiCreateToken makes a token (admin): its secret is in this answer
// only. Audited as token.create.
func (s *API) apiCreateToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		User         string   `json:"user"`
		Name         string   `json:"name"`
		Role         string   `json:"role"`
		Expires      string   `json:"expires"`
		Repositories []string `json:"repositories"`
	}
	if err := decodeBody(r, &body); err != nil {
		s.apiError(w, r, err)
		return
	}
	if !auth.ValidRole(body.Role) {
		s.apiError(w, r, errBadRequest("role: want viewer, developer, approver or admin"))
		return
	}
	var ttl time.Duration
	if body.Expires != "" {
		d, err := time.ParseDuration(body.Expires)
		if err != nil || d <= 0 {
			s.apiError(w, r, errBadRequest("expires: a positive duration such as 720h"))
			return
		}
		ttl = d
	}
	for _, p := range body.Repositories {
		if err := oci.ValidRepositoryPattern(p); err != nil {
			s.apiError(w, r, errBadRequest("repositories: "+err.Error()))
			return
		}
	}
	p, _ := auth.PrincipalFrom(r.Context())
	secret, tok, err := auth.Issue(r.Context(), s.st, auth.Spec{User: body.User, Name: body.Name, Role: body.Role, TTL: ttl, Repositories: body.Repositories},
		p.String(), s.now())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"secret": secret, "token": toTokenJSON(tok)})
}

func (s *API) apiTokens(w http.ResponseWriter, r *http.Request) {
	toks, err := s.st.ListTokens(r.Context())
	if err != nil {
		s.apiError(w, r, err)
		return
	}
	out := make([]tokenJSON, 0, len(toks))
	for _, t := range toks {
		out = append(out, toTokenJSON(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *API) apiRevokeToken(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	if err := auth.Revoke(r.Context(), s.st, r.PathValue("id"), p.String(), s.now()); err != nil {
		s.apiError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "revoked"})
}
