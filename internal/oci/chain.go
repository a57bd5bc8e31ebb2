package oci

import (
	"crypto/sha256"
	"encoding/hex"
)

// ChainIDs returns the chain ID of every prefix of a layer stack, as the
// OCI image specification defines them: the first is the first layer's
// DiffID, and each next one is sha256(previous + " " + DiffID). Two
// images share their bottom n layers exactly when their n-th chain IDs
// are equal, so an image's last chain ID names its whole layer stack.
func ChainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1] + " " + d))
		out[i] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out
}

// ChainID is the chain ID of the whole stack, or "" for no layers.
func ChainID(diffIDs []string) string {
	if len(diffIDs) == 0 {
		return ""
	}
	ids := ChainIDs(diffIDs)
	return ids[len(ids)-1]
}
