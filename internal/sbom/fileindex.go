package sbom

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"slices"
	"strings"
)

// MemoryPerEntry is the ceiling, in bytes, of what a layer's analysis
// holds for each of its entries, whatever the length of their paths: a
// path is kept as a 64-bit digest with its kind and size. With the
// default limit of 2,000,000 entries a layer, an analysis holds at most
// about 128 MiB of entries while it is read (24 bytes an entry, and the
// slack of a growing slice) and 48 MiB once sealed.
const MemoryPerEntry = 64

// Entry flags.
const (
	entryDir      uint8 = 1 << iota // a directory
	entryWhiteout                   // a whiteout: the path is deleted
	entryOpaque                     // an opaque directory: lower entries below it are hidden
)

// indexEntry is one entry of a layer, by the digest of its path.
type indexEntry struct {
	key   uint64
	size  int64
	flags uint8
}

// FileIndex records a layer's entries compactly: enough to apply the
// layer over lower ones (what it replaces, deletes or hides) without
// keeping their paths. Keys are SHA-256 digests of the paths, truncated
// to 64 bits: a hostile layer cannot craft a path that matches another
// one it does not name.
type FileIndex struct {
	entries []indexEntry // sorted by key after seal
	sealed  bool
}

func pathKey(p string) uint64 {
	sum := sha256.Sum256([]byte(p))
	return binary.BigEndian.Uint64(sum[:8])
}

func (x *FileIndex) add(p string, flags uint8, size int64) {
	x.entries = append(x.entries, indexEntry{key: pathKey(p), size: size, flags: flags})
	x.sealed = false
}

// seal sorts the entries; a later entry for the same path wins, as in
// the layer.
func (x *FileIndex) seal() {
	if x.sealed {
		return
	}
	slices.SortStableFunc(x.entries, func(a, b indexEntry) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	out := x.entries[:0]
	for i, e := range x.entries {
		if i+1 < len(x.entries) && x.entries[i+1].key == e.key {
			continue
		}
		out = append(out, e)
	}
	x.entries = slices.Clip(out)
	x.sealed = true
}

// Len returns the number of distinct paths recorded.
func (x *FileIndex) Len() int {
	x.seal()
	return len(x.entries)
}

func (x *FileIndex) lookup(p string) (indexEntry, bool) {
	x.seal()
	k := pathKey(p)
	i, ok := slices.BinarySearchFunc(x.entries, k, func(e indexEntry, k uint64) int {
		switch {
		case e.key < k:
			return -1
		case e.key > k:
			return 1
		}
		return 0
	})
	if !ok {
		return indexEntry{}, false
	}
	return x.entries[i], true
}

// has reports whether the layer has an entry (not a whiteout) at p.
func (x *FileIndex) has(p string) bool {
	e, ok := x.lookup(p)
	return ok && e.flags&(entryWhiteout|entryOpaque) == 0
}

// hides reports whether the layer hides p, a path of a lower layer: p is
// whited out, or below a whited-out path, an opaque directory, or an
// entry of this layer that is not a directory.
func (x *FileIndex) hides(p string) bool {
	if e, ok := x.lookup(p); ok && e.flags&entryWhiteout != 0 {
		return true
	}
	if e, ok := x.lookup(""); ok && e.flags&entryOpaque != 0 {
		return true // the layer's root is opaque
	}
	for d := parentDir(p); d != ""; d = parentDir(d) {
		if e, ok := x.lookup(d); ok && (e.flags&(entryWhiteout|entryOpaque) != 0 || e.flags&entryDir == 0) {
			return true
		}
	}
	return false
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ""
	}
	return p[:i]
}

// entrySize is the encoded size of one entry: key, flags, size.
const entrySize = 8 + 1 + 8

// MarshalBinary encodes the index; it is stored with the analysis.
func (x *FileIndex) MarshalBinary() ([]byte, error) {
	x.seal()
	b := make([]byte, 0, len(x.entries)*entrySize)
	for _, e := range x.entries {
		b = binary.BigEndian.AppendUint64(b, e.key)
		b = append(b, e.flags)
		b = binary.BigEndian.AppendUint64(b, uint64(e.size))
	}
	return b, nil
}

// UnmarshalBinary reads what MarshalBinary wrote.
func (x *FileIndex) UnmarshalBinary(b []byte) error {
	if len(b)%entrySize != 0 {
		return errors.New("file index: truncated")
	}
	x.entries = make([]indexEntry, 0, len(b)/entrySize)
	for ; len(b) > 0; b = b[entrySize:] {
		x.entries = append(x.entries, indexEntry{
			key: binary.BigEndian.Uint64(b), flags: b[8], size: int64(binary.BigEndian.Uint64(b[9:])),
		})
	}
	x.sealed = false
	x.seal()
	return nil
}

// MarshalJSON encodes the index as base64 of its binary form.
func (x *FileIndex) MarshalJSON() ([]byte, error) {
	b, err := x.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return json.Marshal(b)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (x *FileIndex) UnmarshalJSON(data []byte) error {
	var b []byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	return x.UnmarshalBinary(b)
}
