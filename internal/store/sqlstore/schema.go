package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// migrations are applied in order, once each; a database records the
// last one it has. Never edit one that has shipped: add another.
var migrations = []string{
	// 1: the scan and watch model.
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE layers (diff_id TEXT PRIMARY KEY, data {{blob}} NOT NULL, stored_at BIGINT NOT NULL);
CREATE TABLE layer_claims (diff_id TEXT PRIMARY KEY, owner TEXT NOT NULL, lease_until BIGINT NOT NULL);
CREATE TABLE advisories (
	id TEXT PRIMARY KEY, modified BIGINT NOT NULL, published BIGINT NOT NULL, withdrawn BIGINT NOT NULL,
	aliases TEXT NOT NULL, summary TEXT NOT NULL, severity TEXT NOT NULL, score DOUBLE PRECISION NOT NULL,
	source TEXT NOT NULL, raw {{blob}} NOT NULL, raw_hash TEXT NOT NULL);
CREATE TABLE advisory_aliases (alias TEXT NOT NULL, advisory_id TEXT NOT NULL, PRIMARY KEY (alias, advisory_id));
CREATE INDEX advisory_aliases_adv ON advisory_aliases (advisory_id);
CREATE TABLE advisory_affected (advisory_id TEXT NOT NULL, ecosystem TEXT NOT NULL, name TEXT NOT NULL,
	spec {{blob}} NOT NULL, PRIMARY KEY (advisory_id, ecosystem, name));
CREATE INDEX advisory_affected_pkg ON advisory_affected (name, ecosystem);
CREATE TABLE feeds (name TEXT PRIMARY KEY, kind TEXT NOT NULL, url TEXT NOT NULL, records BIGINT NOT NULL,
	last_attempt BIGINT NOT NULL, last_success BIGINT NOT NULL, last_error TEXT NOT NULL, cursor TEXT NOT NULL);
CREATE TABLE images (
	id {{serial}} PRIMARY KEY, digest TEXT NOT NULL UNIQUE, repository TEXT NOT NULL, media_type TEXT NOT NULL, config TEXT NOT NULL,
	platform TEXT NOT NULL, created BIGINT NOT NULL, os TEXT NOT NULL, ecosystem TEXT NOT NULL,
	base_name TEXT NOT NULL, base_digest TEXT NOT NULL, layers TEXT NOT NULL, size BIGINT NOT NULL,
	scanned_at BIGINT NOT NULL, labels TEXT NOT NULL);
CREATE TABLE image_inventories (image_id BIGINT PRIMARY KEY, data {{blob}} NOT NULL);
CREATE INDEX images_repo ON images (repository);
CREATE INDEX images_scanned ON images (scanned_at);
CREATE TABLE packages (id {{serial}} PRIMARY KEY, ecosystem TEXT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
	matched_at BIGINT NOT NULL DEFAULT 0, UNIQUE (ecosystem, name, version));
CREATE INDEX packages_name ON packages (name, ecosystem);
CREATE TABLE image_packages (image_id BIGINT NOT NULL, package_id BIGINT NOT NULL, name TEXT NOT NULL,
	version TEXT NOT NULL, type TEXT NOT NULL, purl TEXT NOT NULL, path TEXT NOT NULL, layer TEXT NOT NULL,
	layer_index INTEGER NOT NULL);
CREATE INDEX image_packages_img ON image_packages (image_id, package_id);
CREATE INDEX image_packages_name ON image_packages (name, package_id);
CREATE TABLE package_images (package_id BIGINT NOT NULL, image_id BIGINT NOT NULL, PRIMARY KEY (package_id, image_id)){{without_rowid}};
CREATE INDEX package_images_img ON package_images (image_id);
CREATE TABLE package_matches (package_id BIGINT NOT NULL, advisory_id TEXT NOT NULL, fixed_version TEXT NOT NULL,
	PRIMARY KEY (package_id, advisory_id));
CREATE INDEX package_matches_adv ON package_matches (advisory_id);
CREATE TABLE findings (image_id BIGINT NOT NULL, package_id BIGINT NOT NULL, advisory_id TEXT NOT NULL,
	opened_at BIGINT NOT NULL, closed_at BIGINT NOT NULL DEFAULT 0, close_reason TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (image_id, package_id, advisory_id));
CREATE INDEX findings_pkg ON findings (package_id, advisory_id);
CREATE TABLE tags (repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, since BIGINT NOT NULL,
	PRIMARY KEY (repository, tag));
CREATE INDEX tags_digest ON tags (digest);
CREATE TABLE tag_history (id {{serial}} PRIMARY KEY, repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL,
	at BIGINT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);
CREATE INDEX tag_history_tag ON tag_history (repository, tag, at);
CREATE TABLE jobs (id {{serial}} PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, payload {{blob}} NOT NULL,
	state TEXT NOT NULL, owner TEXT NOT NULL DEFAULT '', lease_until BIGINT NOT NULL DEFAULT 0,
	attempts INTEGER NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '', done INTEGER NOT NULL DEFAULT 0,
	total INTEGER NOT NULL DEFAULT 0, message TEXT NOT NULL DEFAULT '', created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL);
CREATE UNIQUE INDEX jobs_active_key ON jobs (key) WHERE state IN ('pending', 'running');
CREATE INDEX jobs_claim ON jobs (state, id);
CREATE TABLE tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,
	created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT NOT NULL, last_used BIGINT NOT NULL);
