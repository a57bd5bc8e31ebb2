package sqlstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// putImage records one image and its package links in tx; refs are its
// packages', binaries' and extras' IDs (the caller resolved them, see
// imageRefs), and its new links to package versions join links, which
// the caller writes. The caller bumps the findings generation.
func (s *DB) putImage(ctx context.Context, tx *sql.Tx, img store.Image, pkgs []store.ImagePackage,
	refs *imageRefs, links *batchLinks) error {
	layers := encodeLayerList(img.Layers)
	labels, _ := json.Marshal(img.Labels)
	return func() error {
		// A repository change renames an image in cached answers.
		var oldRepo string
		row, err := s.queryRowPrepared(ctx, tx, `SELECT repository FROM images WHERE digest = ?`, img.Digest)
		if err != nil {
			return err
		}
		err = row.Scan(&oldRepo)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		known := err == nil
		if known && img.Repository != "" && oldRepo != img.Repository {
			if err := s.bump(ctx, tx, imagesGenKey); err != nil {
				return err
			}
		}
		var imageID int64
		row, err = s.queryRowPrepared(ctx, tx, `INSERT INTO images (`+imageWriteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
`+imageUpsert+` RETURNING id`,
			img.Digest, img.Repository, img.MediaType, img.Config, img.Platform, ts(img.Created), img.OS, img.Ecosystem,
			img.BaseName, img.BaseDigest, layers, img.Size, ts(img.ScannedAt), string(labels), img.ChainID)
		if err != nil {
			return err
		}
		if err := row.Scan(&imageID); err != nil {
			return err
		}
		if !known && !s.d.SingleWriter {
			// Another transaction may have stored the image since the
			// question above (two servers indexing one push): the insert
			// waited for it to commit, and its rows are visible now.
			var n int
			if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM image_package_sets WHERE image_id = ?`, imageID).Scan(&n); err != nil {
				return err
			}
			known = n > 0
		}
		if known {
			// The same image may be earlier in the batch: its links
			// are written before relink reads and replaces them.
			if err := links.flush(ctx, s, tx); err != nil {
				return err
			}
		}
		// The inventory lives apart, so that image rows stay small and the
		// fleet's queries read few pages.
		if _, err := s.execPrepared(ctx, tx, `INSERT INTO image_inventories (image_id, data) VALUES (?, ?)
ON CONFLICT (image_id) DO UPDATE SET data = excluded.data`, imageID, nonNilBytes(img.Inventory)); err != nil {
			return err
		}
		since, err := s.relink(ctx, tx, imageID, known, heldVersions{refs.pkg, pkgs, len(img.Layers) - 1}, linkTime(img), links)
		if err != nil {
			return err
		}
		if err := s.putMulti(ctx, tx, imageID, known, refs); err != nil {
			return err
		}
		// Its findings follow from the links: nothing else is written.
		return s.putImagePackages(ctx, tx, imageID, img.Layers, pkgs, refs, since)
	}()
}

// linkTime is when an image's new links begin: when it was scanned.
func linkTime(img store.Image) int64 {
	if now := ts(img.ScannedAt); now != 0 {
		return now
	}
	return ts(time.Now())
}

// imageWriteColumns are the images columns an ingest writes, and
// imageUpsert how it updates an image stored before: a push without a
// repository or base keeps the ones known.
const (
	imageWriteColumns = `digest, repository, media_type, config, platform, created, os, ecosystem,
base_name, base_digest, layer_list, size, scanned_at, labels, chain_id`
	imageUpsert = `ON CONFLICT (digest) DO UPDATE SET repository = CASE WHEN excluded.repository <> '' THEN excluded.repository ELSE images.repository END,
media_type = excluded.media_type, config = excluded.config, platform = excluded.platform, created = excluded.created,
os = excluded.os, ecosystem = excluded.ecosystem,
base_name = CASE WHEN excluded.base_name <> '' THEN excluded.base_name ELSE images.base_name END,
base_digest = CASE WHEN excluded.base_digest <> '' THEN excluded.base_digest ELSE images.base_digest END,
layer_list = excluded.layer_list, size = excluded.size, scanned_at = excluded.scanned_at, labels = excluded.labels,
chain_id = excluded.chain_id`
)

