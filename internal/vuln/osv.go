package vuln

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"
	"gopkg.in/yaml.v3"

	"github.com/socle-dev/socle/internal/store"
)

// maxRecordSize bounds one OSV record.
const maxRecordSize = 16 << 20

var unmarshalOSV = protojson.UnmarshalOptions{DiscardUnknown: true}

// validID is the OSV identifier syntax: a database prefix, a dash, and
// an entry ID; some databases use dots, colons or underscores in it.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+-]{1,127}$`)

// ParseOSV parses one OSV record in JSON and checks what socle relies on.
func ParseOSV(data []byte) (*osvpb.Vulnerability, error) {
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("OSV record of %d bytes exceeds %d", len(data), maxRecordSize)
	}
	v := &osvpb.Vulnerability{}
	if err := unmarshalOSV.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("parsing OSV JSON: %w", err)
	}
	if err := checkOSV(v); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseOSVYAML parses one OSV record written in YAML, as the PyPA
// advisory database does. Scalars are kept as written, so that a
// version such as 1.10 is not read as the number 1.1.
func ParseOSVYAML(data []byte) (*osvpb.Vulnerability, error) {
	if len(data) > maxRecordSize {
		return nil, fmt.Errorf("OSV record of %d bytes exceeds %d", len(data), maxRecordSize)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("parsing OSV YAML: %w", err)
	}
	j, err := yamlToJSON(&n, 0)
	if err != nil {
		return nil, fmt.Errorf("parsing OSV YAML: %w", err)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	return ParseOSV(b)
}

// yamlToJSON converts a YAML node to JSON values, keeping every scalar
// but booleans and nulls a string: OSV has no numeric fields outside its
// free-form database_specific objects.
func yamlToJSON(n *yaml.Node, depth int) (any, error) {
	if depth > 64 {
		return nil, errors.New("YAML nested too deeply")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, errors.New("empty YAML document")
		}
		return yamlToJSON(n.Content[0], depth+1)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("line %d: mapping key is not a scalar", k.Line)
			}
			v, err := yamlToJSON(n.Content[i+1], depth+1)
			if err != nil {
				return nil, err
			}
			m[k.Value] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlToJSON(c, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", nil
		}
		return n.Value, nil
	case yaml.AliasNode:
		return nil, fmt.Errorf("line %d: YAML aliases are not accepted", n.Line)
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

func checkOSV(v *osvpb.Vulnerability) error {
	if !validID.MatchString(v.GetId()) {
		return fmt.Errorf("OSV record: invalid id %q", v.GetId())
	}
	for i, a := range v.GetAffected() {
		if a.GetPackage() == nil {
			continue // GIT-only entries name a repository, not a package
		}
		if a.GetPackage().GetEcosystem() == "" || a.GetPackage().GetName() == "" {
			return fmt.Errorf("OSV record %s: affected[%d] has no ecosystem or name", v.GetId(), i)
		}
		for j, r := range a.GetRanges() {
			if len(r.GetEvents()) == 0 {
				return fmt.Errorf("OSV record %s: affected[%d].ranges[%d] has no events", v.GetId(), i, j)
			}
		}
	}
	return nil
}

// Spec is what matching needs of the affected entries an advisory has
// for one package: their ranges and explicit versions, merged.
type Spec struct {
	Ranges   []Range  `json:"r,omitempty"`
	Versions []string `json:"v,omitempty"`
	// Severity overrides the advisory's for this package, when the
	// database says so (Debian urgency, ecosystem_specific severity).
	Severity string `json:"s,omitempty"`
	// State is the distribution tracker's state of an entry with no fix
	// (StateNoDSA, StatePostponed, StateEndOfLife, ...).
	State string `json:"st,omitempty"`
}

// Range is an OSV range of type ECOSYSTEM or SEMVER.
type Range struct {
	Type   string  `json:"t"`
	Events []Event `json:"e"`
}

// Event is one OSV range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"i,omitempty"`
	Fixed        string `json:"f,omitempty"`
	LastAffected string `json:"l,omitempty"`
	Limit        string `json:"m,omitempty"`
}

// DecodeSpec reads a stored Spec.
func DecodeSpec(b []byte) (Spec, error) {
	var s Spec
	err := json.Unmarshal(b, &s)
	return s, err
}

