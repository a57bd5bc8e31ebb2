package sqlstore

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/socle-dev/socle/internal/store"
)

// Link groups (migration 22). The package versions an image holds in a
// layer below its top one are mostly a base or runtime image's, which
// many images share: they are stored once as a group (link_groups: the
// versions, keyed by their hash; group_packages: the same by version),
// and the image links to the group (image_groups, with the time it got
// them). An image of 200 versions on a shared base then writes its top
// layer's links and one row a lower layer instead of 200 rows, where
// those index inserts were most of the ingest's database time. A group is
// content-addressed: images share it when the versions are the same,
// whatever the layers' digests.
//
// Every link of an image is in exactly one place, so that counts add up:
// versions of its top layer, of a layer holding fewer than
// defaultGroupMin, and every link of an image whose links change once
// stored (ungroup) are rows of package_images (or its log) as before.
// Readers ask the groups too: linkHeld, holderBranches, groupCounts and
// the queries naming image_groups.
const defaultGroupMin = 8

// maxCachedGroups bounds the group IDs a process keeps (~50 bytes each).
const maxCachedGroups = 1 << 16

// SetLinkGroupMin makes a lower layer's links a group once it holds n
// versions (defaultGroupMin by default): for tests.
func (s *DB) SetLinkGroupMin(n int) { s.groupMin = n }

// groupLink is an image's link to a group: the versions (sorted,
// distinct) and their hash.
type groupLink struct {
	image, since int64
	hash         [32]byte
	pkgs         []int64
}

// batchLinks are a transaction's new links not yet written: rows
// (package_images) and group links, and the group IDs it resolved
// (cached once it commits: a rolled-back group must not be remembered).
type batchLinks struct {
	rows    newLinks
	groups  []groupLink
	learned map[[32]byte]int64
}

// flush writes the pending links: rows in index order, then group links.
func (l *batchLinks) flush(ctx context.Context, s *DB, tx *sql.Tx) error {
	if len(l.rows) > 0 {
		l.rows.sort()
		if err := s.insertLinks(ctx, tx, l.rows); err != nil {
			return err
		}
		l.rows = l.rows[:0]
	}
	return s.writeGroupLinks(ctx, tx, l)
}

// heldVersions are the package versions an image holds: their IDs
// (refs.pkg), aligned with its packages, and the index of its top layer.
type heldVersions struct {
	ids  []int64
	pkgs []store.ImagePackage
	top  int
}

// addFresh adds an image's new links: held.ids[i] for each i in fresh,
// the versions the image did not hold. With grouped, each layer below
// the top one holding at least min of them becomes a group link, the rest
// rows.
func (l *batchLinks) addFresh(image, since int64, held heldVersions, fresh []int, grouped bool, min int) {
	byLayer := map[int][]int64{}
	for _, i := range fresh {
		if layer := held.pkgs[i].LayerIndex; grouped && layer < held.top {
			byLayer[layer] = append(byLayer[layer], held.ids[i])
			continue
		}
		l.rows = append(l.rows, newLink{pkg: held.ids[i], image: image, since: since})
	}
	for _, pkgs := range byLayer {
		if len(pkgs) < min {
			for _, p := range pkgs {
				l.rows = append(l.rows, newLink{pkg: p, image: image, since: since})
			}
			continue
		}
		slices.Sort(pkgs)
		l.groups = append(l.groups, groupLink{image: image, since: since, hash: groupHash(pkgs), pkgs: pkgs})
	}
}

// groupHash is the key of a group of versions (sorted, distinct).
func groupHash(pkgs []int64) [32]byte {
	b := make([]byte, 0, 8*len(pkgs))
	for _, p := range pkgs {
		b = binary.LittleEndian.AppendUint64(b, uint64(p))
	}
	return sha256.Sum256(b)
}

// encodeGroup and decodeGroup store a group's versions (sorted) as
// varint deltas.
func encodeGroup(pkgs []int64) []byte {
	b := make([]byte, 0, 3*len(pkgs))
	var last int64
	for _, p := range pkgs {
		b = binary.AppendUvarint(b, uint64(p-last))
		last = p
	}
	return b
}

func decodeGroup(b []byte) ([]int64, error) {
	var out []int64
	var last uint64
	for len(b) > 0 {
		// IDs start at 1 and rise: a delta is at least 1.
		d, n := binary.Uvarint(b)
		if n <= 0 || d == 0 || d > math.MaxInt64-last {
			return nil, fmt.Errorf("link group: bad encoding")
		}
		last += d
		out = append(out, int64(last))
		b = b[n:]
	}
	return out, nil
}

// groupCache holds the IDs of groups committed: a group never changes
// nor goes away, so every server may keep its own.
type groupCache struct {
	mu  sync.RWMutex
	ids map[[32]byte]int64
}

func (c *groupCache) get(h [32]byte) (int64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.ids[h]
	return id, ok
}

func (c *groupCache) remember(m map[[32]byte]int64) {
	if len(m) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	mergeBounded(&c.ids, m, maxCachedGroups)
}

