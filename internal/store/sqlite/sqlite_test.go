package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/store/storetest"
)

// TestStoreSuite runs the suite with the link log folded as it is by
// default (the tests' few links stay in the log), and folded once it
// holds 7 rows (links then split between the log and package_images).
func TestStoreSuite(t *testing.T) {
	for name, fold := range map[string]int{"log": 0, "folded": 7} {
		t.Run(name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "socle.db"))
				if err != nil {
					t.Fatal(err)
				}
				s.SetLinkFold(fold)
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