// putImagePackages replaces the image's package rows. A package's layer
// digest is left out when the image's layer list gives it at its index.
func (s *DB) putImagePackages(ctx context.Context, tx *sql.Tx, imageID int64, layers []string, pkgs []store.ImagePackage,
	refs *imageRefs, since map[int64]int64) error {
	_, err := s.execPrepared(ctx, tx, `INSERT INTO image_package_sets (image_id, n, data) VALUES (?, ?, ?)
ON CONFLICT (image_id) DO UPDATE SET n = excluded.n, data = excluded.data`, imageID, len(pkgs), packSet(layers, pkgs, refs, since))
	return err
}

// packSet is an image's package rows as image_package_sets holds them.
func packSet(layers []string, pkgs []store.ImagePackage, refs *imageRefs, since map[int64]int64) []byte {
	rows := make([]packRow, 0, len(pkgs))
	for i, p := range pkgs {
		layer := p.Layer
		if p.LayerIndex >= 0 && p.LayerIndex < len(layers) && layers[p.LayerIndex] == layer {
			layer = ""
		}
		id := refs.pkg[i]
		rows = append(rows, packRow{bin: refs.bin[i], pkg: id, layer: layer, layerIndex: p.LayerIndex,
			since: since[id], extra: refs.extra[i]})
	}
	return encodePackRows(rows)
}

