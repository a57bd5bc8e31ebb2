package sqlstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/postgres"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/store/sqlstore"
	"github.com/socle-dev/socle/internal/testenv"
)

// TestUpgradePackRows opens a store at schema 16 (an image's packages as
// rows of image_packages), on SQLite and PostgreSQL, with hand-made rows,
// and checks that migration 17 (one value per image, built by a Go step)
// keeps every answer that reads them: the image's packages in their order
// with layers and extra data, its findings, its package count; and that
// migration 18 (checks by image, layer lists as bytes, the tags' index by
// digest) keeps the image's layers, its check and its tags.
func TestUpgradePackRows(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		raw, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "old.db"))
		if err != nil {
			t.Fatal(err)
		}
		checkUpgradePackRows(t, raw, sqlite.Dialect)
	})
	t.Run("postgres", func(t *testing.T) {
		raw, err := sql.Open("pgx", testenv.FreshPostgres(t, testenv.Postgres(t)))
		if err != nil {
			t.Fatal(err)
		}
		checkUpgradePackRows(t, raw, postgres.Dialect)
	})
}

func checkUpgradePackRows(t *testing.T, raw *sql.DB, d sqlstore.Dialect) {
	ctx := context.Background()
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	us := func(d time.Duration) int64 { return t0.Add(d).UnixMicro() }
	if err := sqlstore.OldStore(ctx, raw, d, 16, []sqlstore.Row{
		{`INSERT INTO advisories (id, modified, published, withdrawn, aliases, summary, severity, score, source, raw, raw_hash)
VALUES ('CVE-1', 0, 0, 0, '[]', 's1', 'HIGH', 7.5, 't', ?, 'h1')`, []any{[]byte("{}")}},
		{`INSERT INTO advisory_aliases (alias, advisory_id) VALUES ('CVE-1', 'CVE-1')`, nil},
		{`INSERT INTO images (id, digest, repository, media_type, config, platform, created, os, ecosystem, base_name, base_digest, layers, size, scanned_at, labels, chain_id)
VALUES (1, 'sha256:a', 'r/a', 'm', '', 'linux/amd64', 0, 'Debian', 'Debian:12', '', '', '["sha256:l0","sha256:l1"]', 1, ?, '{}', '')`, []any{us(0)}},
		{`INSERT INTO packages (id, ecosystem, name, version, matched_at) VALUES (10, 'Debian:12', 'openssl', '3.0.1', ?),
(11, 'Debian:12', 'zlib', '1.2', ?)`, []any{us(0), us(0)}},
		// openssl's library in two places; zlib in a layer the image's
		// list does not give (its digest kept on the row), with extra data.
		{`INSERT INTO binaries (id, package_id, name, version, type, purl, path) VALUES
(100, 10, 'libssl3', '3.0.1', 'deb', 'pkg:deb/debian/libssl3@3.0.1', 'var/lib/dpkg/status'),
(101, 10, 'libssl3', '3.0.1', 'deb', 'pkg:deb/debian/libssl3@3.0.1', 'opt/app/status'),
(102, 11, 'zlib1g', '1.2', 'deb', 'pkg:deb/debian/zlib1g@1.2', 'var/lib/dpkg/status')`, nil},
		{`INSERT INTO binary_extras (id, hash, data) VALUES (7, 'h7', ?)`, []any{[]byte(`{"licenses":["Zlib"]}`)}},
		{`INSERT INTO image_packages (image_id, binary_id, package_id, layer, layer_index, since, extra_id) VALUES
(1, 102, 11, 'sha256:other', 2, ?, 7), (1, 100, 10, '', 1, ?, 0), (1, 101, 10, '', 0, ?, 0)`, []any{us(time.Minute), us(time.Minute), us(time.Minute)}},
		{`INSERT INTO package_images (package_id, image_id, since) VALUES (10, 1, ?), (11, 1, ?)`, []any{us(time.Minute), us(time.Minute)}},
		{`INSERT INTO package_matches (package_id, advisory_id, fixed_version, opened_at) VALUES (10, 'CVE-1', '3.0.2', ?)`, []any{us(time.Hour)}},
		// A check of the image, and one of a digest never indexed.
		{`INSERT INTO image_checks (digest, repository, rules_version, checked_at, result) VALUES
('sha256:a', 'r/a', 'v1', ?, ?), ('sha256:gone', 'r/b', 'v1', ?, ?)`, []any{us(0), []byte(`{"hand":"made"}`), us(0), []byte(`{}`)}},
		{`INSERT INTO tags (repository, tag, digest, since) VALUES ('r/a', '1.0', 'sha256:a', ?)`, []any{us(0)}},
	}); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.New(ctx, raw, d)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ps, err := s.ImagePackages(ctx, "sha256:a")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%s %s %s %s %d %s", p.Name, p.Path, p.Key.Name, p.Layer, p.LayerIndex, p.Extra))
	}
	want := []string{
		"libssl3 opt/app/status openssl sha256:l0 0 ",
		"libssl3 var/lib/dpkg/status openssl sha256:l1 1 ",
		`zlib1g var/lib/dpkg/status zlib sha256:other 2 {"licenses":["Zlib"]}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("packages after the upgrade:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	fs, err := s.ImageFindings(ctx, "sha256:a")
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 2 || fs[0].Package.Path != "opt/app/status" || fs[1].Package.Path != "var/lib/dpkg/status" ||
		fs[0].AdvisoryID != "CVE-1" || !fs[0].OpenedAt.Equal(t0.Add(time.Hour)) || fs[0].FixedVersion != "3.0.2" {
		t.Fatalf("findings after the upgrade = %+v", fs)
	}
	list, err := s.Images(ctx, store.ImageFilter{})
	if err != nil || len(list) != 1 || list[0].Packages != 3 || list[0].Open["HIGH"] != 1 {
		t.Fatalf("image list after the upgrade = %+v, %v", list, err)
	}
	var n int
	if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM image_package_sets`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("image_package_sets rows = %d, %v", n, err)
	}
	img, err := s.Image(ctx, "sha256:a")
	if err != nil || strings.Join(img.Layers, " ") != "sha256:l0 sha256:l1" {
		t.Fatalf("image after the upgrade = %+v, %v", img, err)
	}
	c, err := s.ImageCheck(ctx, "sha256:a")
	if err != nil || c.Repository != "r/a" || c.RulesVersion != "v1" || string(c.Result) != `{"hand":"made"}` || !c.CheckedAt.Equal(t0) {
		t.Fatalf("check after the upgrade = %+v, %v", c, err)
	}
	if _, err := s.ImageCheck(ctx, "sha256:gone"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the check of a digest never indexed: %v", err)
	}
	if strings.Join(list[0].Tags, " ") != "1.0" {
		t.Fatalf("tags after the upgrade = %q", list[0].Tags)
	}
}
