package vuln

import (
	"fmt"
	"strings"

	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/types/known/structpb"
)

// Severities, from most to least severe.
const (
	SeverityCritical = "CRITICAL"
	SeverityHigh     = "HIGH"
	SeverityMedium   = "MEDIUM"
	SeverityLow      = "LOW"
	SeverityUnknown  = "UNKNOWN"
)

// Severities lists the severities in decreasing order.
var Severities = []string{SeverityCritical, SeverityHigh, SeverityMedium, SeverityLow, SeverityUnknown}

// SeverityRank orders severities: higher is more severe.
func SeverityRank(s string) int {
	switch s {
	case SeverityCritical:
		return 4
	case SeverityHigh:
		return 3
	case SeverityMedium:
		return 2
	case SeverityLow:
		return 1
	}
	return 0
}

// NormalizeSeverity maps the words databases use onto socle's five.
func NormalizeSeverity(s string) string {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "CRITICAL":
		return SeverityCritical
	case "HIGH", "IMPORTANT":
		return SeverityHigh
	case "MEDIUM", "MODERATE":
		return SeverityMedium
	case "LOW", "NEGLIGIBLE", "UNIMPORTANT":
		return SeverityLow
	}
	return SeverityUnknown
}

// ParseSeverities parses a comma-separated list such as "HIGH,CRITICAL".
func ParseSeverities(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.ToUpper(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if NormalizeSeverity(p) != p {
			return nil, fmt.Errorf("unknown severity %q (want one of %s)", p, strings.Join(Severities, ", "))
		}
		out[p] = true
	}
	return out, nil
}

// affectedSeverity reads a per-package severity: ecosystem_specific or
// database_specific "severity", or Debian's "urgency".
func affectedSeverity(a *osvpb.Affected) string {
	for _, st := range []*structpb.Struct{a.GetEcosystemSpecific(), a.GetDatabaseSpecific()} {
		for _, k := range []string{"severity", "urgency"} {
			if s := stringField(st, k); s != "" {
				if n := NormalizeSeverity(s); n != SeverityUnknown {
					return n
				}
			}
		}
	}
	return ""
}

func stringField(st *structpb.Struct, key string) string {
	if st == nil {
		return ""
	}
	f, ok := st.GetFields()[key]
	if !ok {
		return ""
	}
	return f.GetStringValue()
}
