package vuln

import (
	"fmt"
	"math"
	"strings"
)

// CVSSScore computes the base score of a CVSS v3.0/v3.1 or v2 vector.
// CVSS v4 vectors are not scored: their score needs the specification's
// lookup tables, and the advisory's own severity is used instead.
func CVSSScore(vector string) (float64, error) {
	switch {
	case strings.HasPrefix(vector, "CVSS:3."):
		return cvss3(vector)
	case strings.HasPrefix(vector, "CVSS:4"):
		return 0, fmt.Errorf("CVSS v4 vector %q: not scored", vector)
	default:
		return cvss2(strings.TrimPrefix(vector, "CVSS:2.0/"))
	}
}

func parseMetrics(parts []string) (map[string]string, error) {
	m := map[string]string{}
	for _, p := range parts {
		k, v, ok := strings.Cut(p, ":")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("bad metric %q", p)
		}
		m[k] = v
	}
	return m, nil
}

// cvss3 implements the CVSS v3.1 base score equations.
func cvss3(vector string) (float64, error) {
	parts := strings.Split(vector, "/")
	m, err := parseMetrics(parts[1:])
	if err != nil {
		return 0, fmt.Errorf("CVSS vector %q: %w", vector, err)
	}
	w := func(metric string, table map[string]float64) (float64, error) {
		v, ok := table[m[metric]]
		if !ok {
			return 0, fmt.Errorf("CVSS vector %q: %s=%q", vector, metric, m[metric])
		}
		return v, nil
	}
	changed := m["S"] == "C"
	if m["S"] != "C" && m["S"] != "U" {
		return 0, fmt.Errorf("CVSS vector %q: S=%q", vector, m["S"])
	}
	pr := map[string]float64{"N": 0.85, "L": 0.62, "H": 0.27}
	if changed {
		pr = map[string]float64{"N": 0.85, "L": 0.68, "H": 0.5}
	}
	cia := map[string]float64{"H": 0.56, "L": 0.22, "N": 0}
	var vals [7]float64
	for i, x := range []struct {
		metric string
		table  map[string]float64
	}{
		{"AV", map[string]float64{"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}},
		{"AC", map[string]float64{"L": 0.77, "H": 0.44}},
		{"PR", pr},
		{"UI", map[string]float64{"N": 0.85, "R": 0.62}},
		{"C", cia}, {"I", cia}, {"A", cia},
	} {
		if vals[i], err = w(x.metric, x.table); err != nil {
			return 0, err
		}
	}
	iss := 1 - (1-vals[4])*(1-vals[5])*(1-vals[6])
	var impact float64
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	} else {
		impact = 6.42 * iss
	}
	exploitability := 8.22 * vals[0] * vals[1] * vals[2] * vals[3]
	if impact <= 0 {
		return 0, nil
	}
	if changed {
		return roundUp(math.Min(1.08*(impact+exploitability), 10)), nil
	}
	return roundUp(math.Min(impact+exploitability, 10)), nil
}

// roundUp is the CVSS v3.1 Roundup function: the smallest number with one
// decimal that is at least x, computed on integers to avoid float noise.
func roundUp(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return float64(i/10000+1) / 10
}

// cvss2 implements the CVSS v2 base score equations.
func cvss2(vector string) (float64, error) {
	m, err := parseMetrics(strings.Split(strings.Trim(vector, "()"), "/"))
	if err != nil {
		return 0, fmt.Errorf("CVSS v2 vector %q: %w", vector, err)
	}
	tables := []struct {
		metric string
		table  map[string]float64
	}{
		{"AV", map[string]float64{"L": 0.395, "A": 0.646, "N": 1.0}},
		{"AC", map[string]float64{"H": 0.35, "M": 0.61, "L": 0.71}},
		{"Au", map[string]float64{"M": 0.45, "S": 0.56, "N": 0.704}},
		{"C", map[string]float64{"N": 0, "P": 0.275, "C": 0.660}},
		{"I", map[string]float64{"N": 0, "P": 0.275, "C": 0.660}},
		{"A", map[string]float64{"N": 0, "P": 0.275, "C": 0.660}},
	}
	var v [6]float64
	for i, t := range tables {
		x, ok := t.table[m[t.metric]]
		if !ok {
			return 0, fmt.Errorf("CVSS v2 vector %q: %s=%q", vector, t.metric, m[t.metric])
		}
		v[i] = x
	}
	impact := 10.41 * (1 - (1-v[3])*(1-v[4])*(1-v[5]))
	exploitability := 20 * v[0] * v[1] * v[2]
	f := 1.176
	if impact == 0 {
		f = 0
	}
	score := ((0.6 * impact) + (0.4 * exploitability) - 1.5) * f
	return math.Round(score*10) / 10, nil
}

// Rating maps a CVSS v3 score to its qualitative severity.
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
