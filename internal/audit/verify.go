package audit

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"

	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
)

// Report is what a verification found.
type Report struct {
	Events   int64  `json:"events"`
	LastSeq  int64  `json:"last_seq"`
	LastHash string `json:"last_hash"`
	// Checkpoints counts the checkpoints checked.
	Checkpoints int `json:"checkpoints"`
	// Problems lists every failure; none means the log is intact.
	Problems []string `json:"problems"`
}

// OK reports whether nothing was found wrong.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// pageSize is how many events a verification reads at a time.
const pageSize = 10000

// Verify checks an audit log against its checkpoints:
//
//   - the hash chain, event by event (an edited, inserted or removed row
//     breaks it);
//   - every checkpoint's signature, with the trusted keys;
//   - that the log still holds every checkpointed head, with its hash
//     (deleting the tail, or rewriting the whole chain with recomputed
//     hashes, loses it);
//   - that no sequence number was checkpointed with two heads.
func Verify(ctx context.Context, log Log, checkpoints []Signed, keys []*sign.Verifier) (Report, error) {
	var rep Report
	want := map[int64]string{}
	sort.Slice(checkpoints, func(i, j int) bool { return checkpoints[i].Seq < checkpoints[j].Seq })
	for _, c := range checkpoints {
		rep.Checkpoints++
		if err := verifySignature(c, keys); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("checkpoint at event %d (%s): %v", c.Seq, c.At.Format("2006-01-02T15:04:05Z"), err))
			continue
		}
		if h, seen := want[c.Seq]; seen && h != c.Head {
			rep.Problems = append(rep.Problems, fmt.Sprintf("event %d was checkpointed with two different hashes: the log was rewritten after a checkpoint", c.Seq))
		}
		want[c.Seq] = c.Head
	}
	found := map[int64]string{}
	prev, seq := "", int64(0)
	for {
		evs, err := log.AuditEvents(ctx, seq, pageSize)
		if err != nil {
			return rep, err
		}
		if len(evs) == 0 {
			break
		}
		for _, ev := range evs {
			if _, ok := want[ev.Seq]; ok {
				found[ev.Seq] = ev.Hash
			}
		}
		p, s, err := store.VerifyAuditChain(prev, seq, evs)
		if err != nil {
			rep.Problems = append(rep.Problems, err.Error())
			// Go on from the broken event, to check the checkpoints too.
			last := evs[len(evs)-1]
			p, s = last.Hash, last.Seq
		}
		prev, seq = p, s
		rep.Events += int64(len(evs))
	}
	rep.LastSeq, rep.LastHash = seq, prev
	for s, h := range want {
		switch got, ok := found[s]; {
		case s == 0:
		case !ok:
			rep.Problems = append(rep.Problems, fmt.Sprintf("event %d, checkpointed, is no longer in the log: its tail was deleted", s))
		case got != h:
			rep.Problems = append(rep.Problems, fmt.Sprintf("event %d does not have the hash it was checkpointed with: the log was rewritten", s))
		}
	}
	sort.Strings(rep.Problems)
	return rep, nil
}

func verifySignature(c Signed, keys []*sign.Verifier) error {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return fmt.Errorf("unreadable signature: %w", err)
	}
	for _, k := range keys {
		if k.VerifyBytes(c.Payload(), sig) == nil {
			return nil
		}
	}
	return fmt.Errorf("its signature does not verify with the trusted keys")
}
