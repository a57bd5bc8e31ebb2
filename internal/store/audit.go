package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuditEvent is one entry of the audit log.
type AuditEvent struct {
	Seq     int64
	At      time.Time
	Actor   string
	Action  string
	Subject string
	// Details is a JSON object.
	Details []byte
	// PrevHash and Hash chain the log: Hash covers PrevHash and every
	// other field, so that editing any row breaks the chain after it.
	PrevHash string
	Hash     string
}

// Audit is the append-only, hash-chained audit log.
type Audit interface {
	// AppendAudit adds an event, computing its Seq and chain hashes.
	AppendAudit(ctx context.Context, ev AuditEvent) (AuditEvent, error)
	// AuditEvents returns events with Seq > after, oldest first.
	AuditEvents(ctx context.Context, after int64, limit int) ([]AuditEvent, error)
	// AuditHead returns the last event (a zero event for an empty log)
	// and how many events the log holds.
	AuditHead(ctx context.Context) (AuditEvent, int64, error)
}

// AuditHash computes the chain hash of an event: SHA-256 over the
// previous hash and every field, each length-prefixed so that no two
// different events encode alike.
func AuditHash(ev AuditEvent) string {
	var b strings.Builder
	for _, f := range []string{
		ev.PrevHash,
		strconv.FormatInt(ev.Seq, 10),
		strconv.FormatInt(ev.At.UnixMicro(), 10),
		ev.Actor, ev.Action, ev.Subject, string(ev.Details),
	} {
		fmt.Fprintf(&b, "%d:%s\n", len(f), f)
	}
	h := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(h[:])
}

// ChainBreak describes the first event whose hash does not hold.
type ChainBreak struct {
	Seq    int64
	Reason string
}

func (c *ChainBreak) Error() string {
	return fmt.Sprintf("audit log broken at event %d: %s", c.Seq, c.Reason)
}

// VerifyAuditChain checks a run of consecutive events starting after an
// event whose hash was prevHash (empty for the start of the log). It
// returns the hash of the last event, to continue with the next run.
func VerifyAuditChain(prevHash string, prevSeq int64, events []AuditEvent) (string, int64, error) {
	for _, ev := range events {
		if ev.Seq != prevSeq+1 {
			return "", 0, &ChainBreak{Seq: ev.Seq, Reason: fmt.Sprintf("expected sequence %d (an event was deleted or inserted)", prevSeq+1)}
		}
		if ev.PrevHash != prevHash {
			return "", 0, &ChainBreak{Seq: ev.Seq, Reason: "previous-hash link does not match the event before it"}
		}
		if got := AuditHash(ev); got != ev.Hash {
			return "", 0, &ChainBreak{Seq: ev.Seq, Reason: "content does not match its hash (the row was edited)"}
		}
		prevHash, prevSeq = ev.Hash, ev.Seq
	}
	return prevHash, prevSeq, nil
}
