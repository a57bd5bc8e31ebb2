package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/socle-dev/socle/internal/store"
)

// putImages is putImage for a whole batch of distinct images on a
// database that takes arrays (PostgreSQL): each table gets one statement
// for the batch, its rows as arrays, instead of one statement an image.
// A batch of 64 images was ~320 round trips, each a few tens of
// microseconds of both processes' CPU; the rows written are the same.
// Rows go in digest order, then image ID order, so that concurrent
// batches take their locks in one order.
func (s *DB) putImages(ctx context.Context, tx *sql.Tx, rs []*putRequest, refs []imageRefs, links *batchLinks) error {
	order := make([]int, len(rs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(rs[a].img.Digest, rs[b].img.Digest) })
	ids, known, err := s.placeImages(ctx, tx, rs, order)
	if err != nil {
		return err
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(ids[a], ids[b]) })
	var w batchRows
	for _, i := range order {
		r, id := rs[i], ids[i]
		since, err := s.relink(ctx, tx, id, known[i], heldVersions{refs[i].pkg, r.pkgs, len(r.img.Layers) - 1}, linkTime(r.img), links)
		if err != nil {
			return err
		}
		if known[i] {
			w.known = append(w.known, id)
		}
		for _, p := range refs[i].multiIDs() {
			w.multiPkgs, w.multiImages = append(w.multiPkgs, p), append(w.multiImages, id)
		}
		w.ids, w.counts = append(w.ids, id), append(w.counts, int32(len(r.pkgs)))
		w.inventories = append(w.inventories, nonNilBytes(r.img.Inventory))
		w.sets = append(w.sets, packSet(r.img.Layers, r.pkgs, &refs[i], since))
	}
	return s.writeImageRows(ctx, tx, w, links)
}

// batchRows are what putImages writes of a batch besides its image rows
// and links, each as one array: the images' IDs and, aligned with them,
// their package counts, inventories and package sets; the images stored
// before (their package_multi rows go); and the package_multi rows.
type batchRows struct {
	ids, known, multiPkgs, multiImages []int64
	counts                             []int32
	inventories, sets                  [][]byte
}

// writeImageRows writes w and the batch's new links in one statement,
// each table's rows as arrays in a statement of its own within it (one
// round trip instead of one a table), after removing the package_multi
// rows of the images stored before (in a statement before it: the
// inserts would not see that removal).
func (s *DB) writeImageRows(ctx context.Context, tx *sql.Tx, w batchRows, links *batchLinks) error {
	if len(w.known) > 0 {
		if _, err := s.exec(ctx, tx, `DELETE FROM package_multi WHERE image_id = ANY(?)`, w.known); err != nil {
			return err
		}
	}
	var parts []string
	var args []any
	part := func(stmt string, a ...any) {
		parts = append(parts, fmt.Sprintf("w%d AS (%s)", len(parts), stmt))
		args = append(args, a...)
	}
	if len(w.multiPkgs) > 0 {
		part(`INSERT INTO package_multi (package_id, image_id)
SELECT * FROM unnest(?::bigint[], ?::bigint[]) ON CONFLICT DO NOTHING`, w.multiPkgs, w.multiImages)
	}
	// Where new links go to the link log (SQLite), links.flush writes them.
	if len(links.rows) > 0 && !s.d.SingleWriter {
		links.rows.sort()
		pkgs, images, since := links.rows.arrays()
		part(insertLinkArrays("package_images"), pkgs, images, since)
		links.rows = links.rows[:0]
	}
	if len(links.groups) > 0 {
		ids, err := s.groupIDs(ctx, tx, links)
		if err != nil {
			return err
		}
		groups, images, since := links.groupRows(ids)
		part(insertGroupArrays, groups, images, since)
	}
	part(`INSERT INTO image_inventories (image_id, data) SELECT * FROM unnest(?::bigint[], ?::bytea[])
ON CONFLICT (image_id) DO UPDATE SET data = excluded.data`, w.ids, w.inventories)
	_, err := s.exec(ctx, tx, `WITH `+strings.Join(parts, ", ")+`
INSERT INTO image_package_sets (image_id, n, data) SELECT * FROM unnest(?::bigint[], ?::int[], ?::bytea[])
ON CONFLICT (image_id) DO UPDATE SET n = excluded.n, data = excluded.data`, append(args, w.ids, w.counts, w.sets)...)
	return err
}