// groupIDs returns the ID of each group l links to, writing the groups
// never stored, in hash order (concurrent writers of one new group take
// its unique key's lock in one order: the second waits for the first
// and then reads it).
func (s *DB) groupIDs(ctx context.Context, tx *sql.Tx, l *batchLinks) (map[[32]byte]int64, error) {
	ids := map[[32]byte]int64{}
	var missing []*groupLink
	for i := range l.groups {
		g := &l.groups[i]
		if _, ok := ids[g.hash]; ok {
			continue
		}
		if id, ok := l.learned[g.hash]; ok {
			ids[g.hash] = id
		} else if id, ok := s.groups.get(g.hash); ok {
			ids[g.hash] = id
		} else {
			ids[g.hash] = 0
			missing = append(missing, g)
		}
	}
	slices.SortFunc(missing, func(a, b *groupLink) int { return bytes.Compare(a.hash[:], b.hash[:]) })
	for _, batch := range chunks(missing, 100) {
		if err := s.placeGroups(ctx, tx, batch, ids); err != nil {
			return nil, err
		}
	}
	if l.learned == nil {
		l.learned = map[[32]byte]int64{}
	}
	for h, id := range ids {
		if id == 0 {
			return nil, fmt.Errorf("link group %x was not stored", h[:8])
		}
		l.learned[h] = id
	}
	return ids, nil
}

// placeGroups inserts the groups of batch (distinct, not in ids yet),
// and the group_packages rows of those it created, and reads the IDs of
// the others.
func (s *DB) placeGroups(ctx context.Context, tx *sql.Tx, batch []*groupLink, ids map[[32]byte]int64) error {
	args := make([]any, 0, 2*len(batch))
	for _, g := range batch {
		args = append(args, g.hash[:], encodeGroup(g.pkgs))
	}
	var created []int64
	err := s.eachRowIn(ctx, tx, `INSERT INTO link_groups (hash, packages) VALUES `+rowPlaceholders(len(batch), 2)+`
ON CONFLICT (hash) DO NOTHING RETURNING id, hash`, args, scanGroupID(ids, func(id int64) { created = append(created, id) }))
	if err != nil {
		return err
	}
	var members []any
	byID := map[int64]bool{}
	for _, id := range created {
		byID[id] = true
	}
	for _, g := range batch {
		if id := ids[g.hash]; byID[id] {
			for _, p := range g.pkgs {
				members = append(members, p, id)
			}
		}
	}
	if err := s.insertRows(ctx, tx, `INSERT INTO group_packages (package_id, group_id) VALUES`, "", 2, members); err != nil {
		return err
	}
	if len(created) == len(batch) {
		return nil
	}
	var hashes []any
	for _, g := range batch {
		if ids[g.hash] == 0 {
			hashes = append(hashes, g.hash[:])
		}
	}
	return s.eachRowIn(ctx, tx, `SELECT id, hash FROM link_groups WHERE hash IN (`+placeholders(len(hashes))+`)`, hashes,
		scanGroupID(ids, func(int64) {}))
}

// scanGroupID reads a row of (id, hash) of link_groups into ids and
// hands seen the ID.
func scanGroupID(ids map[[32]byte]int64, seen func(id int64)) func(*sql.Rows) error {
	return func(r *sql.Rows) error {
		var id int64
		var h []byte
		if err := r.Scan(&id, &h); err != nil {
			return err
		}
		if len(h) != 32 {
			return fmt.Errorf("link group %d: a hash of %d bytes", id, len(h))
		}
		ids[[32]byte(h)] = id
		seen(id)
		return nil
	}
}

// groupRows returns l's group links as image_groups columns, in key
// order, and empties them.
func (l *batchLinks) groupRows(ids map[[32]byte]int64) (groups, images, since []int64) {
	slices.SortFunc(l.groups, func(a, b groupLink) int {
		return cmp.Or(cmp.Compare(ids[a.hash], ids[b.hash]), cmp.Compare(a.image, b.image))
	})
	for _, g := range l.groups {
		groups, images, since = append(groups, ids[g.hash]), append(images, g.image), append(since, g.since)
	}
	l.groups = l.groups[:0]
	return groups, images, since
}

// writeGroupLinks writes l's group links (image_groups rows).
func (s *DB) writeGroupLinks(ctx context.Context, tx *sql.Tx, l *batchLinks) error {
	if len(l.groups) == 0 {
		return nil
	}
	ids, err := s.groupIDs(ctx, tx, l)
	if err != nil {
		return err
	}
	groups, images, since := l.groupRows(ids)
	if s.d.Arrays {
		_, err := s.exec(ctx, tx, insertGroupArrays, groups, images, since)
		return err
	}
	args := make([]any, 0, 3*len(groups))
	for i := range groups {
		args = append(args, groups[i], images[i], since[i])
	}
	return s.insertRows(ctx, tx, `INSERT INTO image_groups (group_id, image_id, since) VALUES`, "", 3, args)
}

// insertGroupArrays inserts image_groups rows given as three arrays.
const insertGroupArrays = `INSERT INTO image_groups (group_id, image_id, since) SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::bigint[])`