CREATE TABLE audit_log (seq BIGINT PRIMARY KEY, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
	subject TEXT NOT NULL, details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE deployments (id {{serial}} PRIMARY KEY, environment TEXT NOT NULL, repository TEXT NOT NULL,
	digest TEXT NOT NULL, since BIGINT NOT NULL, by_whom TEXT NOT NULL);
CREATE INDEX deployments_env ON deployments (environment, repository, id);
CREATE TABLE deployments_current (environment TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
	since BIGINT NOT NULL, by_whom TEXT NOT NULL, PRIMARY KEY (environment, repository));
CREATE INDEX deployments_current_digest ON deployments_current (digest);
{{audit_triggers}}`,
	// 2: the catalog: layer-stack identity for lineage, and builds.
	`ALTER TABLE images ADD COLUMN chain_id TEXT NOT NULL DEFAULT '';
CREATE INDEX images_chain ON images (chain_id);
CREATE TABLE builds (id {{serial}} PRIMARY KEY, name TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
	tag TEXT NOT NULL, tags TEXT NOT NULL, parent TEXT NOT NULL, parent_digest TEXT NOT NULL, inputs TEXT NOT NULL,
	packages TEXT NOT NULL, reasons TEXT NOT NULL, status TEXT NOT NULL, error TEXT NOT NULL,
	started_at BIGINT NOT NULL, finished_at BIGINT NOT NULL, by_whom TEXT NOT NULL);
CREATE INDEX builds_name ON builds (name, id);`,
	// 3: promotions and their approvals.
	`CREATE TABLE promotions (id {{serial}} PRIMARY KEY, repository TEXT NOT NULL, target TEXT NOT NULL,
	digest TEXT NOT NULL, environment TEXT NOT NULL, from_env TEXT NOT NULL, tag TEXT NOT NULL,
	previous TEXT NOT NULL, state TEXT NOT NULL, kind TEXT NOT NULL, by_whom TEXT NOT NULL, role TEXT NOT NULL,
	override INTEGER NOT NULL, evidence TEXT NOT NULL, note TEXT NOT NULL, created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL);
CREATE INDEX promotions_target ON promotions (target, environment, id);
CREATE INDEX promotions_repo ON promotions (repository, id);
CREATE INDEX promotions_state ON promotions (state, id);
CREATE UNIQUE INDEX promotions_one_moving ON promotions (target, environment) WHERE state = 'moving';
CREATE TABLE approvals (promotion_id BIGINT NOT NULL, approver TEXT NOT NULL, role TEXT NOT NULL, at BIGINT NOT NULL,
	PRIMARY KEY (promotion_id, approver));`,
	// 4: remediations.
	`CREATE TABLE remediations (id {{serial}} PRIMARY KEY, image TEXT NOT NULL, repository TEXT NOT NULL,
	strategy TEXT NOT NULL, from_digest TEXT NOT NULL, to_digest TEXT NOT NULL, fixes TEXT NOT NULL, added TEXT NOT NULL,
	status TEXT NOT NULL, detail TEXT NOT NULL, at BIGINT NOT NULL, by_whom TEXT NOT NULL);
CREATE INDEX remediations_image ON remediations (image, id);`,
	// 5: layer analyses keyed only by verified DiffIDs. The ones stored
	// before were keyed by the DiffID an image's config claimed, which no
	// one checked against the bytes: they are dropped and read again.
	`DELETE FROM layers;
DELETE FROM layer_claims;
CREATE TABLE layer_blobs (digest TEXT PRIMARY KEY, diff_id TEXT NOT NULL, verified_at BIGINT NOT NULL);
CREATE INDEX layer_blobs_diff ON layer_blobs (diff_id);`,
	// 6: tokens belong to users and may be scoped to repositories.
	`ALTER TABLE tokens ADD COLUMN user_name TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN repositories TEXT NOT NULL DEFAULT '';`,
	// 7: dashboard sessions.
	`CREATE TABLE sessions (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, user_name TEXT NOT NULL, role TEXT NOT NULL,
	source TEXT NOT NULL, csrf TEXT NOT NULL, created_at BIGINT NOT NULL, last_seen BIGINT NOT NULL,
	expires_at BIGINT NOT NULL, revoked_at BIGINT NOT NULL, remote TEXT NOT NULL);
CREATE INDEX sessions_user ON sessions (user_name, created_at);`,
	// 8: what runs in the clusters, from their pods.
	`CREATE TABLE running (cluster TEXT NOT NULL, namespace TEXT NOT NULL, workload TEXT NOT NULL, container TEXT NOT NULL,
	digest TEXT NOT NULL, repository TEXT NOT NULL, environment TEXT NOT NULL, pods INTEGER NOT NULL,
	since BIGINT NOT NULL, last_seen BIGINT NOT NULL, stopped_at BIGINT NOT NULL,
	PRIMARY KEY (cluster, namespace, workload, container, digest));
CREATE INDEX running_digest ON running (digest);
CREATE INDEX running_env ON running (environment, stopped_at);`,
	// 9: SBOMs other tools made of known images, kept for comparison.
	`CREATE TABLE imported_sboms (id {{serial}} PRIMARY KEY, digest TEXT NOT NULL, format TEXT NOT NULL, tools TEXT NOT NULL,
	imported_at BIGINT NOT NULL, packages {{blob}} NOT NULL);
CREATE INDEX imported_sboms_digest ON imported_sboms (digest, id);`,
	// 10: severities from every source, exploitation facts (KEV, EPSS),
	// and stored VEX documents that apply to every image.
	`CREATE TABLE ratings (id TEXT NOT NULL, source TEXT NOT NULL, severity TEXT NOT NULL,
	score DOUBLE PRECISION NOT NULL, vector TEXT NOT NULL, PRIMARY KEY (id, source));
CREATE TABLE exploits (id TEXT PRIMARY KEY, kev_added BIGINT NOT NULL DEFAULT 0, kev_due BIGINT NOT NULL DEFAULT 0,
	ransomware INTEGER NOT NULL DEFAULT 0, epss DOUBLE PRECISION NOT NULL DEFAULT 0,
	percentile DOUBLE PRECISION NOT NULL DEFAULT 0);
ALTER TABLE advisories ADD COLUMN severity_source TEXT NOT NULL DEFAULT '';
ALTER TABLE advisories ADD COLUMN ratings TEXT NOT NULL DEFAULT '[]';
ALTER TABLE advisories ADD COLUMN kev BIGINT NOT NULL DEFAULT 0;
ALTER TABLE advisories ADD COLUMN epss DOUBLE PRECISION NOT NULL DEFAULT 0;
CREATE TABLE vex_documents (digest TEXT PRIMARY KEY, name TEXT NOT NULL, format TEXT NOT NULL,
	data {{blob}} NOT NULL, added_at BIGINT NOT NULL, by_whom TEXT NOT NULL);`,
	// 11: image checks (socle check's image rules and layer report).
	`CREATE TABLE image_checks (digest TEXT PRIMARY KEY, repository TEXT NOT NULL, rules_version TEXT NOT NULL,
	checked_at BIGINT NOT NULL, result {{blob}} NOT NULL);`,
	// 12: fix runs, the closed loop from an advisory to fixed digests.
	`CREATE TABLE fix_runs (id {{serial}} PRIMARY KEY, advisories TEXT NOT NULL, status TEXT NOT NULL,
	started_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, detail TEXT NOT NULL, steps TEXT NOT NULL, fixed TEXT NOT NULL);`,
	// 13: findings derived at read time. An image's finding is the
	// overlap of its package link (package_images, link_history) with the
	// package version's match (package_matches, match_history); only
	// per-image closures that never reopen (a rebuild, VEX) are rows of
	// their own. A withdrawn advisory closes one row per package version,
	// not one per image. The old rows are carried over: the open ones give
	// the match and link times, the sticky closures stay, the others give
	// each closed match one interval.
	`ALTER TABLE package_matches ADD COLUMN opened_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE package_images ADD COLUMN since BIGINT NOT NULL DEFAULT 0;
CREATE TABLE match_history (package_id BIGINT NOT NULL, advisory_id TEXT NOT NULL, opened_at BIGINT NOT NULL,
	closed_at BIGINT NOT NULL, close_reason TEXT NOT NULL, PRIMARY KEY (package_id, advisory_id, opened_at));
CREATE TABLE link_history (image_id BIGINT NOT NULL, package_id BIGINT NOT NULL, since BIGINT NOT NULL,
	until BIGINT NOT NULL, PRIMARY KEY (image_id, package_id, since));
CREATE TABLE finding_closures (image_id BIGINT NOT NULL, package_id BIGINT NOT NULL, advisory_id TEXT NOT NULL,
	opened_at BIGINT NOT NULL, closed_at BIGINT NOT NULL, close_reason TEXT NOT NULL,
	PRIMARY KEY (image_id, package_id, advisory_id));
CREATE INDEX finding_closures_pkg ON finding_closures (package_id, advisory_id);
UPDATE package_matches SET opened_at = COALESCE((SELECT MIN(f.opened_at) FROM findings f
	WHERE f.package_id = package_matches.package_id AND f.advisory_id = package_matches.advisory_id), 0);
UPDATE package_images SET since = COALESCE((SELECT MIN(f.opened_at) FROM findings f
	WHERE f.image_id = package_images.image_id AND f.package_id = package_images.package_id),
	(SELECT scanned_at FROM images WHERE images.id = package_images.image_id), 0);
INSERT INTO finding_closures (image_id, package_id, advisory_id, opened_at, closed_at, close_reason)
	SELECT image_id, package_id, advisory_id, opened_at, closed_at, close_reason FROM findings
	WHERE closed_at <> 0 AND (close_reason LIKE 'fixed by rebuild%' OR close_reason LIKE 'vex%');
INSERT INTO match_history (package_id, advisory_id, opened_at, closed_at, close_reason)
	SELECT package_id, advisory_id, MIN(opened_at), MAX(closed_at), MIN(close_reason) FROM findings
	WHERE closed_at <> 0 AND close_reason NOT LIKE 'fixed by rebuild%' AND close_reason NOT LIKE 'vex%'
	AND close_reason <> 'package no longer in image'
	AND NOT EXISTS (SELECT 1 FROM package_matches pm WHERE pm.package_id = findings.package_id AND pm.advisory_id = findings.advisory_id)
	GROUP BY package_id, advisory_id;
DROP TABLE findings;`,
	// 14: an image's packages as narrow rows in one tree keyed by image
	// (the binary package, its layer index, and the time the image got it
	// so that its findings read no other link); what a binary package is
	// (name, version, type, purl, path) is stored once in binaries, shared
	// by every image holding it; a layer digest is kept only when the
	// image's layer list does not give it. The links read by image come
	// from there, so package_images needs no index by image: it is the
	// index by package version alone.
	`CREATE TABLE binaries (id {{serial}} PRIMARY KEY, package_id BIGINT NOT NULL, name TEXT NOT NULL, version TEXT NOT NULL,
	type TEXT NOT NULL, purl TEXT NOT NULL, path TEXT NOT NULL, UNIQUE (package_id, name, version, type, purl, path));
CREATE INDEX binaries_name ON binaries (name, package_id);
INSERT INTO binaries (package_id, name, version, type, purl, path)
	SELECT DISTINCT package_id, name, version, type, purl, path FROM image_packages WHERE true ON CONFLICT DO NOTHING;
CREATE TABLE image_packages_v14 (image_id BIGINT NOT NULL, binary_id BIGINT NOT NULL, package_id BIGINT NOT NULL,
	layer TEXT NOT NULL, layer_index INTEGER NOT NULL, since BIGINT NOT NULL,
	PRIMARY KEY (image_id, binary_id, layer_index)){{without_rowid}};
INSERT INTO image_packages_v14 (image_id, binary_id, package_id, layer, layer_index, since)
	SELECT ip.image_id, b.id, ip.package_id, ip.layer, ip.layer_index,
	COALESCE((SELECT pi.since FROM package_images pi WHERE pi.package_id = ip.package_id AND pi.image_id = ip.image_id), 0)
	FROM image_packages ip JOIN binaries b ON b.package_id = ip.package_id AND b.name = ip.name AND b.version = ip.version
	AND b.type = ip.type AND b.purl = ip.purl AND b.path = ip.path WHERE true ON CONFLICT DO NOTHING;
DROP TABLE image_packages;
ALTER TABLE image_packages_v14 RENAME TO image_packages;
DROP INDEX package_images_img;`,
	// 15: the images holding more than one version of a package (same
	// ecosystem and name), each such link a row: the images holding any
	// of an advisory's versions are then the sum of each version's
	// holders less these few, instead of a distinct count over every
	// holder.
	`CREATE TABLE package_multi (package_id BIGINT NOT NULL, image_id BIGINT NOT NULL,
	PRIMARY KEY (package_id, image_id)){{without_rowid}};
CREATE INDEX package_multi_img ON package_multi (image_id);
INSERT INTO package_multi (package_id, image_id)
	SELECT DISTINCT ip.package_id, ip.image_id FROM image_packages ip JOIN packages p ON p.id = ip.package_id
	JOIN (SELECT m.image_id, q.ecosystem, q.name FROM image_packages m JOIN packages q ON q.id = m.package_id
		GROUP BY m.image_id, q.ecosystem, q.name HAVING COUNT(DISTINCT m.package_id) > 1) g
	ON g.image_id = ip.image_id AND g.ecosystem = p.ecosystem AND g.name = p.name
	WHERE true ON CONFLICT DO NOTHING;`,
	// 16: what an inventory keeps of a package beyond its binaries row
	// (source, licenses, architecture, extractor), stored once by content
	// and referenced by the image's rows: the image's inventory is then
	// rebuilt from them instead of holding its packages again.
	`CREATE TABLE binary_extras (id {{serial}} PRIMARY KEY, hash TEXT NOT NULL UNIQUE, data {{blob}} NOT NULL);
ALTER TABLE image_packages ADD COLUMN extra_id BIGINT NOT NULL DEFAULT 0;`,
	// 17: an image's package rows as one value (image_package_sets, see
	// packRow), in the analyser's order, with their count; convertPackRows
	// fills it from image_packages and drops that.
	`CREATE TABLE image_package_sets (image_id BIGINT PRIMARY KEY, n INTEGER NOT NULL, data {{blob}} NOT NULL);`,
	// 18: smaller rows an image. Checks are kept by image ID, not by its
	// digest again (a check of a digest socle has not indexed was a cache
	// of a result computed again on demand: it is not carried over); the
	// tags' index by digest holds the digest's hash where the database
	// has hash indexes; an image's layer digests are one binary value
	// (layerlist.go), converted by convertLayerLists.
	`CREATE TABLE image_checks_v18 (image_id BIGINT PRIMARY KEY, repository TEXT NOT NULL, rules_version TEXT NOT NULL,
	checked_at BIGINT NOT NULL, result {{blob}} NOT NULL);
INSERT INTO image_checks_v18 (image_id, repository, rules_version, checked_at, result)
	SELECT i.id, c.repository, c.rules_version, c.checked_at, c.result FROM image_checks c JOIN images i ON i.digest = c.digest;
DROP TABLE image_checks;
ALTER TABLE image_checks_v18 RENAME TO image_checks;
DROP INDEX tags_digest;
CREATE INDEX tags_digest ON tags{{hash}} (digest);
ALTER TABLE images ADD COLUMN layer_list {{blob}};`,
	// 19: the link log (linklog.go): new links, folded into package_images
	// in key order.
	`CREATE TABLE package_images_log (package_id BIGINT NOT NULL, image_id BIGINT NOT NULL, since BIGINT NOT NULL,
	PRIMARY KEY (package_id, image_id)){{without_rowid}};`,
	// 20: the link tables are vacuumed soon after inserts (vacuumSoon).
	``,
	// 21: pending jobs are claimed through a function where the dialect
	// has one (claimFunction).
	``,
	// 22: link groups (linkgroups.go): a lower layer's links stored once,
	// shared by the images linking to them.
	`CREATE TABLE link_groups (id {{serial}} PRIMARY KEY, hash {{blob}} NOT NULL UNIQUE, packages {{blob}} NOT NULL);
CREATE TABLE group_packages (package_id BIGINT NOT NULL, group_id BIGINT NOT NULL, PRIMARY KEY (package_id, group_id)){{without_rowid}};
CREATE TABLE image_groups (group_id BIGINT NOT NULL, image_id BIGINT NOT NULL, since BIGINT NOT NULL,
	PRIMARY KEY (group_id, image_id)){{without_rowid}};
CREATE INDEX image_groups_img ON image_groups (image_id);`,
}

// migrationSteps run after the statements of the migration they are
// keyed by (its version), in its transaction: what SQL alone cannot do.
var migrationSteps = map[int]func(ctx context.Context, s *DB, tx *sql.Tx) error{
	17: convertPackRows,
	18: convertLayerLists,
	20: vacuumSoon,
	21: claimFunction,
}

// vacuumSoon makes the database's background vacuum visit the link
// tables after fewer inserts, where the dialect can (PostgreSQL). The
// "affected by" counts are index-only scans of them, which read the
// table too for every entry on a page not yet marked all-visible: with
// package_images' visibility map cleared, the median answer took 29 ms
// against 6.5 ms (100,000 images), and a growing table by default waits
// for a fifth of its size in new rows before it is vacuumed.
//
// image_groups, which those counts read too, keeps the default (a
// vacuum after a fifth of its size in new rows): it grows by about a row
// an image, where 100,000 rows would wait for 100,000 images.
func vacuumSoon(ctx context.Context, s *DB, tx *sql.Tx) error {
	if s.d.VacuumInserts == "" {
		return nil
	}
	for _, table := range []string{"package_images", "package_multi"} {
		if _, err := tx.ExecContext(ctx, `ALTER TABLE `+table+s.d.VacuumInserts); err != nil {
			return err
		}
	}
	return nil
}

// convertPackRows turns each image's image_packages rows into its
// image_package_sets value, images a range at a time (memory stays
// bounded), in the order ImagePackages listed them, and drops the table.
func convertPackRows(ctx context.Context, s *DB, tx *sql.Tx) error {
	const span = 500
	var last int64
	if err := s.queryRow(ctx, tx, `SELECT COALESCE(MAX(image_id), 0) FROM image_packages`).Scan(&last); err != nil {
		return err
	}
	type sorted struct {
		row                  packRow
		typ, name, ver, path string
	}
	for from := int64(0); from < last; from += span {
		byImage := map[int64][]sorted{}
		err := s.eachRowIn(ctx, tx, `SELECT ip.image_id, ip.binary_id, ip.package_id, ip.layer, ip.layer_index, ip.since, ip.extra_id,
b.type, b.name, b.version, b.path FROM image_packages ip JOIN binaries b ON b.id = ip.binary_id
WHERE ip.image_id > ? AND ip.image_id <= ?`, []any{from, from + span}, func(r *sql.Rows) error {
			var img int64
			var x sorted
			if err := r.Scan(&img, &x.row.bin, &x.row.pkg, &x.row.layer, &x.row.layerIndex, &x.row.since, &x.row.extra,
				&x.typ, &x.name, &x.ver, &x.path); err != nil {
				return err
			}
			byImage[img] = append(byImage[img], x)
			return nil
		})
		if err != nil {
			return err
		}
		var args []any
		for _, img := range slices.Sorted(maps.Keys(byImage)) {
			xs := byImage[img]
			slices.SortFunc(xs, func(a, b sorted) int {
				return cmp.Or(cmp.Compare(a.typ, b.typ), cmp.Compare(a.name, b.name), cmp.Compare(a.ver, b.ver),
					cmp.Compare(a.path, b.path), cmp.Compare(a.row.layerIndex, b.row.layerIndex), cmp.Compare(a.row.bin, b.row.bin))
			})
			rows := make([]packRow, len(xs))
			for i, x := range xs {
				rows[i] = x.row
			}
			args = append(args, img, len(rows), encodePackRows(rows))
		}
		// Not insertRows: its statements are prepared outside tx, where
		// the table does not exist yet.
		if err := s.execRows(ctx, tx, `INSERT INTO image_package_sets (image_id, n, data) VALUES`, `ON CONFLICT DO NOTHING`, 3, args); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `DROP TABLE image_packages`)
	return err
}

func (s *DB) migrate(ctx context.Context) error { return s.migrateTo(ctx, len(migrations)) }

// migrateTo applies the migrations up to version last.
func (s *DB) migrateTo(ctx context.Context, last int) error {
	for i, m := range migrations[:last] {
		version := i + 1
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if s.d.LockMigrations != "" {
				if _, err := tx.ExecContext(ctx, s.d.LockMigrations); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
				return fmt.Errorf("creating schema_migrations: %w", err)
			}
			var n int
			if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range splitStatements(s.expand(m)) {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d: %w\n%s", version, err, stmt)
				}
			}
			if step := migrationSteps[version]; step != nil {
				if err := step(ctx, s, tx); err != nil {
					return fmt.Errorf("migration %d: %w", version, err)
				}
			}
			_, err := s.exec(ctx, tx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, ts(time.Now()))
			return err
		})
		if err != nil {
			if s.d.IsUnique != nil && s.d.IsUnique(err) {
				continue // another server applied it at the same time
			}
			return err
		}
	}
	return nil
}

func (s *DB) expand(m string) string {
	r := strings.NewReplacer(
		"{{blob}}", s.d.Blob,
		"{{serial}}", s.d.Serial,
		"{{without_rowid}}", s.d.WithoutRowID,
		"{{hash}}", s.d.HashIndex,
		"{{audit_triggers}}", triggers(s.d.AuditTriggers),
	)
	return r.Replace(m)
}

// splitStatements splits on ";\n" and on "---" separators; trigger
// bodies, which contain semicolons, are separated by "---".
func splitStatements(m string) []string {
	var out []string
	for _, block := range strings.Split(m, "\n---\n") {
		if strings.Contains(block, "BEGIN") || strings.Contains(block, "$$") {
			if b := strings.TrimSpace(block); b != "" {
				out = append(out, b)
			}
			continue
		}
		for _, stmt := range strings.Split(block, ";\n") {
			stmt = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(stmt), ";"))
			if stmt != "" {
				out = append(out, stmt)
			}
		}
	}
	return out
}

func triggers(ts []string) string {
	if len(ts) == 0 {
		return ""
	}
	return "---\n" + strings.Join(ts, "\n---\n")
}
