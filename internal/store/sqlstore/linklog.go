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
// images. Readers ask both tables (linkTables, the queries naming
// package_images_log). PostgreSQL, whose writers run in parallel, writes
// package_images directly, a batch's links as three arrays in one
// statement, and keeps the log empty.
const foldLinksAt = 100_000

// SetLinkFold makes the writer fold the link log once it holds n rows
// (foldLinksAt by default): for tests and benchmarks.
func (s *DB) SetLinkFold(n int) { s.linkFold = n }

// insertLinks writes new links (in key order) where they go, folding
// the log when it is due.
func (s *DB) insertLinks(ctx context.Context, tx *sql.Tx, links []newLink) error {
	if !s.d.SingleWriter {
		return s.insertLinksInto(ctx, tx, "package_images", links)
	}
	if err := s.insertLinksInto(ctx, tx, "package_images_log", links); err != nil {
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
		s.logged += len(links)
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

// insertLinksInto inserts links into table: as three arrays in one
// statement where the database takes arrays, else rows of parameters.
func (s *DB) insertLinksInto(ctx context.Context, tx *sql.Tx, table string, links []newLink) error {
	if s.d.Arrays {
		pkgs, images, since := newLinks(links).arrays()
		_, err := s.exec(ctx, tx, insertLinkArrays(table), pkgs, images, since)
		return err
	}
	args := make([]any, 0, 3*len(links))
	for _, l := range links {
		args = append(args, l.pkg, l.image, l.since)
	}
	return s.insertRows(ctx, tx, `INSERT INTO `+table+` (package_id, image_id, since) VALUES`, "", 3, args)
}

// insertLinkArrays inserts links given as three arrays into table.
func insertLinkArrays(table string) string {
	return `INSERT INTO ` + table + ` (package_id, image_id, since) SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::bigint[])`
}

// linkCounts counts the images holding each of pkgs (distinct IDs), in
// one query a link table (and one for the groups) and a few hundred
// versions instead of one a version:
// an advisory can match dozens, and each was a round trip.
func (s *DB) linkCounts(ctx context.Context, x execer, pkgs []int64) (map[int64]int, error) {
	out := make(map[int64]int, len(pkgs))
	for _, batch := range chunks(pkgs, 500) {
		for _, table := range s.linkTables() {
			in, args := inList(s, batch)
			err := s.eachRowIn(ctx, x, `SELECT package_id, COUNT(*) FROM `+table+` WHERE package_id `+in+` GROUP BY package_id`, args,
				addCounts(out))
			if err != nil {
				return nil, err
			}
		}
		if err := s.groupCounts(ctx, x, batch, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// addCounts reads rows of (ID, count), adding each count to out[ID].
func addCounts(out map[int64]int) func(*sql.Rows) error {
	return func(r *sql.Rows) error {
		var id int64
		var n int
		if err := r.Scan(&id, &n); err != nil {
			return err
		}
		out[id] += n
		return nil
	}
}

// linkTables are the tables holding current links: package_images, and
// the log where the writer keeps one (a single writer; elsewhere it stays
// empty and is not read).
func (s *DB) linkTables() []string {
	if s.d.SingleWriter {
		return []string{"package_images", "package_images_log"}
	}
	return []string{"package_images"}
}

// deleteLinks removes an image's links to pkgs from the link tables.
func (s *DB) deleteLinks(ctx context.Context, tx *sql.Tx, imageID int64, pkgs []any) error {
	for _, table := range s.linkTables() {
		if _, err := s.exec(ctx, tx, `DELETE FROM `+table+` WHERE image_id = ? AND package_id IN (`+placeholders(len(pkgs))+`)`,
			append([]any{imageID}, pkgs...)...); err != nil {
			return err
		}
	}
	return nil
}
