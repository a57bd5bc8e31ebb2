package sqlstore_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/postgres"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/store/sqlstore"
	"github.com/socle-dev/socle/internal/testenv"
)

// TestWarm checks that Warm reads what the newest images' findings show,
// and the images' names and tags, into a new store's caches, does nothing on an empty store, and stops
// with its context. Hand-made images and advisories.
func TestWarm(t *testing.T) {
	for name, backend := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			open := backend(t)
			s := open(t)
			defer s.Close()
			if err := s.Warm(ctx, 4); err != nil || len(s.CachedAdvisories()) != 0 {
				t.Fatalf("Warm on an empty store = %v, cached %v", err, s.CachedAdvisories())
			}
			digests := seedWarm(t, s)

			// What the images' findings show, asked of a store of its own.
			asked := open(t)
			defer asked.Close()
			var want []string
			for _, d := range digests {
				fs, err := asked.ImageFindings(ctx, d)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range fs {
					want = append(want, f.AdvisoryID)
				}
			}
			slices.Sort(want)
			want = slices.Compact(want)
			if len(want) == 0 {
				t.Fatal("the seeded images have no findings")
			}

			warmed := open(t)
			defer warmed.Close()
			if got := warmed.CachedAdvisories(); len(got) != 0 || warmed.NamesLoaded() {
				t.Fatalf("a new store holds advisories %v (names loaded: %v)", got, warmed.NamesLoaded())
			}
			if err := warmed.Warm(ctx, 4); err != nil {
				t.Fatal(err)
			}
			if got := warmed.CachedAdvisories(); !slices.Equal(got, want) || !warmed.NamesLoaded() {
				t.Fatalf("after Warm the store holds %v, want %v (names loaded: %v)", got, want, warmed.NamesLoaded())
			}

			stopped := open(t)
			defer stopped.Close()
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if err := stopped.Warm(cancelled, 4); err == nil {
				t.Fatal("Warm with a cancelled context returned no error")
			}
		})
	}
}

// seedWarm stores three images holding openssl, matched to two
// advisories, and one holding only zlib, matched to none; it returns
// their digests.
func seedWarm(t *testing.T, s *sqlstore.DB) []string {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	var advs []store.Advisory
	for _, id := range []string{"CVE-2024-11", "CVE-2024-12"} {
		advs = append(advs, store.Advisory{ID: id, Modified: t0, Published: t0, Summary: "hand-made " + id, Severity: "HIGH",
			Score: 7.5, Source: "test", Raw: []byte(`{"id":"` + id + `"}`),
			Affected: []store.Affected{{Ecosystem: "Debian:12", Name: "openssl", Spec: []byte("x")}}})
	}
	if _, err := s.UpsertAdvisories(ctx, advs); err != nil {
		t.Fatal(err)
	}
	pkg := func(name, version string) store.ImagePackage {
		return store.ImagePackage{Key: store.PackageKey{Ecosystem: "Debian:12", Name: name, Version: version}, Name: name,
			Version: version, Type: "deb", PURL: "pkg:deb/debian/" + name + "@" + version, Path: "var/lib/dpkg/status", Layer: "sha256:l1"}
	}
	var digests []string
	var openssl int64
	for i, pkgs := range [][]store.ImagePackage{
		{pkg("openssl", "3.0.1"), pkg("zlib", "1.2")}, {pkg("openssl", "3.0.1")}, {pkg("openssl", "3.0.1")}, {pkg("zlib", "1.2")},
	} {
		d := "sha256:" + string(rune('a'+i))
		fresh, err := s.PutImage(ctx, store.Image{Digest: d, Repository: "r/warm", Layers: []string{"sha256:l1"},
			Ecosystem: "Debian:12", ScannedAt: t0}, pkgs)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range fresh {
			if p.Name == "openssl" {
				openssl = p.ID
			}
		}
		digests = append(digests, d)
	}
	if _, err := s.SetPackageMatches(ctx, openssl, []store.PackageMatch{{AdvisoryID: "CVE-2024-11"}, {AdvisoryID: "CVE-2024-12", FixedVersion: "3.0.2"}}, nil, t0); err != nil {
		t.Fatal(err)
	}
	return digests
}

// backends are the databases a test runs on: each gives a function that
// opens a new store on one database of its kind.
func backends() map[string]func(t *testing.T) func(t *testing.T) *sqlstore.DB {
	return map[string]func(t *testing.T) func(t *testing.T) *sqlstore.DB{
		"sqlite": func(t *testing.T) func(t *testing.T) *sqlstore.DB {
			path := filepath.Join(t.TempDir(), "socle.db")
			return func(t *testing.T) *sqlstore.DB {
				s, err := sqlite.Open(context.Background(), path)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		},
		"postgres": func(t *testing.T) func(t *testing.T) *sqlstore.DB {
			url := testenv.FreshPostgres(t, testenv.Postgres(t))
			return func(t *testing.T) *sqlstore.DB {
				s, err := postgres.Open(context.Background(), url)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		},
	}
}
