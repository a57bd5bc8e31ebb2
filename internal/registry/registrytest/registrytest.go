// Package registrytest starts socle's embedded registry in process, for
// tests that push and pull real images.
package registrytest

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/registry"
)

// Server is a running in-process registry.
type Server struct {
	*registry.Registry
	// Host is host:port, usable in references (Host + "/repo:tag").
	Host string
	srv  *httptest.Server
}

// Start starts a registry storing in dir (a temporary directory when
// empty) and stops it when the test ends.
func Start(t testing.TB, opts registry.Options) *Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	r, err := registry.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &Server{Registry: r, Host: strings.TrimPrefix(srv.URL, "http://"), srv: srv}
}

// Close stops the server before the test ends.
func (s *Server) Close() { s.srv.Close() }
