package oci_test

import (
	"testing"

	"github.com/socle-dev/socle/internal/oci"
)

func TestMatchRepository(t *testing.T) {
	for _, c := range []struct {
		pattern, repo string
		want          bool
	}{
		{"apps/billing/*", "apps/billing/api", true},
		{"apps/billing/*", "apps/billing/api/v2", false},
		{"apps/billing/*", "apps/shop/api", false},
		{"apps/**", "apps", true},
		{"apps/**", "apps/billing/api/v2", true},
		{"**", "anything/at/all", true},
		{"**/web", "prod/apps/web", true},
		{"**/web", "prod/apps/webby", false},
		{"apps/b*", "apps/billing", true},
	} {
		if got := oci.MatchRepository(c.pattern, c.repo); got != c.want {
			t.Errorf("MatchRepository(%q, %q) = %v, want %v", c.pattern, c.repo, got, c.want)
		}
	}
}
