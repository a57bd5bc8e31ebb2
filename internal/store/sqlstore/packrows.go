package sqlstore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
)

// packRow is one of an image's package rows: the binary package, its
// package version, its layer digest (empty when the image's layer list
// gives it at layerIndex), the time the image got the package version
// (its findings open no earlier) and what else the inventory keeps of it
// (binary_extras, 0 for nothing).
type packRow struct {
	bin, pkg   int64
	layer      string
	layerIndex int
	since      int64
	extra      int64
}

// An image's package rows are one value (image_package_sets), in the
// analyser's order: an image's ~200 packages are then one row to write
// and read instead of 200, and nothing reads them but by image.
// packRowsFormat is its first byte; then the count, and per row the
// changes from the row before (zigzag varints: IDs of one image are
// close, and every row of an image usually has the same time) and the
// layer digest's length and bytes.
const packRowsFormat = 1

// minPackRow is the fewest bytes a row takes.
const minPackRow = 6

func encodePackRows(rows []packRow) []byte {
	b := make([]byte, 0, 8+len(rows)*10)
	b = append(b, packRowsFormat)
	b = binary.AppendUvarint(b, uint64(len(rows)))
	var prev packRow
	for _, r := range rows {
		b = binary.AppendVarint(b, r.bin-prev.bin)
		b = binary.AppendVarint(b, r.pkg-prev.pkg)
		b = binary.AppendVarint(b, int64(r.layerIndex))
		b = binary.AppendVarint(b, r.since-prev.since)
		b = binary.AppendVarint(b, r.extra-prev.extra)
		b = binary.AppendUvarint(b, uint64(len(r.layer)))
		b = append(b, r.layer...)
		prev = r
	}
	return b
}

var errPackRows = errors.New("an image's package rows are corrupt")

// decodePackRows reads what encodePackRows wrote; what it allocates is
// bounded by the input's length.
func decodePackRows(b []byte) ([]packRow, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if b[0] != packRowsFormat {
		return nil, fmt.Errorf("%w: format %d", errPackRows, b[0])
	}
	d := packReader{b: b[1:]}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)/minPackRow) {
		return nil, errPackRows
	}
	out := make([]packRow, 0, n)
	var prev packRow
	for range n {
		r := packRow{
			bin: prev.bin + d.varint(), pkg: prev.pkg + d.varint(), layerIndex: int(d.varint()),
			since: prev.since + d.varint(), extra: prev.extra + d.varint(),
		}
		r.layer = d.str()
		if d.err != nil {
			return nil, d.err
		}
		out = append(out, r)
		prev = r
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes left", errPackRows, len(d.b))
	}
	return out, nil
}

// packReader reads varints, keeping the first error; what it reports
// for bytes that are not a value is bad (errPackRows when nil).
type packReader struct {
	b   []byte
	err error
	bad error
}

// fail records that the bytes are not a value.
func (d *packReader) fail() {
	d.err = d.bad
	if d.err == nil {
		d.err = errPackRows
	}
}

func (d *packReader) uvarint() uint64 { return readNext(d, binary.Uvarint) }
func (d *packReader) varint() int64   { return readNext(d, binary.Varint) }

// readNext reads one value with read, which returns it and its length
// (not positive when the bytes are not one).
func readNext[T any](d *packReader, read func([]byte) (T, int)) T {
	var zero T
	if d.err != nil {
		return zero
	}
	v, n := read(d.b)
	if n <= 0 {
		d.fail()
		return zero
	}
	d.b = d.b[n:]
	return v
}

func (d *packReader) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// imageRows is an image and its package rows.
type imageRows struct {
	id     int64
	layers []string
	rows   []packRow
	// advGen is the advisory generation read with the rows, so that the
	// advisories shown with them are checked against the same state
	// without a round trip of their own.
	advGen string
}

// layerOf is a row's layer digest.
func (im *imageRows) layerOf(r packRow) string {
	if r.layer != "" {
		return r.layer
	}
	if r.layerIndex < 0 || r.layerIndex >= len(im.layers) {
		return ""
	}
	return im.layers[r.layerIndex]
}

// packages are the distinct package versions of the rows, in order.
func (im *imageRows) packages() []int64 {
	seen := make(map[int64]bool, len(im.rows))
	var out []int64
	for _, r := range im.rows {
		if !seen[r.pkg] {
			seen[r.pkg] = true
			out = append(out, r.pkg)
		}
	}
	return out
}

// readImageRows reads an image by digest with its package rows; nil when
// the image is unknown.
func (s *DB) readImageRows(ctx context.Context, x execer, digest string) (*imageRows, error) {
	var im imageRows
	var layers, data []byte
	var gen sql.NullString
	err := s.queryRow(ctx, x, `SELECT i.id, i.layer_list, ps.data, (SELECT value FROM meta WHERE key = ?) FROM images i
LEFT JOIN image_package_sets ps ON ps.image_id = i.id WHERE i.digest = ?`, advisoryGenerationKey, digest).Scan(&im.id, &layers, &data, &gen)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	im.advGen = gen.String
	if im.layers, err = decodeLayerList(layers); err != nil {
		return nil, fmt.Errorf("image %s: %w", digest, err)
	}
	if im.rows, err = decodePackRows(data); err != nil {
		return nil, fmt.Errorf("image %s: %w", digest, err)
	}
	return &im, nil
}

// packRowsOf reads an image's package rows by its ID (none when it has
// none stored).
func (s *DB) packRowsOf(ctx context.Context, x execer, imageID int64) ([]packRow, error) {
	var data []byte
	err := s.queryRow(ctx, x, `SELECT data FROM image_package_sets WHERE image_id = ?`, imageID).Scan(&data)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodePackRows(data)
}
