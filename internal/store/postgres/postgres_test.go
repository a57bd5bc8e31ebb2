package postgres_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/postgres"
	"github.com/socle-dev/socle/internal/store/storetest"
)

// TestURL returns the PostgreSQL server tests use. .ci/run starts one
// and sets SOCLE_TEST_POSTGRES; without it the test fails unless
// SOCLE_SKIP_POSTGRES=1 says the machine has none on purpose.
func testURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("SOCLE_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("SOCLE_SKIP_POSTGRES") == "1" {
			t.Skip("SOCLE_SKIP_POSTGRES=1: no PostgreSQL on this machine")
		}
		t.Fatal("SOCLE_TEST_POSTGRES is not set (.ci/run starts a PostgreSQL and sets it; set SOCLE_SKIP_POSTGRES=1 to skip)")
	}
	return u
}

var dbSeq atomic.Int64

// freshDatabase creates an empty database for one test and drops it after.
func freshDatabase(t *testing.T, url string) string {
	t.Helper()
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("socle_test_%d_%d", time.Now().UnixNano()%1e9, dbSeq.Add(1))
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", url)
		if err != nil {
			return
		}
		defer a.Close()
		_, _ = a.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
	})
	return replaceDatabase(url, name)
}

// replaceDatabase swaps the database name in a postgres:// URL.
func replaceDatabase(url, name string) string {
	base, query, _ := strings.Cut(url, "?")
	i := strings.LastIndex(base, "/")
	out := base[:i+1] + name
	if query != "" {
		out += "?" + query
	}
	return out
}

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
