package server

import (
	"net/http"

	"github.com/socle-dev/socle/internal/auth"
)

// apiWhoami says who the request's credential is: what socle login
// checks before it keeps a token.
func (s *API) apiWhoami(w http.ResponseWriter, r *http.Request) {
	p, _ := auth.PrincipalFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"user": p.User, "name": p.Name, "role": p.Role, "actor": p.Actor(),
		"token_id": p.TokenID, "repositories": p.Repositories, "server_version": s.version})
}
