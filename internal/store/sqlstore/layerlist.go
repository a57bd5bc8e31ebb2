package sqlstore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// An image's layer digests are one value (images.layer_list): a format
// byte, then per layer a kind byte and either a sha256 digest's 32 bytes
// (layerSHA256) or any other digest's length and text (layerText). Two
// layers took 153 bytes as the JSON list they were; they take 67.
const (
	layerListFormat = 1
	layerSHA256     = 0
	layerText       = 1
)

var errLayerList = errors.New("an image's layer list is corrupt")

// sha256Hex is how a sha256 digest is written: "sha256:" and 64
// lowercase hexadecimal digits (the only spelling kept as bytes, so that
// reading it back gives the same text).
func sha256Hex(d string) bool {
	const prefix = "sha256:"
	if len(d) != len(prefix)+64 || !strings.HasPrefix(d, prefix) {
		return false
	}
	for _, c := range d[len(prefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func encodeLayerList(layers []string) []byte {
	b := make([]byte, 1, 1+len(layers)*33)
	b[0] = layerListFormat
	for _, l := range layers {
		if sha256Hex(l) {
			b = append(b, layerSHA256)
			b, _ = hex.AppendDecode(b, []byte(l[len("sha256:"):]))
			continue
		}
		b = append(b, layerText)
		b = binary.AppendUvarint(b, uint64(len(l)))
		b = append(b, l...)
	}
	return b
}

// decodeLayerList reads what encodeLayerList wrote (an empty list for no
// bytes); what it allocates is bounded by the input's length.
func decodeLayerList(b []byte) ([]string, error) {
	if len(b) == 0 {
		return []string{}, nil
	}
	if b[0] != layerListFormat {
		return nil, fmt.Errorf("%w: format %d", errLayerList, b[0])
	}
	d := packReader{b: b[1:], bad: errLayerList}
	out := make([]string, 0, len(d.b)/33+1)
	for len(d.b) > 0 && d.err == nil {
		kind := d.b[0]
		d.b = d.b[1:]
		switch kind {
		case layerSHA256:
			if len(d.b) < 32 {
				return nil, fmt.Errorf("%w: a digest is cut short", errLayerList)
			}
			out = append(out, "sha256:"+hex.EncodeToString(d.b[:32]))
			d.b = d.b[32:]
		case layerText:
			out = append(out, d.str())
		default:
			return nil, fmt.Errorf("%w: layer kind %d", errLayerList, kind)
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return out, nil
}

// convertLayerLists fills images.layer_list from the JSON list in
// images.layers, images a range at a time, and drops that column.
func convertLayerLists(ctx context.Context, s *DB, tx *sql.Tx) error {
	const span = 2000
	var last int64
	if err := s.queryRow(ctx, tx, `SELECT COALESCE(MAX(id), 0) FROM images`).Scan(&last); err != nil {
		return err
	}
	for from := int64(0); from < last; from += span {
		var args []any
		err := s.eachRowIn(ctx, tx, `SELECT id, layers FROM images WHERE id > ? AND id <= ?`, []any{from, from + span},
			func(r *sql.Rows) error {
				var id int64
				var text string
				if err := r.Scan(&id, &text); err != nil {
					return err
				}
				var layers []string
				if err := json.Unmarshal([]byte(text), &layers); err != nil {
					return fmt.Errorf("image %d's layer list: %w", id, err)
				}
				args = append(args, encodeLayerList(layers), id)
				return nil
			})
		if err != nil {
			return err
		}
		for i := 0; i < len(args); i += 2 {
			if _, err := s.exec(ctx, tx, `UPDATE images SET layer_list = ? WHERE id = ?`, args[i], args[i+1]); err != nil {
				return err
			}
		}
	}
	_, err := s.exec(ctx, tx, `ALTER TABLE images DROP COLUMN layers`)
	return err
}
