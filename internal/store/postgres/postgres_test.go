package postgres_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/postgres"
	"github.com/socle-dev/socle/internal/store/sqlstore"
	"github.com/socle-dev/socle/internal/store/storetest"
	"github.com/socle-dev/socle/internal/testenv"
)

func testURL(t *testing.T) string { return testenv.Postgres(t) }

func freshDatabase(t *testing.T, url string) string { return testenv.FreshPostgres(t, url) }

func TestStoreSuite(t *testing.T) {
	url := testURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := postgres.Open(context.Background(), freshDatabase(t, url))
		if err != nil {
			t.Fatal(err)
		}
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