// extraHash names a package's extra data in binary_extras.
func extraHash(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ensureExtras returns the binary_extras IDs of pkgs' extra data (by the
// data), inserting what is not stored yet, and those it read (to cache
// once the transaction commits).
func (s *DB) ensureExtras(ctx context.Context, tx *sql.Tx, pkgs []store.ImagePackage) (all, read map[string]int64, err error) {
	out := map[string]int64{}
	data := map[string]string{} // by hash
	var missing []string
	for _, p := range pkgs {
		if len(p.Extra) == 0 {
			continue
		}
		if _, ok := out[string(p.Extra)]; ok {
			continue
		}
		if id, ok := s.packages.extra(p.Extra); ok {
			out[string(p.Extra)] = id
			continue
		}
		h := extraHash(p.Extra)
		out[string(p.Extra)], data[h] = 0, string(p.Extra)
		missing = append(missing, h)
	}
	if len(missing) == 0 {
		return out, nil, nil
	}
	slices.Sort(missing) // one lock order for every writer
	args := make([]any, 0, 2*len(missing))
	for _, h := range missing {
		args = append(args, h, []byte(data[h]))
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO binary_extras (hash, data) VALUES`, `ON CONFLICT DO NOTHING`, 2, args); err != nil {
		return nil, nil, err
	}
	for _, batch := range chunks(missing, 500) {
		err := s.eachRowIn(ctx, tx, `SELECT id, hash FROM binary_extras WHERE hash IN (`+placeholders(len(batch))+`)`, anySlice(batch),
			func(r *sql.Rows) error {
				var id int64
				var h string
				if err := r.Scan(&id, &h); err != nil {
					return err
				}
				out[data[h]] = id
				return nil
			})
		if err != nil {
			return nil, nil, err
		}
	}
	read = make(map[string]int64, len(missing))
	for _, h := range missing {
		if out[data[h]] == 0 {
			return nil, nil, fmt.Errorf("package data %s was not stored", h[:12])
		}
		read[data[h]] = out[data[h]]
	}
	return out, read, nil
}

// binaryKey is what a binaries row is.
type binaryKey struct {
	pkg                            int64
	name, version, typ, purl, path string
}

func binaryOf(p store.ImagePackage, pkgID int64) binaryKey {
	return binaryKey{pkgID, p.Name, p.Version, p.Type, p.PURL, p.Path}
}

// ensureBinaries returns the IDs of the binaries of pkgs, inserting the
// ones not stored yet, and those it read (to cache once the transaction
// commits).
func (s *DB) ensureBinaries(ctx context.Context, tx *sql.Tx, pkgs []store.ImagePackage, ids map[store.PackageKey]int64) (all, read map[binaryKey]int64, err error) {
	out := make(map[binaryKey]int64, len(pkgs))
	var missing []binaryKey
	for _, p := range pkgs {
		k := binaryOf(p, ids[p.Key])
		if _, ok := out[k]; ok {
			continue
		}
		if id, ok := s.packages.binary(k); ok {
			out[k] = id
			continue
		}
		out[k] = 0
		missing = append(missing, k)
	}
	if len(missing) == 0 {
		return out, nil, nil
	}
	slices.SortFunc(missing, func(a, b binaryKey) int {
		return cmp.Or(cmp.Compare(a.pkg, b.pkg), cmp.Compare(a.name, b.name), cmp.Compare(a.version, b.version),
			cmp.Compare(a.typ, b.typ), cmp.Compare(a.purl, b.purl), cmp.Compare(a.path, b.path))
	})
	args := make([]any, 0, 6*len(missing))
	pkgIDs := map[int64]bool{}
	for _, k := range missing {
		args = append(args, k.pkg, k.name, k.version, k.typ, k.purl, k.path)
		pkgIDs[k.pkg] = true
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO binaries (package_id, name, version, type, purl, path) VALUES`, `ON CONFLICT DO NOTHING`, 6, args); err != nil {
		return nil, nil, err
	}
	var list []int64
	for id := range pkgIDs {
		list = append(list, id)
	}
	for _, batch := range chunks(list, 500) {
		err := s.eachRowIn(ctx, tx, `SELECT id, package_id, name, version, type, purl, path FROM binaries WHERE package_id IN (`+placeholders(len(batch))+`)`,
			anySlice(batch), func(r *sql.Rows) error {
				var id int64
				var k binaryKey
				if err := r.Scan(&id, &k.pkg, &k.name, &k.version, &k.typ, &k.purl, &k.path); err != nil {
					return err
				}
				if v, ok := out[k]; ok && v == 0 {
					out[k] = id
				}
				return nil
			})
		if err != nil {
			return nil, nil, err
		}
	}
	read = make(map[binaryKey]int64, len(missing))
	for _, k := range missing {
		if out[k] == 0 {
			return nil, nil, fmt.Errorf("binary package %s %s was not stored", k.name, k.version)
		}
		read[k] = out[k]
	}
	return out, read, nil
}

// relink makes the image's package links those to held's (known: the
// image was stored before): a package it gains is linked since now (its findings open now;
// the row joins links), one it lost moves to link_history (its findings
// close as store.ClosePackageRemoved), and a kept one keeps its time. A
// new image's lower layers become group links (linkgroups.go); a stored
// image whose links change has its group links turned into rows first.
// It returns each package's link time.
func (s *DB) relink(ctx context.Context, tx *sql.Tx, imageID int64, known bool, held heldVersions, now int64,
	links *batchLinks) (map[int64]int64, error) {
	old := map[int64]int64{}
	if known {
		rows, err := s.packRowsOf(ctx, tx, imageID)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			old[r.pkg] = r.since
		}
	}
	keep := make(map[int64]int64, len(held.ids))
	var fresh []int
	for i, id := range held.ids {
		if _, ok := keep[id]; ok {
			continue
		}
		if since, ok := old[id]; ok {
			keep[id] = since
		} else {
			keep[id] = now
			fresh = append(fresh, i)
		}
	}
	var gone []any
	for p, since := range old {
		if _, ok := keep[p]; !ok {
			gone = append(gone, imageID, p, since, now)
		}
	}
	if known && (len(fresh) > 0 || len(gone) > 0) {
		if err := s.ungroup(ctx, tx, imageID, keep, links); err != nil {
			return nil, err
		}
	}
	min := s.groupMin
	if min <= 0 {
		min = defaultGroupMin
	}
	links.addFresh(imageID, now, held, fresh, !known, min)
	for _, batch := range chunks(gone, 400) {
		if _, err := s.exec(ctx, tx, `INSERT INTO link_history (image_id, package_id, since, until) VALUES `+rowPlaceholders(len(batch)/4, 4)+`
ON CONFLICT (image_id, package_id, since) DO UPDATE SET until = excluded.until`, batch...); err != nil {
			return nil, err
		}
		pkgs := make([]any, 0, len(batch)/4)
		for i := 1; i < len(batch); i += 4 {
			pkgs = append(pkgs, batch[i])
		}
		if err := s.deleteLinks(ctx, tx, imageID, pkgs); err != nil {
			return nil, err
		}
	}
	return keep, nil
}

// newLinks are a batch's new link rows, written together in index order
// (batchLinks.flush, insertLinks): consecutive rows then fall in the same
// index pages, which a batch of images sharing bases makes common.
type newLinks []newLink

type newLink struct{ pkg, image, since int64 }

