package registry

import (
	"path"

	"github.com/socle-dev/socle/internal/oci"
)

// TagRule makes the tags matching Tags (path.Match) immutable in the
// repositories matching Repositories (MatchRepository).
type TagRule struct {
	Repositories string
	Tags         string
}

// DefaultImmutableTags are the rules socle serve applies when socle.yaml
// names none: version tags (1.2.3, v2.4.1, 17.0.9-debian12.8) never move.
var DefaultImmutableTags = []TagRule{
	{Repositories: "**", Tags: "[0-9]*.[0-9]*.[0-9]*"},
	{Repositories: "**", Tags: "v[0-9]*.[0-9]*.[0-9]*"},
}

// ImmutableBy returns the Immutable function of a set of rules.
func ImmutableBy(rules []TagRule) func(repository, tag string) bool {
	return func(repo, tag string) bool {
		for _, r := range rules {
			if ok, _ := path.Match(r.Tags, tag); ok && oci.MatchRepository(r.Repositories, repo) {
				return true
			}
		}
		return false
	}
}
