//go:build socle_fault

package cli

import (
	"fmt"
	"os"
	"time"
)

// promotionPause is the fault hook of the kill tests, in test builds
// only: with SOCLE_FAULT_PROMOTION_PAUSE set to a stage of the tag move,
// stop there, say so, and wait to be killed.
func promotionPause(g *globals) func(stage string) {
	stage := os.Getenv("SOCLE_FAULT_PROMOTION_PAUSE")
	if stage == "" {
		return nil
	}
	return func(s string) {
		if s == stage {
			fmt.Fprintf(g.errOut, "fault: paused at %s\n", s)
			time.Sleep(time.Hour)
		}
	}
}