// placeImages writes the batch's image rows (in order, rs's indexes)
// and returns each image's ID and whether the store held it before, as
// putImage does one image: a repository change bumps the images
// generation, and an image another transaction stored since the first
// question counts as known.
func (s *DB) placeImages(ctx context.Context, tx *sql.Tx, rs []*putRequest, order []int) (ids []int64, known []bool, err error) {
	digests := make([]string, len(order))
	for k, i := range order {
		digests[k] = rs[i].img.Digest
	}
	oldRepo := map[string]string{}
	err = s.eachRowIn(ctx, tx, `SELECT digest, repository FROM images WHERE digest = ANY(?)`, s.replanned(digests), func(r *sql.Rows) error {
		var d, repo string
		if err := r.Scan(&d, &repo); err != nil {
			return err
		}
		oldRepo[d] = repo
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	known = make([]bool, len(rs))
	renamed := false
	for i, r := range rs {
		repo, ok := oldRepo[r.img.Digest]
		known[i] = ok
		renamed = renamed || ok && r.img.Repository != "" && repo != r.img.Repository
	}
	if renamed {
		if err := s.bump(ctx, tx, imagesGenKey); err != nil {
			return nil, nil, err
		}
	}
	cols := &imageArrays{}
	for _, i := range order {
		cols.add(rs[i].img)
	}
	idOf := make(map[string]int64, len(rs))
	err = s.eachRowIn(ctx, tx, `INSERT INTO images (`+imageWriteColumns+`)
SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[],
?::bytea[], ?::bigint[], ?::bigint[], ?::text[], ?::text[])
`+imageUpsert+` RETURNING id, digest`, cols.args(), func(r *sql.Rows) error {
		var id int64
		var d string
		if err := r.Scan(&id, &d); err != nil {
			return err
		}
		idOf[d] = id
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	ids = make([]int64, len(rs))
	var fresh []int64
	for i, r := range rs {
		if ids[i] = idOf[r.img.Digest]; ids[i] == 0 {
			return nil, nil, fmt.Errorf("image %s was not stored", r.img.Digest)
		}
		if !known[i] {
			fresh = append(fresh, ids[i])
		}
	}
	if len(fresh) == 0 {
		return ids, known, nil
	}
	// Another transaction may have stored one of them since the question
	// above (two servers indexing one push): the insert waited for it to
	// commit, and its rows are visible now.
	stored := map[int64]bool{}
	err = s.eachRowIn(ctx, tx, `SELECT image_id FROM image_package_sets WHERE image_id = ANY(?)`, s.replanned(fresh), func(r *sql.Rows) error {
		var id int64
		err := r.Scan(&id)
		stored[id] = true
		return err
	})
	for i := range rs {
		known[i] = known[i] || stored[ids[i]]
	}
	return ids, known, err
}

// imageArrays are image rows as one array a column, in
// imageWriteColumns' order.
type imageArrays struct {
	digest, repository, mediaType, config, platform, os, ecosystem, baseName, baseDigest, labels, chainID []string
	created, size, scannedAt                                                                              []int64
	layers                                                                                                [][]byte
}

func (c *imageArrays) add(img store.Image) {
	labels, _ := json.Marshal(img.Labels)
	c.digest = append(c.digest, img.Digest)
	c.repository = append(c.repository, img.Repository)
	c.mediaType = append(c.mediaType, img.MediaType)
	c.config = append(c.config, img.Config)
	c.platform = append(c.platform, img.Platform)
	c.created = append(c.created, ts(img.Created))
	c.os = append(c.os, img.OS)
	c.ecosystem = append(c.ecosystem, img.Ecosystem)
	c.baseName = append(c.baseName, img.BaseName)
	c.baseDigest = append(c.baseDigest, img.BaseDigest)
	c.layers = append(c.layers, encodeLayerList(img.Layers))
	c.size = append(c.size, img.Size)
	c.scannedAt = append(c.scannedAt, ts(img.ScannedAt))
	c.labels = append(c.labels, string(labels))
	c.chainID = append(c.chainID, img.ChainID)
}

func (c *imageArrays) args() []any {
	return []any{c.digest, c.repository, c.mediaType, c.config, c.platform, c.created, c.os, c.ecosystem, c.baseName,
		c.baseDigest, c.layers, c.size, c.scannedAt, c.labels, c.chainID}
}

// distinct reports whether no two of xs have the same key: a batch
// written with one statement a table (putImages, putTagArrays) may change
// a row only once.
func distinct[T any, K comparable](xs []T, key func(T) K) bool {
	seen := make(map[K]bool, len(xs))
	for _, x := range xs {
		k := key(x)
		if seen[k] {
			return false
		}
		seen[k] = true
	}
	return true
}
