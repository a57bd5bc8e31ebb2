//go:build !socle_fault

package cli

import "testing"

// TestNoFaultHooksInShippedBuild: without the socle_fault build tag, the
// fault-injection variable does nothing.
func TestNoFaultHooksInShippedBuild(t *testing.T) {
	t.Setenv("SOCLE_FAULT_PROMOTION_PAUSE", "moving")
	if promotionPause(&globals{}) != nil {
		t.Fatal("the shipped build honours SOCLE_FAULT_PROMOTION_PAUSE")
	}
}
