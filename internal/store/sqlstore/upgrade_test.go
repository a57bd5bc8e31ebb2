package sqlstore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/store/sqlstore"
)

// TestUpgradeDerivesFindings opens a store written by the schema before
// findings were derived (version 12: one findings row per image), with
// hand-made rows, and checks that the upgrade keeps every answer: open
// findings with their opening time, a VEX closure, a withdrawn match, the
// packages and their layers.
func TestUpgradeDerivesFindings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	us := func(d time.Duration) int64 { return t0.Add(d).UnixMicro() }
	if err := sqlstore.OldStore(ctx, raw, sqlite.Dialect, 12, []sqlstore.Row{
		{`INSERT INTO advisories (id, modified, published, withdrawn, aliases, summary, severity, score, source, raw, raw_hash)
VALUES ('CVE-1', 0, 0, 0, '[]', 's1', 'HIGH', 7.5, 't', x'7b7d', 'h1'), ('CVE-2', 0, 0, 0, '[]', 's2', 'LOW', 2, 't', x'7b7d', 'h2'),
('CVE-3', 0, 0, 0, '[]', 's3', 'LOW', 2, 't', x'7b7d', 'h3')`, nil},
		{`INSERT INTO advisory_aliases (alias, advisory_id) VALUES ('CVE-1', 'CVE-1'), ('CVE-2', 'CVE-2'), ('CVE-3', 'CVE-3')`, nil},
		{`INSERT INTO images (id, digest, repository, media_type, config, platform, created, os, ecosystem, base_name, base_digest, layers, size, scanned_at, labels)
VALUES (1, 'sha256:a', 'r/a', 'm', '', 'linux/amd64', 0, 'Debian', 'Debian:12', '', '', '["sha256:l0"]', 1, ?, '{}'),
(2, 'sha256:b', 'r/b', 'm', '', 'linux/amd64', 0, 'Debian', 'Debian:12', '', '', '["sha256:l0"]', 1, ?, '{}')`, []any{us(0), us(time.Hour)}},
		// b also holds an older openssl binary (two versions of one package).
		{`INSERT INTO packages (id, ecosystem, name, version, matched_at) VALUES (10, 'Debian:12', 'openssl', '3.0.1', ?),
(11, 'Debian:12', 'openssl', '3.0.0', ?)`, []any{us(0), us(0)}},
		{`INSERT INTO image_packages (image_id, package_id, name, version, type, purl, path, layer, layer_index) VALUES
(1, 10, 'libssl3', '3.0.1', 'deb', 'pkg:deb/debian/libssl3@3.0.1', 'var/lib/dpkg/status', 'sha256:l0', 0),
(2, 10, 'libssl3', '3.0.1', 'deb', 'pkg:deb/debian/libssl3@3.0.1', 'var/lib/dpkg/status', 'sha256:l0', 0),
(2, 11, 'openssl', '3.0.0', 'deb', 'pkg:deb/debian/openssl@3.0.0', 'var/lib/dpkg/status', 'sha256:l0', 0)`, nil},
		{`INSERT INTO package_images (package_id, image_id) VALUES (10, 1), (10, 2), (11, 2)`, nil},
		{`INSERT INTO package_matches (package_id, advisory_id, fixed_version) VALUES (10, 'CVE-1', '3.0.2'), (10, 'CVE-2', ''),
(11, 'CVE-1', '3.0.2')`, nil},
		// CVE-1 opened in both images; CVE-2 in both, then VEX closed it
		// in b; CVE-3 matched once and was withdrawn.
		{`INSERT INTO findings (image_id, package_id, advisory_id, opened_at, closed_at, close_reason) VALUES
(1, 10, 'CVE-1', ?, 0, ''), (2, 10, 'CVE-1', ?, 0, ''), (1, 10, 'CVE-2', ?, 0, ''), (2, 10, 'CVE-2', ?, ?, 'vex: not_affected'),
(1, 10, 'CVE-3', ?, ?, 'advisory withdrawn'), (2, 10, 'CVE-3', ?, ?, 'advisory withdrawn'), (2, 11, 'CVE-1', ?, 0, '')`,
			[]any{us(time.Minute), us(time.Hour), us(2 * time.Minute), us(time.Hour), us(2 * time.Hour), us(time.Minute), us(3 * time.Hour), us(time.Hour), us(3 * time.Hour),
				us(time.Hour)}},
	}); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.New(ctx, raw, sqlite.Dialect)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fa, err := s.ImageFindings(ctx, "sha256:a")
	if err != nil {
		t.Fatal(err)
	}
	if len(fa) != 2 || fa[0].AdvisoryID != "CVE-1" || !fa[0].OpenedAt.Equal(t0.Add(time.Minute)) || fa[0].FixedVersion != "3.0.2" ||
		fa[0].Package.Layer != "sha256:l0" || fa[1].AdvisoryID != "CVE-2" {
		t.Fatalf("findings of a after the upgrade = %+v", fa)
	}
	fb, err := s.ImageFindings(ctx, "sha256:b")
	if err != nil {
		t.Fatal(err)
	}
	if len(fb) != 2 || fb[0].AdvisoryID != "CVE-1" || !fb[0].OpenedAt.Equal(t0.Add(time.Hour)) || fb[1].AdvisoryID != "CVE-1" {
		t.Fatalf("findings of b after the upgrade = %+v", fb)
	}
	vex, err := s.FindingsClosedAs(ctx, "sha256:b", store.CloseVEX)
	if err != nil {
		t.Fatal(err)
	}
	if len(vex) != 1 || vex[0].AdvisoryID != "CVE-2" || !vex[0].ClosedAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("VEX closures of b after the upgrade = %+v", vex)
	}
	wd, err := s.FindingsClosedAs(ctx, "sha256:a", "advisory withdrawn")
	if err != nil {
		t.Fatal(err)
	}
	if len(wd) != 1 || wd[0].AdvisoryID != "CVE-3" || !wd[0].ClosedAt.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("withdrawn findings of a after the upgrade = %+v", wd)
	}
	ps, err := s.ImagePackages(ctx, "sha256:b")
	if err != nil || len(ps) != 2 || ps[0].Name != "libssl3" || ps[0].Layer != "sha256:l0" {
		t.Fatalf("packages of b after the upgrade = %+v, %v", ps, err)
	}
	// The upgraded store goes on: a new image of the same package.
	if _, err := s.PutImage(ctx, store.Image{Digest: "sha256:c", Repository: "r/c", Layers: []string{"sha256:l0"}, ScannedAt: t0.Add(4 * time.Hour)},
		[]store.ImagePackage{{Key: store.PackageKey{Ecosystem: "Debian:12", Name: "openssl", Version: "3.0.1"}, Name: "libssl3", Version: "3.0.1",
			Type: "deb", PURL: "pkg:deb/debian/libssl3@3.0.1", Path: "var/lib/dpkg/status", Layer: "sha256:l0"}}); err != nil {
		t.Fatal(err)
	}
	// Four holdings of a matched version, by three images (b holds two).
	res, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: "CVE-1"})
	if err != nil || res.Total != 4 || res.Images != 3 {
		t.Fatalf("affected by CVE-1 = %+v, %v", res, err)
	}
}
