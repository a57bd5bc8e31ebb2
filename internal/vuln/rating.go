package vuln

import (
	"context"
	"fmt"
	"sort"
	"strings"

	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"

	"github.com/socle-dev/socle/internal/store"
)

// Severity sources.
const (
	// SourceVendor is the distribution that ships the package: Debian's
	// urgency, a DSA, Alpine, Ubuntu, Red Hat.
	SourceVendor = "vendor"
	// SourceEcosystem is the language ecosystem's own database: Go's,
	// PyPA's, RustSec.
	SourceEcosystem = "ecosystem"
	// SourceNVD is NVD's CVSS, from NVD records or osv.dev's conversions
	// of them.
	SourceNVD = "nvd"
	// SourceGHSA is GitHub's advisory database.
	SourceGHSA = "ghsa"
)

// DefaultSeverityOrder is the order in which a finding's severity is
// taken: the vendor's, then the ecosystem's, then NVD's, then GHSA's.
var DefaultSeverityOrder = []string{SourceVendor, SourceEcosystem, SourceNVD, SourceGHSA}

// ParseSeverityOrder reads a comma-separated list of sources, such as
// "nvd,vendor". Sources it leaves out follow in the default order.
func ParseSeverityOrder(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.ToLower(strings.TrimSpace(p))
		if p == "" {
			continue
		}
		if !isSource(p) {
			return nil, fmt.Errorf("unknown severity source %q (want some of %s)", p, strings.Join(DefaultSeverityOrder, ", "))
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range DefaultSeverityOrder {
		if !seen[p] {
			out = append(out, p)
		}
	}
	return out, nil
}

func isSource(s string) bool {
	for _, p := range DefaultSeverityOrder {
		if p == s {
			return true
		}
	}
	return false
}

// vendorPrefixes are the record ID prefixes of distributions' own
// databases (socle names its Alpine secdb records ALPINE-).
var vendorPrefixes = []string{"DSA-", "DLA-", "DTSA-", "DEBIAN-", "ALPINE-", "USN-", "UBUNTU-", "RHSA-", "RHBA-",
	"RLSA-", "ALSA-", "ALBA-", "SUSE-", "OPENSUSE-", "MGASA-", "CGA-", "MINI-", "ALEA-", "ELSA-", "BIT-"}

// RecordSource says which source an OSV record speaks for, from its ID.
func RecordSource(id string) string {
	up := strings.ToUpper(id)
	switch {
	case strings.HasPrefix(up, "GHSA-"):
		return SourceGHSA
	case strings.HasPrefix(up, "CVE-"):
		return SourceNVD
	}
	for _, p := range vendorPrefixes {
		if strings.HasPrefix(up, p) {
			return SourceVendor
		}
	}
	return SourceEcosystem
}

// recordRating is the severity a record states of itself: its CVSS
// vector of the newest version it has a score for (v3 before v4, as NVD
// and the scanners show), else the word its database uses.
func recordRating(v *osvpb.Vulnerability) (store.Rating, bool) {
	r := store.Rating{ID: v.GetId(), Source: RecordSource(v.GetId())}
	sevs := v.GetSeverity()
	for _, a := range v.GetAffected() {
		sevs = append(sevs, a.GetSeverity()...)
	}
	best, bestRank := -1.0, -1
	for _, s := range sevs {
		rank := cvssRank(s.GetType())
		if rank < 0 {
			continue
		}
		sc, err := CVSSScore(s.GetScore())
		if err != nil {
			continue
		}
		if rank > bestRank || (rank == bestRank && sc > best) {
			best, bestRank, r.Vector = sc, rank, s.GetScore()
		}
	}
	if best >= 0 {
		r.Score, r.Severity = best, Rating(best)
		return r, true
	}
	r.Vector = ""
	if s := NormalizeSeverity(stringField(v.GetDatabaseSpecific(), "severity")); s != SeverityUnknown {
		r.Severity = s
		return r, true
	}
	for _, s := range sevs {
		if s.GetType() == osvpb.Severity_Ubuntu {
			if n := NormalizeSeverity(s.GetScore()); n != SeverityUnknown {
				r.Severity = n
				return r, true
			}
		}
	}
	for _, a := range v.GetAffected() {
		if s := affectedSeverity(a); s != "" {
			r.Severity = s
			return r, true
		}
	}
	return r, false
}

// cvssRank orders CVSS versions by preference: v3 first, then v4, then
// v2; -1 for what is not CVSS.
func cvssRank(t osvpb.Severity_Type) int {
	switch t {
	case osvpb.Severity_CVSS_V3:
		return 3
	case osvpb.Severity_CVSS_V4:
		return 2
	case osvpb.Severity_CVSS_V2:
		return 1
	}
	return -1
}

// Pick chooses a severity from ratings: the first source in order that
// rates it, and within a source the most severe of its ratings.
func Pick(rs []store.Rating, order []string) (severity string, score float64, source string) {
	if len(order) == 0 {
		order = DefaultSeverityOrder
	}
	for _, src := range order {
		found := false
		for _, r := range rs {
			if r.Source != src || r.Severity == "" || r.Severity == SeverityUnknown {
				continue
			}
			if !found || SeverityRank(r.Severity) > SeverityRank(severity) ||
				(SeverityRank(r.Severity) == SeverityRank(severity) && r.Score > score) {
				severity, score, found = r.Severity, r.Score, true
			}
		}
		if found {
			return severity, score, src
		}
	}
	return SeverityUnknown, 0, ""
}

// mergeRatings adds rs to into, once per (ID, source).
func mergeRatings(into, rs []store.Rating) []store.Rating {
	for _, r := range rs {
		dup := false
		for _, have := range into {
			if have.ID == r.ID && have.Source == r.Source {
				dup = true
				break
			}
		}
		if !dup {
			into = append(into, r)
		}
	}
	return into
}

// RatingStore is what rating advisories reads and writes.
type RatingStore interface {
	AdvisoriesNaming(ctx context.Context, ids []string) ([]string, error)
	RatingInputs(ctx context.Context, advisoryIDs []string) (map[string][]store.Rating, error)
	SetRatings(ctx context.Context, rs []store.AdvisoryRating) error
}

// Rerate recomputes the severity of every advisory whose ID or aliases
// include one of ids, from the ratings of all its identifiers, in the
// default order. It returns how many it rated.
func Rerate(ctx context.Context, st RatingStore, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	advs, err := st.AdvisoriesNaming(ctx, ids)
	if err != nil || len(advs) == 0 {
		return 0, err
	}
	inputs, err := st.RatingInputs(ctx, advs)
	if err != nil {
		return 0, err
	}
	out := make([]store.AdvisoryRating, 0, len(advs))
	for _, id := range advs {
		rs := inputs[id]
		sort.Slice(rs, func(i, j int) bool {
			if rs[i].Source != rs[j].Source {
				return rs[i].Source < rs[j].Source
			}
			return rs[i].ID < rs[j].ID
		})
		sev, score, src := Pick(rs, DefaultSeverityOrder)
		out = append(out, store.AdvisoryRating{AdvisoryID: id, Severity: sev, Score: score, Source: src, Ratings: rs})
	}
	return len(out), st.SetRatings(ctx, out)
}

// Repick sets a finding's severity from its ratings in order. A finding
// no source rates keeps the severity its records gave.
func Repick(f *Finding, order []string) {
	if sev, score, src := Pick(f.Ratings, order); src != "" {
		f.Severity, f.Score, f.SeveritySource = sev, score, src
	}
}

// Reorder re-picks the severity of findings in another source order.
func Reorder(fs []Finding, order []string) {
	for i := range fs {
		Repick(&fs[i], order)
	}
}
