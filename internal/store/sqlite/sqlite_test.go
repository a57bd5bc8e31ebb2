package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/store/storetest"
)

// TestStoreSuite runs the suite with the link log folded as it is by
// default (the tests' few links stay in the log) and link groups of the
// default size, and folded once it holds 7 rows (links then split between
// the log and package_images) with every lower layer's links a group
// (the suite's images hold a few packages a layer).
func TestStoreSuite(t *testing.T) {
	for name, v := range map[string]struct{ fold, group int }{"log": {0, 0}, "folded": {7, 1}} {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "socle.db"))
				if err != nil {
					t.Fatal(err)
				}
				s.SetLinkFold(v.fold)
				s.SetLinkGroupMin(v.group)
				return s
			})
		})
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "socle.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopening (migrations must be idempotent): %v", err)
	}
	defer s.Close()
	v, err := s.GetMeta(ctx, "k")
	if err != nil || v != "v" {
		t.Fatalf("after reopen: %q, %v", v, err)
	}
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "socle.db"))
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

// TestLowerLayersLinkedAsGroups checks where the links of images on a
// shared base go with the default group size: the base's ten packages
// are one group every image links to, each image's own layer's
// packages are rows.
func TestLowerLayersLinkedAsGroups(t *testing.T) {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.SharedBase(t, s, "g", 3, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
	for query, want := range map[string]int{
		`SELECT COUNT(*) FROM link_groups`:    1,
		`SELECT COUNT(*) FROM group_packages`: 10,
		`SELECT COUNT(*) FROM image_groups`:   3,
		`SELECT (SELECT COUNT(*) FROM package_images) + (SELECT COUNT(*) FROM package_images_log)`: 6,
	} {
		var got int
		if err := s.SQL().QueryRow(query).Scan(&got); err != nil || got != want {
			t.Errorf("%s: %d, want %d (%v)", query, got, want, err)
		}
	}
}
