package vuln

import (
	"github.com/socle-dev/socle/internal/jsonw"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
)

// AppendFindingsJSON appends fs as encoding/json would marshal them, byte
// for byte, without its reflection (a third of the CPU of an image's
// findings answer). false when a value is one encoding/json refuses: the
// caller marshals with it then, and gets its error.
func AppendFindingsJSON(b []byte, fs []Finding) ([]byte, bool) {
	if fs == nil {
		return append(b, "null"...), true
	}
	b = append(b, '[')
	for i := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendFinding(b, &fs[i]); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

// appendFinding follows Finding's fields and their JSON tags in order.
func appendFinding(b []byte, f *Finding) ([]byte, bool) {
	ok := true
	b = jsonw.String(jsonw.Key(append(b, '{'), "id"), f.ID)
	if len(f.Aliases) > 0 {
		b = jsonw.Strings(jsonw.Key(b, "aliases"), f.Aliases)
	}
	b = jsonw.Strings(jsonw.Key(b, "advisories"), f.Advisories)
	b = sbom.AppendJSON(jsonw.Key(b, "package"), &f.Package)
	b = appendPackageKey(jsonw.Key(b, "match_key"), f.Key)
	b = jsonw.String(jsonw.Key(b, "severity"), f.Severity)
	b, ok = floatMember(b, "score", f.Score, ok)
	b = jsonw.OmitEmpty(b, "fixed_version", f.FixedVersion)
	b = jsonw.OmitEmpty(b, "summary", f.Summary)
	if !f.Published.IsZero() {
		var good bool
		b, good = jsonw.Time(jsonw.Key(b, "published"), f.Published)
		ok = ok && good
	}
	if f.Withdrawn {
		b = jsonw.Bool(jsonw.Key(b, "withdrawn"), true)
	}
	b = jsonw.OmitEmpty(b, "suppressed", f.Suppressed)
	b = jsonw.OmitEmpty(b, "severity_source", f.SeveritySource)
	if len(f.Ratings) > 0 {
		b = append(jsonw.Key(b, "ratings"), '[')
		for i := range f.Ratings {
			if i > 0 {
				b = append(b, ',')
			}
			var good bool
			b, good = appendRating(b, &f.Ratings[i])
			ok = ok && good
		}
		b = append(b, ']')
	}
	if !f.KEV.IsZero() {
		var good bool
		b, good = jsonw.Time(jsonw.Key(b, "kev"), f.KEV)
		ok = ok && good
	}
	b, ok = floatMember(b, "epss", f.EPSS, ok)
	b = jsonw.OmitEmpty(b, "fix_state", f.FixState)
	var good bool
	b, good = jsonw.Float(jsonw.Key(b, "risk"), f.Risk)
	b = jsonw.OmitEmpty(b, "exposure", f.Exposure)
	return append(b, '}'), ok && good
}

func appendPackageKey(b []byte, k store.PackageKey) []byte {
	b = jsonw.String(jsonw.Key(append(b, '{'), "ecosystem"), k.Ecosystem)
	b = jsonw.String(jsonw.Key(b, "name"), k.Name)
	b = jsonw.String(jsonw.Key(b, "version"), k.Version)
	return append(b, '}')
}

func appendRating(b []byte, r *store.Rating) ([]byte, bool) {
	b = jsonw.String(jsonw.Key(append(b, '{'), "id"), r.ID)
	b = jsonw.String(jsonw.Key(b, "source"), r.Source)
	b = jsonw.String(jsonw.Key(b, "severity"), r.Severity)
	b, ok := floatMember(b, "score", r.Score, true)
	b = jsonw.OmitEmpty(b, "vector", r.Vector)
	return append(b, '}'), ok
}

// floatMember appends an omitempty number member; ok stays true while
// every number was one JSON has.
func floatMember(b []byte, name string, v float64, ok bool) ([]byte, bool) {
	if v == 0 {
		return b, ok
	}
	b, good := jsonw.Float(jsonw.Key(b, name), v)
	return b, ok && good
}