// sort puts l in index order (package, then image).
func (l newLinks) sort() {
	slices.SortFunc(l, func(a, b newLink) int {
		if a.pkg != b.pkg {
			return cmp.Compare(a.pkg, b.pkg)
		}
		return cmp.Compare(a.image, b.image)
	})
}

// arrays returns l's columns, one array each.
func (l newLinks) arrays() (pkgs, images, since []int64) {
	pkgs, images, since = make([]int64, len(l)), make([]int64, len(l)), make([]int64, len(l))
	for i, k := range l {
		pkgs[i], images[i], since[i] = k.pkg, k.image, k.since
	}
	return pkgs, images, since
}

// putMulti records the image's links to package versions that share
// their package (ecosystem and name) with another version the image
// holds (refs.multi): package_multi, which distinctHolders subtracts.
func (s *DB) putMulti(ctx context.Context, tx *sql.Tx, imageID int64, known bool, refs *imageRefs) error {
	if known {
		if _, err := s.exec(ctx, tx, `DELETE FROM package_multi WHERE image_id = ?`, imageID); err != nil {
			return err
		}
	}
	var args []any
	for _, id := range refs.multiIDs() {
		args = append(args, id, imageID)
	}
	return s.insertRows(ctx, tx, `INSERT INTO package_multi (package_id, image_id) VALUES`, `ON CONFLICT DO NOTHING`, 2, args)
}

