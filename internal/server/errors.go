package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/jsonw"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// badRequest marks an error caused by the request.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func errBadRequest(msg string) error { return &badRequest{msg} }

// status maps an error to its HTTP status and the message the client
// sees. Unknown errors are 500s whose detail stays in the log.
func status(err error) (int, string) {
	var br *badRequest
	err = promoteStatus(err)
	switch {
	case errors.As(err, &br):
		return http.StatusBadRequest, br.msg
	case errors.Is(err, auth.ErrUnauthenticated):
		return http.StatusUnauthorized, err.Error()
	case errors.Is(err, auth.ErrForbidden):
		return http.StatusForbidden, forbiddenMessage(err)
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, err.Error()
	}
	return http.StatusInternalServerError, "internal error"
}

// apiError writes err as a JSON error body.
func (s *API) apiError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := status(err)
	if code == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="socle"`)
	}
	writeJSON(w, code, map[string]any{"error": map[string]any{"status": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	jsonHeader(w, code)
	// Compact: indenting doubled the cost of a fleet-scale answer (an
	// image's few hundred findings); `jq .` reads it for people.
	_ = json.NewEncoder(w).Encode(v)
}

func jsonHeader(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
}

// writeFindings writes an image's findings as writeJSON writes
// {"digest": digest, "findings": fs}, byte for byte, with vuln's appender
// (a quarter of encoding/json's time on a few hundred findings).
func writeFindings(w http.ResponseWriter, digest string, fs []vuln.Finding) {
	b := jsonw.String(append(make([]byte, 0, 1024*len(fs)+256), `{"digest":`...), digest)
	b, ok := vuln.AppendFindingsJSON(append(b, `,"findings":`...), fs)
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"digest": digest, "findings": fs})
		return
	}
	jsonHeader(w, http.StatusOK)
	writeBody(w, append(b, '}', '\n'))
}

// forbiddenMessage drops the generic prefix a joined error carries.
func forbiddenMessage(err error) string {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		if es := j.Unwrap(); len(es) == 2 {
			return es[1].Error()
		}
	}
	return err.Error()
}
