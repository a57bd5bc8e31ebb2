package sqlstore_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlstore"
)

// TestAffectedTagsAfterMoves checks that "affected by" answers show each
// image's current tags whether the cached tags are current, stale (a tag
// moved and the cache is not read again yet) or read again. Hand-made
// images (seedWarm); the tags expected come from the store's tag list.
func TestAffectedTagsAfterMoves(t *testing.T) {
	for name, backend := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := backend(t)(t)
			defer s.Close()
			digests := seedWarm(t, s)
			at := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
			tag := func(tag, digest string) {
				t.Helper()
				at = at.Add(time.Minute)
				if err := s.PutTag(ctx, store.TagEvent{Repository: "r/warm", Tag: tag, Digest: digest, At: at}); err != nil {
					t.Fatal(err)
				}
			}
			tag("v1", digests[0])
			tag("v2", digests[1])
			if err := s.Warm(ctx, 1); err != nil {
				t.Fatal(err)
			}
			check := func(when string) {
				t.Helper()
				want := map[string][]string{}
				evs, err := s.Tags(ctx, "r/warm")
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range evs {
					want[ev.Digest] = append(want[ev.Digest], ev.Tag)
				}
				res, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: "CVE-2024-11"})
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Rows) == 0 {
					t.Fatalf("%s: no images affected", when)
				}
				for _, r := range res.Rows {
					w := want[r.Digest]
					slices.Sort(w)
					if !slices.Equal(r.Tags, w) {
						t.Fatalf("%s: %s shows tags %v, want %v", when, r.Digest, r.Tags, w)
					}
				}
			}
			check("cache current")
			sqlstore.SetNamesReloadEvery(t, time.Hour)
			tag("v1", digests[2])
			if err := s.DeleteTag(ctx, "r/warm", "v2", at.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			check("tags moved, cache not read again")
			sqlstore.SetNamesReloadEvery(t, 0)
			tag("v3", digests[0])
			check("tags moved, cache read again")
		})
	}
}