// multiIDs are the package versions of refs.multi, each once.
func (r *imageRefs) multiIDs() []int64 {
	var out []int64
	seen := map[int64]bool{}
	for _, i := range r.multi {
		if id := r.pkg[i]; !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// ensurePackages inserts the match keys of pkgs and returns their IDs,
// and the rows never matched yet, in two statements per hundred keys.
func (s *DB) ensurePackages(ctx context.Context, tx *sql.Tx, pkgs []store.ImagePackage) (map[store.PackageKey]int64, []store.PackageRow, error) {
	var keys []store.PackageKey
	seen := map[store.PackageKey]bool{}
	ids := make(map[store.PackageKey]int64, len(pkgs))
	for _, p := range pkgs {
		if seen[p.Key] {
			continue
		}
		seen[p.Key] = true
		if id, ok := s.packages.get(p.Key); ok {
			ids[p.Key] = id
			continue
		}
		keys = append(keys, p.Key)
	}
	// One order for every writer, so that concurrent transactions take
	// the unique index's locks in the same order (no deadlock).
	slices.SortFunc(keys, func(a, b store.PackageKey) int {
		return cmp.Or(cmp.Compare(a.Ecosystem, b.Ecosystem), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version))
	})
	var fresh []store.PackageRow
	for _, batch := range chunks(keys, 100) {
		args := make([]any, 0, len(batch)*3)
		names := make([]any, 0, len(batch))
		for _, k := range batch {
			args = append(args, k.Ecosystem, k.Name, k.Version)
			names = append(names, k.Name)
		}
		if _, err := s.exec(ctx, tx, `INSERT INTO packages (ecosystem, name, version) VALUES `+rowPlaceholders(len(batch), 3)+`
ON CONFLICT (ecosystem, name, version) DO NOTHING`, args...); err != nil {
			return nil, nil, fmt.Errorf("storing package keys: %w", err)
		}
		rows, err := s.query(ctx, tx, `SELECT id, ecosystem, name, version, matched_at FROM packages WHERE name IN (`+placeholders(len(names))+`)`, names...)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var r store.PackageRow
			var matched int64
			if err := rows.Scan(&r.ID, &r.Ecosystem, &r.Name, &r.Version, &matched); err != nil {
				rows.Close()
				return nil, nil, err
			}
			if !seen[r.PackageKey] {
				continue
			}
			if _, dup := ids[r.PackageKey]; dup {
				continue
			}
			ids[r.PackageKey] = r.ID
			if matched == 0 {
				fresh = append(fresh, r)
			} else {
				s.packages.put(r.PackageKey, r.ID)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	for k := range seen {
		if _, ok := ids[k]; !ok {
			return nil, nil, fmt.Errorf("package %v was not stored", k)
		}
	}
	return ids, fresh, nil
}

const imageColumns = `digest, repository, media_type, config, platform, created, os, ecosystem, base_name, base_digest, layer_list, size, scanned_at, labels, chain_id`

func scanImage(row interface{ Scan(...any) error }, img *store.Image, extra ...any) error {
	var created, scanned int64
	var layers []byte
	var labels string
	dest := append([]any{&img.Digest, &img.Repository, &img.MediaType, &img.Config, &img.Platform, &created, &img.OS,
		&img.Ecosystem, &img.BaseName, &img.BaseDigest, &layers, &img.Size, &scanned, &labels, &img.ChainID}, extra...)
	if err := row.Scan(dest...); err != nil {
		return err
	}
	img.Created, img.ScannedAt = fromTS(created), fromTS(scanned)
	var err error
	if img.Layers, err = decodeLayerList(layers); err != nil {
		return fmt.Errorf("image %s: %w", img.Digest, err)
	}
	_ = json.Unmarshal([]byte(labels), &img.Labels)
	return nil
}

func (s *DB) Image(ctx context.Context, digest string) (store.Image, error) {
	var img store.Image
	row := s.queryRow(ctx, s.db, `SELECT `+prefixed("images.", imageColumns)+`, COALESCE(v.data, '') FROM images
LEFT JOIN image_inventories v ON v.image_id = images.id WHERE images.digest = ?`, digest)
	if err := scanImage(row, &img, &img.Inventory); err != nil {
		return img, notFound(err, "image "+digest)
	}
	return img, nil
}

func (s *DB) ImagesByChainID(ctx context.Context, chainID string) ([]store.Image, error) {
	rows, err := s.query(ctx, s.db, `SELECT `+imageColumns+` FROM images WHERE chain_id = ? ORDER BY scanned_at, digest`, chainID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Image
	for rows.Next() {
		var img store.Image
		if err := scanImage(rows, &img); err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, rows.Err()
}

func (s *DB) HasImage(ctx context.Context, digest string) (bool, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM images WHERE digest = ?`, digest).Scan(&n)
	return n > 0, err
}

func (s *DB) ImageCount(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM images`).Scan(&n)
	return n, err
}

func (s *DB) Images(ctx context.Context, f store.ImageFilter) ([]store.ImageSummary, error) {
	limit := pageLimit(f.Limit, 1000)
	where, args := "", []any{}
	if f.Repository != "" {
		where, args = ` WHERE i.repository = ?`, append(args, f.Repository)
	}
	args = append(args, limit, f.Offset)
	rows, err := s.query(ctx, s.db, `SELECT `+prefixed("i.", imageColumns)+`, COALESCE(ps.n, 0)
FROM images i LEFT JOIN image_package_sets ps ON ps.image_id = i.id`+where+` ORDER BY i.scanned_at DESC, i.digest LIMIT ? OFFSET ?`, args...)
	if err != nil {
		return nil, err
	}
	var out []store.ImageSummary
	byDigest := map[string]int{}
	for rows.Next() {
		var img store.Image
		var n int
		if err := scanImage(rows, &img, &n); err != nil {
			rows.Close()
			return nil, err
		}
		byDigest[img.Digest] = len(out)
		out = append(out, store.ImageSummary{
			Digest: img.Digest, Repository: img.Repository, Platform: img.Platform, OS: img.OS,
			Created: img.Created, ScannedAt: img.ScannedAt, BaseName: img.BaseName, BaseDigest: img.BaseDigest,
			Packages: n, Open: map[string]int{}, Fixable: map[string]int{},
		})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	digests := make([]string, 0, len(out))
	for _, sm := range out {
		digests = append(digests, sm.Digest)
	}
	for _, batch := range chunks(digests, 500) {
		if err := s.fillSummaries(ctx, batch, out, byDigest); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// fillSummaries adds finding counts, the open findings' distinct
// severities and exploitation facts, tags and environments.
func (s *DB) fillSummaries(ctx context.Context, digests []string, out []store.ImageSummary, byDigest map[string]int) error {
	if err := s.fillThreats(ctx, digests, out, byDigest); err != nil {
		return err
	}
	tags, err := s.tagsOf(ctx, digests)
	if err != nil {
		return err
	}
	envs, err := s.environmentsOf(ctx, digests)
	if err != nil {
		return err
	}
	for d, i := range byDigest {
		out[i].Tags = tags[d]
		out[i].Environments = envs[d]
	}
	return nil
}

// fillThreats counts the open findings of images (by digest): each
// current match of a package version an image holds, of an advisory not
// withdrawn, that no sticky closure keeps closed.
func (s *DB) fillThreats(ctx context.Context, digests []string, out []store.ImageSummary, byDigest map[string]int) error {
	held, digestOf, err := s.heldPackages(ctx, digests)
	if err != nil || len(held) == 0 {
		return err
	}
	all := map[int64]bool{}
	ids := make([]int64, 0, len(held))
	for img, pkgs := range held {
		ids = append(ids, img)
		for _, p := range pkgs {
			all[p] = true
		}
	}
	matches, err := s.threatsOf(ctx, sortedIDs(all))
	if err != nil {
		return err
	}
	closed, err := s.stickyPairs(ctx, ids)
	if err != nil {
		return err
	}
	for img, pkgs := range held {
		sm := &out[byDigest[digestOf[img]]]
		for _, p := range pkgs {
			for _, m := range matches[p] {
				if !closed[img][pairKey{p, m.adv}] {
					countThreat(sm, m)
				}
			}
		}
		slices.SortFunc(sm.Threats, func(a, b store.Threat) int {
			return cmp.Or(cmp.Compare(a.Severity, b.Severity), cmp.Compare(a.Score, b.Score), a.KEV.Compare(b.KEV), cmp.Compare(a.EPSS, b.EPSS))
		})
	}
	return nil
}

// heldPackages reads the package versions each image (by digest) holds,
// by image ID, and the images' digests.
func (s *DB) heldPackages(ctx context.Context, digests []string) (map[int64][]int64, map[int64]string, error) {
	held := map[int64][]int64{}
	digestOf := map[int64]string{}
	in, args := inList(s, digests)
	err := s.eachRow(ctx, `SELECT i.id, i.digest, ps.data FROM images i JOIN image_package_sets ps ON ps.image_id = i.id
WHERE i.digest `+in, args, func(r *sql.Rows) error {
		var im imageRows
		var d string
		var data []byte
		if err := r.Scan(&im.id, &d, &data); err != nil {
			return err
		}
		var err error
		if im.rows, err = decodePackRows(data); err != nil {
			return fmt.Errorf("image %s: %w", d, err)
		}
		held[im.id], digestOf[im.id] = im.packages(), d
		return nil
	})
	return held, digestOf, err
}

// threatsOf reads the current matches of package versions to advisories
// not withdrawn, by package version.
func (s *DB) threatsOf(ctx context.Context, pkgs []int64) (map[int64][]pairThreat, error) {
	matches := map[int64][]pairThreat{}
	for _, batch := range chunks(pkgs, 500) {
		in, args := inList(s, batch)
		err := s.eachRow(ctx, `SELECT pm.package_id, pm.advisory_id, a.severity, pm.fixed_version <> '', a.score, a.kev, a.epss
FROM package_matches pm JOIN advisories a ON a.id = pm.advisory_id
WHERE a.withdrawn = 0 AND pm.package_id `+in, args, func(r *sql.Rows) error {
			var pkg, kev int64
			var m pairThreat
			if err := r.Scan(&pkg, &m.adv, &m.t.Severity, &m.fixable, &m.t.Score, &kev, &m.t.EPSS); err != nil {
				return err
			}
			m.t.KEV = fromTS(kev)
			matches[pkg] = append(matches[pkg], m)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return matches, nil
}

// stickyPairs reads the findings sticky closures keep closed, by image.
func (s *DB) stickyPairs(ctx context.Context, images []int64) (map[int64]map[pairKey]bool, error) {
	out := map[int64]map[pairKey]bool{}
	for _, batch := range chunks(images, 500) {
		in, args := inList(s, batch)
		err := s.eachRow(ctx, `SELECT image_id, package_id, advisory_id FROM finding_closures WHERE image_id `+in, args, func(r *sql.Rows) error {
			var img int64
			var k pairKey
			if err := r.Scan(&img, &k.pkg, &k.adv); err != nil {
				return err
			}
			if out[img] == nil {
				out[img] = map[pairKey]bool{}
			}
			out[img][k] = true
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// countThreat adds an open finding to an image's summary.
func countThreat(sm *store.ImageSummary, m pairThreat) {
	sm.Open[m.t.Severity]++
	if m.fixable {
		sm.Fixable[m.t.Severity]++
	}
	if !m.t.KEV.IsZero() {
		sm.KEV++
	}
	if !slices.Contains(sm.Threats, m.t) {
		sm.Threats = append(sm.Threats, m.t)
	}
}

// pairThreat is a package version's current match as a summary counts it.
type pairThreat struct {
	adv     string
	t       store.Threat
	fixable bool
}

func (s *DB) tagsOf(ctx context.Context, digests []string) (map[string][]string, error) {
	return s.byDigest(ctx, `SELECT digest, tag FROM tags WHERE digest IN (%s) ORDER BY tag`, digests)
}

// byDigest runs query (a SELECT of digest and a value, %s where the
// digests' placeholders go) for digests, 500 at a time, and returns the
// values by digest, in the query's order.
func (s *DB) byDigest(ctx context.Context, query string, digests []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, batch := range chunks(digests, 500) {
		rows, err := s.query(ctx, s.db, fmt.Sprintf(query, placeholders(len(batch))), anySlice(batch)...)
		if err != nil {
			return nil, err
		}
		if err := collect(rows, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type tagRequest struct {
	ctx context.Context
	ev  store.TagEvent
	err error
}

// PutTag moves a tag; concurrent moves are committed together, with the
// images indexed at once (see group).
func (s *DB) PutTag(ctx context.Context, ev store.TagEvent) error {
	r := &tagRequest{ctx: ctx, ev: ev}
	s.writes.run(writeRequest{tag: r}, maxIngestBatch, s.writeBatch)
	return r.err
}

// moveTags records a batch of tag moves (in tag order) in tx: in one
// statement where the database takes arrays and each tag moves once,
// else move by move. It reports whether any tag moved; the caller then
// bumps the tags generation.
func (s *DB) moveTags(ctx context.Context, tx *sql.Tx, evs []store.TagEvent) (bool, error) {
	if s.d.Arrays && distinct(evs, func(ev store.TagEvent) tagKey { return tagKey{ev.Repository, ev.Tag} }) {
		return s.putTagArrays(ctx, tx, evs)
	}
	moved := false
	for _, ev := range evs {
		m, err := s.putTag(ctx, tx, ev)
		if err != nil {
			return false, err
		}
		moved = moved || m
	}
	return moved, nil
}

// putTag moves one tag and records the move, unless it names the digest
// it has already; it reports whether the tag moved. The caller bumps the
// tags generation.
func (s *DB) putTag(ctx context.Context, tx *sql.Tx, ev store.TagEvent) (bool, error) {
	var cur string
	row, err := s.queryRowPrepared(ctx, tx, `SELECT digest FROM tags WHERE repository = ? AND tag = ?`, ev.Repository, ev.Tag)
	if err != nil {
		return false, err
	}
	err = row.Scan(&cur)
	if err == nil && cur == ev.Digest {
		return false, nil
	}
	if err != nil && err != sql.ErrNoRows {
		return false, err
	}
	if _, err := s.execPrepared(ctx, tx, `INSERT INTO tags (repository, tag, digest, since) VALUES (?, ?, ?, ?)
ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, since = excluded.since`,
		ev.Repository, ev.Tag, ev.Digest, ts(ev.At)); err != nil {
		return false, err
	}
	_, err = s.execPrepared(ctx, tx, `INSERT INTO tag_history (repository, tag, digest, at) VALUES (?, ?, ?, ?)`,
		ev.Repository, ev.Tag, ev.Digest, ts(ev.At))
	return err == nil, err
}

// putTagArrays is putTag for a batch of distinct tags (in tag order) on a
// database that takes arrays: one statement for the batch, which moves
// the tags not naming their digest already, in tag order, and records
// those moves. Each tag's digest is a subquery of its own, which reads
// the tags index: as a join, PostgreSQL planned a scan of every tag for
// the ~100 rows it guesses an unnest gives.
func (s *DB) putTagArrays(ctx context.Context, tx *sql.Tx, evs []store.TagEvent) (bool, error) {
	repos, tags, digests, at := make([]string, len(evs)), make([]string, len(evs)), make([]string, len(evs)), make([]int64, len(evs))
	for i, ev := range evs {
		repos[i], tags[i], digests[i], at[i] = ev.Repository, ev.Tag, ev.Digest, ts(ev.At)
	}
	res, err := s.exec(ctx, tx, `WITH moved AS (
	SELECT q.repository, q.tag, q.digest, q.at, q.n
	FROM unnest(?::text[], ?::text[], ?::text[], ?::bigint[]) WITH ORDINALITY AS q (repository, tag, digest, at, n)
	WHERE (SELECT t.digest FROM tags t WHERE t.repository = q.repository AND t.tag = q.tag) IS DISTINCT FROM q.digest),
up AS (INSERT INTO tags (repository, tag, digest, since) SELECT repository, tag, digest, at FROM moved ORDER BY n
	ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, since = excluded.since)
INSERT INTO tag_history (repository, tag, digest, at) SELECT repository, tag, digest, at FROM moved ORDER BY n`, s.replanned(repos, tags, digests, at)...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// tagKey names a tag.
type tagKey struct{ repo, tag string }

func (s *DB) DeleteTag(ctx context.Context, repository, tag string, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var cur string
		err := s.queryRow(ctx, tx, `SELECT digest FROM tags WHERE repository = ? AND tag = ?`, repository, tag).Scan(&cur)
		if err == sql.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM tags WHERE repository = ? AND tag = ?`, repository, tag); err != nil {
			return err
		}
		if err := s.bump(ctx, tx, tagsGenKey); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `INSERT INTO tag_history (repository, tag, digest, at, deleted) VALUES (?, ?, ?, ?, 1)`,
			repository, tag, cur, ts(at))
		return err
	})
}

func (s *DB) Tags(ctx context.Context, repository string) ([]store.TagEvent, error) {
	where, args := "", []any{}
	if repository != "" {
		where, args = ` WHERE repository = ?`, []any{repository}
	}
	rows, err := s.query(ctx, s.db, `SELECT repository, tag, digest, since FROM tags`+where+` ORDER BY repository, tag`, args...)
	if err != nil {
		return nil, err
	}
	return scanTagEvents(rows)
}

func (s *DB) TagHistory(ctx context.Context, repository, tag string) ([]store.TagEvent, error) {
	rows, err := s.query(ctx, s.db, `SELECT repository, tag, digest, at FROM tag_history
WHERE repository = ? AND tag = ? AND deleted = 0 ORDER BY at DESC, id DESC`, repository, tag)
	if err != nil {
		return nil, err
	}
	return scanTagEvents(rows)
}

func scanTagEvents(rows *sql.Rows) ([]store.TagEvent, error) {
	defer rows.Close()
	var out []store.TagEvent
	for rows.Next() {
		var ev store.TagEvent
		var at int64
		if err := rows.Scan(&ev.Repository, &ev.Tag, &ev.Digest, &at); err != nil {
			return nil, err
		}
		ev.At = fromTS(at)
		out = append(out, ev)
	}
	return out, rows.Err()
}

func (s *DB) ImagePackages(ctx context.Context, digest string) ([]store.ImagePackage, error) {
	im, err := s.readImageRows(ctx, s.db, digest)
	if err != nil || im == nil || len(im.rows) == 0 {
		return nil, err
	}
	bins, extraIDs := map[int64]bool{}, map[int64]bool{}
	for _, r := range im.rows {
		bins[r.bin] = true
		if r.extra != 0 {
			extraIDs[r.extra] = true
		}
	}
	keys, binaries, err := s.packageRows(ctx, im.packages(), sortedIDs(bins))
	if err != nil {
		return nil, err
	}
	extras := map[int64][]byte{}
	for _, batch := range chunks(sortedIDs(extraIDs), 500) {
		in, args := inList(s, batch)
		err := s.eachRow(ctx, `SELECT id, data FROM binary_extras WHERE id `+in, args, func(r *sql.Rows) error {
			var id int64
			var data []byte
			if err := r.Scan(&id, &data); err != nil {
				return err
			}
			extras[id] = data
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := make([]store.ImagePackage, 0, len(im.rows))
	for _, r := range im.rows {
		b, ok := binaries[r.bin]
		if !ok {
			return nil, fmt.Errorf("image %s: binary package %d is missing", digest, r.bin)
		}
		out = append(out, store.ImagePackage{Key: keys[r.pkg], Name: b.name, Version: b.version, Type: b.typ, PURL: b.purl,
			Path: b.path, Layer: im.layerOf(r), LayerIndex: r.layerIndex, Extra: extras[r.extra]})
	}
	slices.SortStableFunc(out, func(a, b store.ImagePackage) int {
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Version, b.Version), cmp.Compare(a.Path, b.Path))
	})
	return out, nil
}

func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// prefixed qualifies a comma-separated column list.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = prefix + p
	}
	return strings.Join(parts, ", ")
}
