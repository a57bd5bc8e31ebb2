package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/postgres"
	"github.com/socle-dev/socle/internal/store/sqlstore"
	"github.com/socle-dev/socle/internal/store/storetest"
	"github.com/socle-dev/socle/internal/testenv"
)

func testURL(t *testing.T) string { return testenv.Postgres(t) }

func freshDatabase(t *testing.T, url string) string { return testenv.FreshPostgres(t, url) }

// TestStoreSuite runs the suite with every lower layer's links a group
// (the suite's images hold a few packages a layer; the size that makes a
// group is the same code on both databases, and the SQLite suite also
// runs with the default).
func TestStoreSuite(t *testing.T) {
	url := testURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), freshDatabase(t, url))
		if err != nil {
			t.Fatal(err)
		}
		s.SetLinkGroupMin(1)
		return s
	})
}

// TestConcurrentMigrations starts several stores on one empty database
// at once, as replicas of a deployment do.
func TestConcurrentMigrations(t *testing.T) {
	url := freshDatabase(t, testURL(t))
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			s, err := postgres.Open(context.Background(), url)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func BenchmarkStore(b *testing.B) {
	url := testenv.Postgres(b)
	storetest.Bench(b, func(b *testing.B) store.Store {
		s, err := postgres.Open(context.Background(), testenv.FreshPostgres(b, url))
		if err != nil {
			b.Fatal(err)
		}
		return s
	})
}

// TestLinkTablesVacuumedSoon checks that the link tables carry the
// settings that make autovacuum visit them after fewer inserts (the
// "affected by" counts read their visibility maps).
func TestLinkTablesVacuumedSoon(t *testing.T) {
	s := openFresh(t)
	for _, table := range []string{"package_images", "package_multi"} {
		opts := texts(t, s, `SELECT unnest(reloptions) FROM pg_class WHERE relname = $1`, table)
		if !slices.Contains(opts, "autovacuum_vacuum_insert_threshold=100000") || !slices.Contains(opts, "autovacuum_vacuum_insert_scale_factor=0") {
			t.Fatalf("%s options %v", table, opts)
		}
	}
	// image_groups grows by about a row an image: the default suits it.
	if opts := texts(t, s, `SELECT unnest(reloptions) FROM pg_class WHERE relname = 'image_groups'`); len(opts) != 0 {
		t.Fatalf("image_groups options %v", opts)
	}
}

// TestPendingJobsClaimedByIndex checks what keeps a claim's cost from
// growing with the queue: pending jobs are claimed through
// claim_pending_job, planned with sorting off, over an index of the
// pending jobs alone (BenchmarkStore/ClaimJob measures it).
func TestPendingJobsClaimedByIndex(t *testing.T) {
	s := openFresh(t)
	config := texts(t, s, `SELECT unnest(proconfig) FROM pg_proc WHERE proname = 'claim_pending_job'`)
	if !slices.Equal(config, []string{"enable_sort=off"}) {
		t.Fatalf("claim_pending_job settings %v", config)
	}
	var def string
	if err := s.SQL().QueryRow(`SELECT pg_get_indexdef('jobs_queue'::regclass)`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(def, "(id) WHERE (state = 'pending'::text)") {
		t.Fatalf("jobs_queue: %s", def)
	}
}

// openFresh opens a store on a new database, closed when the test ends.
func openFresh(t *testing.T) *sqlstore.DB {
	t.Helper()
	s, err := postgres.Open(context.Background(), freshDatabase(t, testURL(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// texts returns the one text column of query's rows.
func texts(t *testing.T, s *sqlstore.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := s.SQL().Query(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplicasShareLinkGroups has two stores on one database (two
// replicas) store images on one new base at once: both write the base's
// group in the same moments, one of them creates it and the other links
// to it, and every image is linked once.
func TestReplicasShareLinkGroups(t *testing.T) {
	url := freshDatabase(t, testURL(t))
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	var replicas []*sqlstore.DB
	for range 2 {
		s, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		replicas = append(replicas, s)
	}
	t.Run("put", func(t *testing.T) {
		for i, s := range replicas {
			for w := range 4 {
				t.Run(fmt.Sprint(i, w), func(t *testing.T) {
					t.Parallel()
					storetest.SharedBase(t, s, fmt.Sprintf("r%dw%d", i, w), 10, t0)
				})
			}
		}
	})
	s := replicas[0]
	for query, want := range map[string]string{
		`SELECT COUNT(*) FROM link_groups`:                  "1",
		`SELECT COUNT(*) FROM group_packages`:               "10",
		`SELECT COUNT(*) FROM image_groups`:                 "80",
		`SELECT COUNT(DISTINCT image_id) FROM image_groups`: "80",
		`SELECT COUNT(*) FROM package_images`:               "160",
	} {
		if got := texts(t, s, query); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v, want %s", query, got, want)
		}
	}
	res, err := replicas[1].AffectedImages(context.Background(), store.AffectedQuery{Package: "b3", Ecosystem: "Debian:12"})
	if err != nil || res.Total != 80 || res.Images != 80 || len(res.Rows) != 80 {
		t.Fatalf("holders of b3: total %d, images %d, rows %d, %v", res.Total, res.Images, len(res.Rows), err)
	}
}
