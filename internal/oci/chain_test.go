package oci

import (
	"crypto/sha256"
	"fmt"
	"testing"
)

func TestChainIDs(t *testing.T) {
	var diffs []string
	for i := range 4 {
		diffs = append(diffs, fmt.Sprintf("sha256:%x", sha256.Sum256([]byte{byte(i)})))
	}
	ids := ChainIDs(diffs)
	if ids[0] != diffs[0] {
		t.Fatalf("first chain ID %s, want the first DiffID", ids[0])
	}
	// A prefix of the stack has a prefix of the chain.
	for n := 1; n <= len(diffs); n++ {
		if got := ChainID(diffs[:n]); got != ids[n-1] {
			t.Fatalf("ChainID of %d layers = %s, ChainIDs gave %s", n, got, ids[n-1])
		}
	}
	// Order matters, and every ID is distinct.
	swapped := []string{diffs[1], diffs[0], diffs[2], diffs[3]}
	if ChainID(swapped) == ChainID(diffs) {
		t.Fatal("swapping two layers kept the chain ID")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] || ValidateDigest(id) != nil {
			t.Fatalf("chain ID %s repeated or malformed", id)
		}
		seen[id] = true
	}
	if ChainID(nil) != "" {
		t.Fatal("empty stack has a chain ID")
	}
}
