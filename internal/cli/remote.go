package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/store"
)

// remote returns the client of the socle server the CLI is configured
// for: SOCLE_SERVER with SOCLE_TOKEN (and SOCLE_CA_FILE), else the
// current context of socle login. It returns nil when none is
// configured, or with --local.
func (g *globals) remote() (*client.Client, error) {
	if g.local {
		return nil, nil
	}
	if server := os.Getenv("SOCLE_SERVER"); server != "" {
		return client.FromContext(client.Context{Server: server, Token: os.Getenv("SOCLE_TOKEN"), CAFile: os.Getenv("SOCLE_CA_FILE")})
	}
	cs, err := client.LoadContexts()
	if err != nil {
		return nil, err
	}
	cur, ok := cs.Active()
	if !ok {
		return nil, nil
	}
	if t := os.Getenv("SOCLE_TOKEN"); t != "" {
		cur.Token = t
	}
	return client.FromContext(cur)
}

// apiClient returns the client of a command that only the server does:
// the configured server, else the socle serve of this host with the
// admin token of its data directory.
func (g *globals) apiClient(cfg *config.File) (*client.Client, error) {
	c, err := g.remote()
	if err != nil || c != nil {
		return c, err
	}
	b, err := os.ReadFile(filepath.Join(g.dataDir, "admin-token"))
	if err != nil {
		return nil, errNoServer
	}
	return client.New("http://"+cmp.Or(cfg.Server.Addr, "127.0.0.1:8080"), strings.TrimSpace(string(b)))
}

var errNoServer = errors.New("no socle server configured: `socle login https://socle.example`, or set SOCLE_SERVER and SOCLE_TOKEN; on the host of socle serve, --local opens its database")

// sharedStore opens the database for a command that reads or changes
// shared state without a server: with --local, --database, or on the
// host of socle serve (its data directory holds the database). Anywhere
// else that would make a new, empty database and bypass the server's
// roles, so it is refused.
func (g *globals) sharedStore(ctx context.Context) (store.Store, error) {
	if !g.local && g.database == "" {
		if _, err := os.Stat(filepath.Join(g.dataDir, "socle.db")); err != nil {
			return nil, errNoServer
		}
	}
	return g.openStore(ctx)
}

// either runs remoteFn with the configured server's client, or localFn
// with the database of the host of socle serve.
func (g *globals) either(ctx context.Context, remoteFn func(c *client.Client) error, localFn func(st store.Store) error) error {
	c, err := g.remote()
	if err != nil {
		return err
	}
	if c != nil {
		return remoteFn(c)
	}
	st, err := g.sharedStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return localFn(st)
}

// remoteAudit reads the audit log through the API, page by page: what
// socle audit verify checks when it runs away from the database.
type remoteAudit struct{ c *client.Client }

func (r remoteAudit) AuditEvents(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error) {
	var body struct {
		Events []struct {
			Seq      int64     `json:"seq"`
			At       time.Time `json:"at"`
			Actor    string    `json:"actor"`
			Action   string    `json:"action"`
			Subject  string    `json:"subject"`
			Details  string    `json:"details_text"`
			PrevHash string    `json:"prev_hash"`
			Hash     string    `json:"hash"`
		} `json:"events"`
	}
	if err := r.c.Do(ctx, "GET", fmt.Sprintf("/api/v1/audit?after=%d&limit=%d", after, min(limit, 1000)), nil, &body); err != nil {
		return nil, err
	}
	out := make([]store.AuditEvent, 0, len(body.Events))
	for _, e := range body.Events {
		out = append(out, store.AuditEvent{Seq: e.Seq, At: e.At, Actor: e.Actor, Action: e.Action, Subject: e.Subject,
			Details: []byte(e.Details), PrevHash: e.PrevHash, Hash: e.Hash})
	}
	return out, nil
}

// AuditHead is the log's last event and its count, as audit.Log wants
// them.
func (r remoteAudit) AuditHead(ctx context.Context) (store.AuditEvent, int64, error) {
	var last store.AuditEvent
	var n int64
	for after := int64(0); ; {
		evs, err := r.AuditEvents(ctx, after, 1000)
		if err != nil || len(evs) == 0 {
			return last, n, err
		}
		n += int64(len(evs))
		last = evs[len(evs)-1]
		after = last.Seq
	}
}
