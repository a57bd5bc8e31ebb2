package sbom

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ErrLayerMismatch is returned when a layer's bytes are not what the
// image says they are: the compressed bytes do not hash to the
// manifest's digest, or the uncompressed bytes to the config's DiffID.
var ErrLayerMismatch = errors.New("layer content does not match the image")

// MismatchError names the layer whose bytes disagree with the image.
type MismatchError struct {
	Index int
	// Digest is the manifest's digest of the layer.
	Digest string
	// What is "digest" or "diff_id"; Claimed is what the image says and
	// Actual what the bytes hash to (or what the blob was verified to
	// hold before).
	What, Claimed, Actual string
}

func (e *MismatchError) Error() string {
	switch e.What {
	case "digest":
		return fmt.Sprintf("layer %d (%s): its bytes hash to %s, not to the manifest's digest", e.Index, e.Digest, e.Actual)
	default:
		return fmt.Sprintf("layer %d (%s): the image config claims DiffID %s, but the layer's uncompressed bytes are %s", e.Index, e.Digest, e.Claimed, e.Actual)
	}
}

func (e *MismatchError) Unwrap() error { return ErrLayerMismatch }

// verifyingReader reads a layer's compressed bytes, hashing them, and
// gives their uncompressed tar stream, hashing that too. Check compares
// both hashes with what the image claims once everything was read.
type verifyingReader struct {
	compressed   hash.Hash
	uncompressed hash.Hash
	raw          *bufio.Reader
	tar          io.Reader
	close        func() error
}

// newVerifyingReader wraps a layer's compressed stream: gzip and zstd
// are recognised by their magic bytes, anything else is read as an
// uncompressed tar.
func newVerifyingReader(rc io.Reader) (*verifyingReader, error) {
	v := &verifyingReader{compressed: sha256.New(), uncompressed: sha256.New(), close: func() error { return nil }}
	v.raw = bufio.NewReaderSize(io.TeeReader(rc, v.compressed), 1<<16)
	head, _ := v.raw.Peek(4)
	var un io.Reader
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(v.raw)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		un, v.close = zr, zr.Close
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(v.raw, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		un, v.close = zr, func() error { zr.Close(); return nil }
	default:
		un = v.raw
	}
	v.tar = io.TeeReader(un, v.uncompressed)
	return v, nil
}

// Read gives the uncompressed tar stream.
func (v *verifyingReader) Read(p []byte) (int, error) { return v.tar.Read(p) }

// check drains what is left of both streams and compares the hashes with
// the manifest's digest and the config's DiffID.
func (v *verifyingReader) check(index int, digest, diffID string) (string, error) {
	if _, err := io.Copy(io.Discard, v.tar); err != nil {
		return "", fmt.Errorf("reading layer %d (%s): %w", index, digest, err)
	}
	if _, err := io.Copy(io.Discard, v.raw); err != nil {
		return "", fmt.Errorf("reading layer %d (%s): %w", index, digest, err)
	}
	if err := v.close(); err != nil {
		return "", fmt.Errorf("reading layer %d (%s): %w", index, digest, err)
	}
	got := "sha256:" + hex.EncodeToString(v.compressed.Sum(nil))
	if got != digest {
		return "", &MismatchError{Index: index, Digest: digest, What: "digest", Claimed: digest, Actual: got}
	}
	un := "sha256:" + hex.EncodeToString(v.uncompressed.Sum(nil))
	if un != diffID {
		return "", &MismatchError{Index: index, Digest: digest, What: "diff_id", Claimed: diffID, Actual: un}
	}
	return un, nil
}
