package sqlstore

import (
	"context"
	"database/sql"
)

// The links of a package version to the images holding it are one index
// (package_images, keyed by package then image), so an image's ~200 new
// links land on ~200 leaf pages scattered over it, and a single-writer
// database (SQLite) writes each such page whole at every commit: most of
// its ingest time at fleet scale. There, new links go to
// package_images_log, a table of the same shape kept small, whose pages
// a batch rewrites again and again instead; once it holds foldLinksAt
// rows, the writer moves them into package_images in key order in the
// same transaction, each leaf page then written once for hundreds of
// images. Readers ask both tables (linkCount, the queries naming
// package_images_log). PostgreSQL, whose writers run in parallel, writes
// package_images directly and keeps the log empty.
const foldLinksAt = 100_000

// SetLinkFold makes the writer fold the link log once it holds n rows
// (foldLinksAt by default): for tests and benchmarks.
func (s *DB) SetLinkFold(n int) { s.linkFold = n }

// insertLinks writes new links (package_id, image_id, since triples in
// key order) where they go, folding the log when it is due.
func (s *DB) insertLinks(ctx context.Context, tx *sql.Tx, args []any) error {
	const insert = ` (package_id, image_id, since) VALUES`
	if !s.d.SingleWriter {
		return s.insertRows(ctx, tx, `INSERT INTO package_images`+insert, "", 3, args)
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO package_images_log`+insert, "", 3, args); err != nil {
		return err
	}
	// The writer holds the only write transaction: the count it keeps is
	// the log's, but for a transaction that rolled back, which at worst
	// folds early. It is read once per process.
	if s.logged < 0 {
		if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM package_images_log`).Scan(&s.logged); err != nil {
			return err
		}
	} else {
		s.logged += len(args) / 3
	}
	fold := s.linkFold
	if fold <= 0 {
		fold = foldLinksAt
	}
	if s.logged < fold {
		return nil
	}
	if _, err := s.exec(ctx, tx, `INSERT INTO package_images (package_id, image_id, since)
SELECT package_id, image_id, since FROM package_images_log ORDER BY package_id, image_id`); err != nil {
		return err
	}
	if _, err := s.exec(ctx, tx, `DELETE FROM package_images_log`); err != nil {
		return err
	}
	s.logged = 0
	return nil
}

// linkCount counts the images holding a package version.
func (s *DB) linkCount(ctx context.Context, x execer, pkg int64) (int, error) {
	var n int
	err := s.queryRow(ctx, x, `SELECT (SELECT COUNT(*) FROM package_images WHERE package_id = ?)
+ (SELECT COUNT(*) FROM package_images_log WHERE package_id = ?)`, pkg, pkg).Scan(&n)
	return n, err
}

// deleteLinks removes an image's links to pkgs from both tables.
func (s *DB) deleteLinks(ctx context.Context, tx *sql.Tx, imageID int64, pkgs []any) error {
	for _, table := range []string{"package_images", "package_images_log"} {
		if _, err := s.exec(ctx, tx, `DELETE FROM `+table+` WHERE image_id = ? AND package_id IN (`+placeholders(len(pkgs))+`)`,
			append([]any{imageID}, pkgs...)...); err != nil {
			return err
		}
	}
	return nil
}
