package cli

import (
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/config"
)

// apiClient returns the client of the socle server this command talks
// to: SOCLE_SERVER and SOCLE_TOKEN when set, else the socle serve of
// this host, with the admin token of its data directory.
func (g *globals) apiClient(cfg *config.File) (*client.Client, error) {
	server, token := os.Getenv("SOCLE_SERVER"), os.Getenv("SOCLE_TOKEN")
	if server == "" {
		b, err := os.ReadFile(filepath.Join(g.dataDir, "admin-token"))
		if err != nil {
			return nil, errors.New("no socle server configured: set SOCLE_SERVER and SOCLE_TOKEN, or run this on the host of socle serve")
		}
		server = "http://" + cmp.Or(cfg.Server.Addr, "127.0.0.1:8080")
		token = cmp.Or(token, strings.TrimSpace(string(b)))
	}
	return client.New(server, token)
}