// ToAdvisory converts a parsed record into what the store keeps. source
// names where it came from.
func ToAdvisory(v *osvpb.Vulnerability, source string) (store.Advisory, error) {
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(v)
	if err != nil {
		return store.Advisory{}, fmt.Errorf("encoding %s: %w", v.GetId(), err)
	}
	// protojson's output is not stable across runs; compact it with
	// encoding/json so that an unchanged record hashes the same.
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return store.Advisory{}, err
	}
	a := store.Advisory{
		ID:      v.GetId(),
		Aliases: dedupe(append(append([]string{}, v.GetAliases()...), v.GetUpstream()...)),
		Summary: summaryOf(v),
		Source:  source,
		Raw:     normalizeJSON(buf.Bytes()),
	}
	a.Modified = timeOf(v.GetModified().AsTime(), v.GetModified() != nil)
	a.Published = timeOf(v.GetPublished().AsTime(), v.GetPublished() != nil)
	if v.GetWithdrawn() != nil {
		a.Withdrawn = timeOf(v.GetWithdrawn().AsTime(), true)
		if a.Withdrawn.IsZero() {
			a.Withdrawn = time.Unix(1, 0).UTC()
		}
	}
	if r, ok := recordRating(v); ok {
		a.Ratings = []store.Rating{r}
	}
	a.Severity, a.Score, _ = Pick(a.Ratings, DefaultSeverityOrder)
	specs := map[store.PackageName]*Spec{}
	var order []store.PackageName
	for _, af := range v.GetAffected() {
		if af.GetPackage() == nil {
			continue
		}
		eco := af.GetPackage().GetEcosystem()
		pn := store.PackageName{Ecosystem: eco, Name: NormalizeName(eco, af.GetPackage().GetName())}
		sp, ok := specs[pn]
		if !ok {
			sp = &Spec{}
			specs[pn] = sp
			order = append(order, pn)
		}
		for _, r := range af.GetRanges() {
			if r.GetType() != osvpb.Range_ECOSYSTEM && r.GetType() != osvpb.Range_SEMVER {
				continue
			}
			rg := Range{Type: r.GetType().String()}
			for _, e := range r.GetEvents() {
				rg.Events = append(rg.Events, Event{Introduced: e.GetIntroduced(), Fixed: e.GetFixed(), LastAffected: e.GetLastAffected(), Limit: e.GetLimit()})
			}
			sp.Ranges = append(sp.Ranges, rg)
		}
		sp.Versions = append(sp.Versions, af.GetVersions()...)
		if s := affectedSeverity(af); s != "" {
			sp.Severity = s
		}
		if st := trackerStateOf(af); st != "" {
			sp.State = st
		}
	}
	for _, pn := range order {
		sp := specs[pn]
		if len(sp.Ranges) == 0 && len(sp.Versions) == 0 {
			continue // nothing decides a version: OSV says not affected
		}
		sp.Versions = dedupe(sp.Versions)
		b, _ := json.Marshal(sp)
		a.Affected = append(a.Affected, store.Affected{Ecosystem: pn.Ecosystem, Name: pn.Name, Spec: b})
	}
	return a, nil
}

// normalizeJSON re-encodes JSON with sorted keys.
func normalizeJSON(b []byte) []byte {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return b
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b
	}
	return out
}

// timeOf drops OSV's placeholder zero time (0001-01-01), which
// golang/vulndb writes for records that carry no date.
func timeOf(t time.Time, set bool) time.Time {
	if !set || t.Year() <= 1 {
		return time.Time{}
	}
	return t.UTC()
}

func summaryOf(v *osvpb.Vulnerability) string {
	if s := strings.TrimSpace(v.GetSummary()); s != "" {
		return s
	}
	d := strings.TrimSpace(v.GetDetails())
	if i := strings.IndexAny(d, "\n"); i > 0 {
		d = d[:i]
	}
	if len(d) > 200 {
		d = d[:200] + "…"
	}
	return d
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// NormalizeName puts a package name in the form both advisories and
// inventories are indexed by: PyPI names by PEP 503, other ecosystems
// as written.
func NormalizeName(ecosystem, name string) string {
	base, _, _ := strings.Cut(ecosystem, ":")
	switch base {
	case "PyPI":
		return pep503(name)
	}
	return name
}

func pep503(name string) string {
	var b strings.Builder
	sep := false
	for _, c := range strings.ToLower(name) {
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		b.WriteRune(c)
	}
	return b.String()
}
