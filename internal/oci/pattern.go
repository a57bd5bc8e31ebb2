package oci

import (
	"fmt"
	"path"
	"strings"
)

// MatchRepository reports whether a repository name matches a pattern:
// segments separated by "/", where "*" (and path.Match's other forms)
// matches within one segment and a "**" segment matches any number of
// segments, none included. "apps/billing/*" matches apps/billing/api
// but not apps/billing/api/v2; "apps/**" matches both, and apps itself.
func MatchRepository(pattern, repo string) bool {
	return matchSegments(strings.Split(pattern, "/"), strings.Split(repo, "/"))
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegments(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], name[0]); err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// ValidRepositoryPattern checks a repository pattern.
func ValidRepositoryPattern(p string) error {
	if p == "" {
		return fmt.Errorf("empty pattern")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "**" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("pattern %q: %v", p, err)
		}
	}
	return nil
}
