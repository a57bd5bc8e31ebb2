package testenv

import (
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver for test databases
)

// Postgres returns the PostgreSQL server tests use. .ci/run starts one
// and sets SOCLE_TEST_POSTGRES; without it the test fails unless
// SOCLE_SKIP_POSTGRES=1 says the machine has none on purpose.
func Postgres(t testing.TB) string {
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

// FreshPostgres creates an empty database on the server of url for one
// test, drops it after, and returns its URL.
func FreshPostgres(t testing.TB, url string) string {
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
	base, query, _ := strings.Cut(url, "?")
	out := base[:strings.LastIndex(base, "/")+1] + name
	if query != "" {
		out += "?" + query
	}
	return out
}
