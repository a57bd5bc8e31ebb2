package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
)

// Checkpoint states the audit log's head at a time: the last event's
// sequence number and hash, and how many events the log held.
type Checkpoint struct {
	Seq   int64     `json:"seq"`
	Head  string    `json:"head"`
	Count int64     `json:"count"`
	At    time.Time `json:"at"`
}

// Payload is what is signed: a fixed, line-based encoding.
func (c Checkpoint) Payload() []byte {
	return []byte("socle-audit-checkpoint/v1\n" + strconv.FormatInt(c.Seq, 10) + "\n" + c.Head + "\n" +
		strconv.FormatInt(c.Count, 10) + "\n" + c.At.UTC().Format(time.RFC3339Nano) + "\n")
}

// Signed is a checkpoint as written to a sink.
type Signed struct {
	Checkpoint
	// Signature is over Payload, base64.
	Signature string `json:"signature"`
	// PublicKey is the signer's key (PEM), for reference: verification
	// uses keys the auditor trusts, never this one.
	PublicKey string `json:"public_key,omitempty"`
}

// Log is what checkpoints and verification read.
type Log interface {
	AuditEvents(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error)
	AuditHead(ctx context.Context) (store.AuditEvent, int64, error)
}

// Writer is a Log that also appends: a checkpoint is recorded in the log
// too, after it is written to its sink.
type Writer interface {
	Log
	AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error)
}

// Sink keeps checkpoints outside the database.
type Sink interface {
	Put(ctx context.Context, c Signed) error
	List(ctx context.Context) ([]Signed, error)
	String() string
}

// Checkpointer makes signed checkpoints of a log.
type Checkpointer struct {
	Log    Writer
	Signer *sign.Signer
	Sink   Sink
	Now    func() time.Time
	Logger *slog.Logger
}

// Checkpoint signs the log's head, writes it to the sink, and records
// that it did in the log.
func (c *Checkpointer) Checkpoint(ctx context.Context, by string) (Signed, error) {
	head, n, err := c.Log.AuditHead(ctx)
	if err != nil {
		return Signed{}, fmt.Errorf("reading the audit log's head: %w", err)
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp := Checkpoint{Seq: head.Seq, Head: head.Hash, Count: n, At: now().UTC()}
	sig, err := c.Signer.SignBytes(cp.Payload())
	if err != nil {
		return Signed{}, fmt.Errorf("signing the checkpoint: %w", err)
	}
	pub, _ := c.Signer.PublicKeyPEM()
	s := Signed{Checkpoint: cp, Signature: base64.StdEncoding.EncodeToString(sig), PublicKey: string(pub)}
	if err := c.Sink.Put(ctx, s); err != nil {
		return Signed{}, fmt.Errorf("writing the checkpoint to %s: %w", c.Sink, err)
	}
	details, _ := json.Marshal(map[string]any{"seq": cp.Seq, "head": cp.Head, "count": cp.Count, "sink": c.Sink.String()})
	if _, err := c.Log.AppendAudit(ctx, store.AuditEvent{At: cp.At, Actor: by, Action: "audit.checkpoint", Subject: "audit log", Details: details}); err != nil {
		return s, err
	}
	return s, nil
}

// Every writes a checkpoint at once and then every interval, until ctx
// ends. A failure is logged and tried again at the next tick.
func (c *Checkpointer) Every(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := c.Checkpoint(ctx, "socle serve (checkpoint)"); err != nil && ctx.Err() == nil && c.Logger != nil {
			c.Logger.Warn("writing an audit checkpoint", "sink", c.Sink.String(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maxCheckpoint bounds one checkpoint document read from a sink.
const maxCheckpoint = 64 << 10

// decode reads one checkpoint document.
func decode(r io.Reader) (Signed, error) {
	var s Signed
	dec := json.NewDecoder(io.LimitReader(r, maxCheckpoint))
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("checkpoint: %w", err)
	}
	if s.Seq < 0 || s.Signature == "" {
		return s, errors.New("checkpoint: no signature")
	}
	return s, nil
}
