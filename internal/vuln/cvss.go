package vuln

import (
	"fmt"
	"strings"

	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
)

// CVSSScore computes the base score of a CVSS v4.0, v3.1, v3.0 or v2
// vector with go-cvss, which implements each specification's equations
// (and v4.0's macro-vector lookup tables).
func CVSSScore(vector string) (float64, error) {
	vector = strings.TrimSpace(vector)
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		v, err := gocvss40.ParseVector(vector)
		if err != nil {
			return 0, fmt.Errorf("CVSS vector %q: %w", vector, err)
		}
		return v.Score(), nil
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		v, err := gocvss31.ParseVector(vector)
		if err != nil {
			return 0, fmt.Errorf("CVSS vector %q: %w", vector, err)
		}
		return v.BaseScore(), nil
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		v, err := gocvss30.ParseVector(vector)
		if err != nil {
			return 0, fmt.Errorf("CVSS vector %q: %w", vector, err)
		}
		return v.BaseScore(), nil
	case strings.HasPrefix(vector, "CVSS:"):
		return 0, fmt.Errorf("CVSS vector %q: unknown version", vector)
	default:
		v, err := gocvss20.ParseVector(strings.TrimPrefix(vector, "CVSS:2.0/"))
		if err != nil {
			return 0, fmt.Errorf("CVSS vector %q: %w", vector, err)
		}
		return v.BaseScore(), nil
	}
}

// Rating maps a CVSS score to its qualitative severity (the v3 and v4
// scale; v2 scores are rated on it too, as NVD's v3 ratings are).
func Rating(score float64) string {
	switch {
	case score >= 9.0:
		return SeverityCritical
	case score >= 7.0:
		return SeverityHigh
	case score >= 4.0:
		return SeverityMedium
	case score > 0:
		return SeverityLow
	default:
		return SeverityUnknown
	}
}
