package scan_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/store"
)

// countingMatches counts the package versions SetMatches is given.
type countingMatches struct {
	store.Store
	mu      sync.Mutex
	matched map[int64]int
}

func (c *countingMatches) SetMatches(ctx context.Context, updates []store.MatchUpdate, at time.Time) (store.FindingChanges, error) {
	c.mu.Lock()
	for _, u := range updates {
		c.matched[u.PackageID]++
	}
	c.mu.Unlock()
	return c.Store.SetMatches(ctx, updates, at)
}

func (c *countingMatches) count(id int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.matched[id]
}

// freshMusl stores a hand-made image holding musl 1.1.22-r2 (a version
// the real Alpine 3.10 secfixes list as affected) and returns the
// never-matched package row the store hands back.
func freshMusl(t *testing.T, st store.Store) store.PackageRow {
	t.Helper()
	key := store.PackageKey{Ecosystem: "Alpine:v3.10", Name: "musl", Version: "1.1.22-r2"}
	fresh, err := st.PutImage(context.Background(), store.Image{Digest: "sha256:hand-made-first", Repository: "r/first"},
		[]store.ImagePackage{{Key: key, Name: "musl", Version: "1.1.22-r2", Type: "apk"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) != 1 || fresh[0].PackageKey != key {
		t.Fatalf("fresh rows %+v", fresh)
	}
	return fresh[0]
}

// waitForWaiter returns once sc counts a caller waiting for another's
// matching (it claims at once and then waits).
func waitForWaiter(t *testing.T, sc *scan.Scanner, errc chan error) {
	t.Helper()
	for sc.FirstWaiting() == 0 {
		select {
		case err := <-errc:
			t.Fatalf("the second caller returned without waiting: %v", err)
		default:
			time.Sleep(time.Millisecond)
		}
	}
}

// TestFirstMatchOnce: a caller given a fresh version another caller is
// matching waits for that caller instead of matching it again (at a
// fleet's first pushes, every concurrent Index got its bases' versions
// back and each matched them at once, waiting on the others' rows); when
// that caller's matching fails, the waiting one matches the version
// itself.
func TestFirstMatchOnce(t *testing.T) {
	ctx := context.Background()
	for name, failed := range map[string]bool{"owner matched": false, "owner failed": true} {
		t.Run(name, func(t *testing.T) {
			st, _ := alpineStore(t)
			counted := &countingMatches{Store: st, matched: map[int64]int{}}
			an, err := sbom.NewAnalyzer()
			if err != nil {
				t.Fatal(err)
			}
			sc := scan.New(counted, an)
			row := freshMusl(t, st)
			release := sc.HoldFirst([]store.PackageRow{row})
			errc := make(chan error, 1)
			go func() { errc <- sc.MatchFirst(ctx, []store.PackageRow{row}) }()
			waitForWaiter(t, sc, errc)
			var ownerErr error
			if failed {
				ownerErr = errors.New("hand-made failure")
			} else if _, ownerErr = sc.Rematch(ctx, []store.PackageRow{row}); ownerErr != nil {
				t.Fatal(ownerErr)
			}
			release(ownerErr)
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if n := counted.count(row.ID); n != 1 {
				t.Fatalf("musl %s matched %d times, want once", row.Version, n)
			}
			// Matched as the matcher says, whoever matched it.
			active, _, err := sc.Matcher().Match(ctx, row.PackageKey)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := st.PackageMatches(ctx, row.ID)
			if err != nil {
				t.Fatal(err)
			}
			var want, got []string
			for _, m := range active {
				want = append(want, m.AdvisoryID)
			}
			for _, m := range stored {
				got = append(got, m.AdvisoryID)
			}
			slices.Sort(want)
			slices.Sort(got)
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Fatalf("stored matches %v, the matcher's %v", got, want)
			}
		})
	}
}