// ungroup turns an image's group links into rows, for the versions it
// keeps (keep: each one's link time), and removes them: the image's links
// are about to change, which rows record one by one.
func (s *DB) ungroup(ctx context.Context, tx *sql.Tx, imageID int64, keep map[int64]int64, l *batchLinks) error {
	found := false
	err := s.eachRowIn(ctx, tx, `SELECT lg.packages FROM image_groups ig JOIN link_groups lg ON lg.id = ig.group_id WHERE ig.image_id = ?`,
		[]any{imageID}, func(r *sql.Rows) error {
			var b []byte
			if err := r.Scan(&b); err != nil {
				return err
			}
			pkgs, err := decodeGroup(b)
			if err != nil {
				return err
			}
			found = true
			for _, p := range pkgs {
				if since, ok := keep[p]; ok {
					l.rows = append(l.rows, newLink{pkg: p, image: imageID, since: since})
				}
			}
			return nil
		})
	if err != nil || !found {
		return err
	}
	_, err = s.exec(ctx, tx, `DELETE FROM image_groups WHERE image_id = ?`, imageID)
	return err
}

// linkHeld is the condition that image imageCol holds version pkgCol
// now: a link row, in the log, or through a group.
func linkHeld(pkgCol, imageCol string) string {
	return `(EXISTS (SELECT 1 FROM package_images pi WHERE pi.package_id = ` + pkgCol + ` AND pi.image_id = ` + imageCol + `)
	OR EXISTS (SELECT 1 FROM package_images_log pl WHERE pl.package_id = ` + pkgCol + ` AND pl.image_id = ` + imageCol + `)
	OR EXISTS (SELECT 1 FROM image_groups ig JOIN group_packages gp ON gp.group_id = ig.group_id
		WHERE ig.image_id = ` + imageCol + ` AND gp.package_id = ` + pkgCol + `))`
}

// maxGroupBranches is how many groups of one version holderBranches
// reads as branches of their own; past it, one branch reads them all.
const maxGroupBranches = 32

// holderBranches returns the SELECTs (UNION ALL) of the first IDs of
// the images holding pkgID, each branch its first first in image order:
// its rows, the log's where the writer keeps one, and each of its
// groups' image links. A page ordered by image then merges a few short
// index scans: asked without the branches' limits, PostgreSQL read and
// sorted every holder for the page (57 ms for 30,000 against 1.2 ms).
func (s *DB) holderBranches(ctx context.Context, pkgID int64, first int) (string, []any, error) {
	groups, err := s.groupsHolding(ctx, s.db, []int64{pkgID})
	if err != nil {
		return "", nil, err
	}
	var parts []string
	var args []any
	branch := func(from string, a ...any) {
		parts = append(parts, fmt.Sprintf(`SELECT image_id FROM (SELECT image_id FROM %s ORDER BY image_id LIMIT ?) b%d`, from, len(parts)))
		args = append(append(args, a...), first)
	}
	branch(`package_images WHERE package_id = ?`, pkgID)
	if s.d.SingleWriter {
		branch(`package_images_log WHERE package_id = ?`, pkgID)
	}
	ids := make([]int64, 0, len(groups))
	for _, g := range groups {
		ids = append(ids, g.group)
	}
	if len(ids) > maxGroupBranches {
		branch(`image_groups WHERE group_id IN (`+placeholders(len(ids))+`)`, anySlice(ids)...)
	} else {
		for _, g := range ids {
			branch(`image_groups WHERE group_id = ?`, g)
		}
	}
	return strings.Join(parts, "\nUNION ALL "), args, nil
}

// groupMember is a version's membership of a group.
type groupMember struct{ pkg, group int64 }

// groupsHolding lists the groups holding each of pkgs.
func (s *DB) groupsHolding(ctx context.Context, x execer, pkgs []int64) ([]groupMember, error) {
	var out []groupMember
	in, args := inList(s, pkgs)
	err := s.eachRowIn(ctx, x, `SELECT package_id, group_id FROM group_packages WHERE package_id `+in, args, func(r *sql.Rows) error {
		var m groupMember
		if err := r.Scan(&m.pkg, &m.group); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// groupCounts adds to out, per version of pkgs, the images linked to it
// through groups: each group's images counted once (one index range
// each), however many of pkgs it holds.
func (s *DB) groupCounts(ctx context.Context, x execer, pkgs []int64, out map[int64]int) error {
	members, err := s.groupsHolding(ctx, x, pkgs)
	if err != nil || len(members) == 0 {
		return err
	}
	var groups []int64
	seen := map[int64]bool{}
	for _, m := range members {
		if !seen[m.group] {
			seen[m.group] = true
			groups = append(groups, m.group)
		}
	}
	size := make(map[int64]int, len(groups))
	in, args := inList(s, groups)
	err = s.eachRowIn(ctx, x, `SELECT lg.id, (SELECT COUNT(*) FROM image_groups ig WHERE ig.group_id = lg.id) FROM link_groups lg WHERE lg.id `+in, args,
		addCounts(size))
	if err != nil {
		return err
	}
	for _, m := range members {
		out[m.pkg] += size[m.group]
	}
	return nil
}
