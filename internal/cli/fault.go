//go:build !socle_fault

package cli

// promotionPause is the kill tests' fault hook: the shipped binary has
// none (build with -tags socle_fault for it).
func promotionPause(*globals) func(stage string) { return nil }
