// Package zdict compresses the small documents socle keeps one of per
// image (an inventory's header, a check result) with zstd and a raw
// dictionary of what such documents are made of: at a few hundred bytes a
// document, gzip alone keeps most of the keys and texts every document
// repeats. A dictionary is never changed once shipped, since a document
// names the dictionary ID it was written with: a new one gets a new ID.
package zdict

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Codec encodes and decodes with one dictionary. Safe for concurrent use.
type Codec struct {
	id    uint32
	dict  []byte
	limit uint64
	once  sync.Once
	enc   *zstd.Encoder
	dec   *zstd.Decoder
	err   error
}

// New returns a codec for dictionary id, whose decoded documents may not
// exceed limit bytes.
func New(id uint32, dict []byte, limit uint64) *Codec {
	return &Codec{id: id, dict: dict, limit: limit}
}

func (c *Codec) init() error {
	c.once.Do(func() {
		if c.enc, c.err = zstd.NewWriter(nil, zstd.WithEncoderDictRaw(c.id, c.dict), zstd.WithEncoderConcurrency(1)); c.err != nil {
			return
		}
		c.dec, c.err = zstd.NewReader(nil, zstd.WithDecoderDictRaw(c.id, c.dict), zstd.WithDecoderConcurrency(0),
			zstd.WithDecoderMaxMemory(c.limit))
	})
	return c.err
}

// Encode compresses b.
func (c *Codec) Encode(b []byte) ([]byte, error) {
	if err := c.init(); err != nil {
		return nil, err
	}
	return c.enc.EncodeAll(b, nil), nil
}

// Decode reads what Encode wrote.
func (c *Codec) Decode(b []byte) ([]byte, error) {
	if err := c.init(); err != nil {
		return nil, err
	}
	out, err := c.dec.DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return out, nil
}

var magic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// Is reports whether b is zstd (what Encode writes).
func Is(b []byte) bool { return bytes.HasPrefix(b, magic) }
