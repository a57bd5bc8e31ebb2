package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// ValidateDigest checks that s is a sha256 digest in its canonical form,
// "sha256:" followed by 64 lower-case hex digits.
func ValidateDigest(s string) error {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return fmt.Errorf("digest %q: want the form sha256:<64 hex digits>", s)
	}
	if len(hex) != 64 {
		return fmt.Errorf("digest %q: want 64 hex digits, got %d", s, len(hex))
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("digest %q: %q is not a lower-case hex digit", s, c)
		}
	}
	return nil
}

// ShortDigest returns the algorithm and the first 12 hex digits of a
// digest, the form people read in tables.
func ShortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return algo + ":" + hex[:12]
}

// SHA256 returns the "sha256:…" digest of b.
func SHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
