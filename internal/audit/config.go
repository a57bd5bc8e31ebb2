package audit

import (
	"cmp"
	"context"
	"encoding/json"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// ConfigStore is what recording the configuration needs.
type ConfigStore interface {
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
	AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error)
}

// ConfigLoad is the action of the event RecordConfig writes.
const ConfigLoad = "config.load"

// RecordConfig writes a config.load event for the configuration a
// server starts with: the file's path and digest, the digest the
// previous start recorded, and whether it changed. socle reads its
// configuration only at start, so every change of configuration is
// one of these events.
func RecordConfig(ctx context.Context, st ConfigStore, path, digest, actor string) error {
	prev, err := st.GetMeta(ctx, "config_digest")
	if err != nil {
		return err
	}
	b, err := json.Marshal(map[string]any{"digest": digest, "previous": prev, "changed": prev != digest})
	if err != nil {
		return err
	}
	if _, err := st.AppendAudit(ctx, store.AuditEvent{At: time.Now().UTC(), Actor: actor, Action: ConfigLoad,
		Subject: cmp.Or(path, "(defaults)"), Details: b}); err != nil {
		return err
	}
	return st.SetMeta(ctx, "config_digest", digest)
}
