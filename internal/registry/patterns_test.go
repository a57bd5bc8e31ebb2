package registry_test

import (
	"testing"

	"github.com/socle-dev/socle/internal/registry"
)

func TestDefaultImmutableTags(t *testing.T) {
	immutable := registry.ImmutableBy(registry.DefaultImmutableTags)
	for tag, want := range map[string]bool{
		"2.4.1": true, "v2.4.1": true, "17.0.9-debian12.8": true, "1.0.0-r1": true,
		"17": false, "17-debian12": false, "latest": false, "dev": false, "sha256-abc.sig": false,
	} {
		if got := immutable("apps/web", tag); got != want {
			t.Errorf("tag %q immutable = %v, want %v", tag, got, want)
		}
	}
}
