package vuln

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/types/known/structpb"
)

// Debian security tracker states of an entry that has no fix, as the
// tracker's annotations spell them. They are kept on the advisory's
// package entry, so that a finding says whether a fix may come.
const (
	StateUnfixed   = "unfixed"
	StateNoDSA     = "no-dsa"
	StatePostponed = "postponed"
	StateEndOfLife = "end-of-life"
	StateIgnored   = "ignored"
)

// Fix states of a finding.
const (
	FixStateFixed    = "fixed"
	FixStateNoFixYet = "no_fix_yet"
	FixStateWontFix  = "wont_fix"
)

// fixStateOf maps a tracker state onto a fix state: no DSA and postponed
// issues may still be fixed (in a point release, later); an end-of-life
// package or an ignored issue will not be.
func fixStateOf(state string) string {
	switch state {
	case StateEndOfLife, StateIgnored:
		return FixStateWontFix
	case StateUnfixed, StateNoDSA, StatePostponed:
		return FixStateNoFixYet
	}
	return ""
}

// mergeFixState combines the states of the records of one finding: a
// record that says it will not be fixed wins over one that waits.
func mergeFixState(cur, state string) string {
	next := fixStateOf(state)
	if cur == FixStateWontFix || next == "" {
		return cur
	}
	return next
}

// debianReleases maps Debian codenames to their major versions, the
// release part of the "Debian:N" OSV ecosystem. A tracker export's
// distributions.json adds to it.
var debianReleases = map[string]string{
	"wheezy": "7", "jessie": "8", "stretch": "9", "buster": "10", "bullseye": "11",
	"bookworm": "12", "trixie": "13", "forky": "14", "duke": "15",
}

// TrackerRecord is one file of a Debian security tracker export in
// vuln-list-debian's layout (tracker/CVE/*.json, tracker/DSA/*.json,
// tracker/DLA/*.json): the tracker's header and annotation lines.
type TrackerRecord struct {
	Header struct {
		ID          string `json:"ID"`
		Description string `json:"Description"`
	} `json:"Header"`
	Annotations []trackerAnnotation `json:"Annotations"`
}

type trackerAnnotation struct {
	Type     string   `json:"Type"`
	Release  string   `json:"Release"`
	Package  string   `json:"Package"`
	Kind     string   `json:"Kind"`
	Version  string   `json:"Version"`
	Severity string   `json:"Severity"`
	Bugs     []string `json:"Bugs"`
}

// isTracker tells a tracker record by its keys.
func isTracker(keys map[string]bool) bool { return keys["Header"] && keys["Annotations"] }

// isTrackerStanza tells the Sources stanzas a tracker export carries
// beside its records.
func isTrackerStanza(keys map[string]bool) bool {
	return keys["Package"] && keys["Version"] && !keys["id"]
}

// parseTrackerReleases reads a tracker export's distributions.json: the
// major version of each codename that has one.
func parseTrackerReleases(data []byte) map[string]string {
	var m map[string]struct {
		Major string `json:"major-version"`
	}
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	out := map[string]string{}
	for name, r := range m {
		if r.Major != "" && validID.MatchString(name) {
			out[name] = r.Major
		}
	}
	return out
}

// ParseTracker reads one tracker record.
func ParseTracker(data []byte) (*TrackerRecord, error) {
	var r TrackerRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("parsing Debian tracker record: %w", err)
	}
	if !validID.MatchString(r.Header.ID) {
		return nil, errors.New("Debian tracker record without a valid header ID")
	}
	return &r, nil
}

// TrackerToOSV converts a tracker record into an OSV record. A CVE
// becomes DEBIAN-CVE-… (osv.dev's name) with the CVE upstream; a DSA or
// DLA keeps its ID. Every package gets an entry per release: the
// release's own annotation, else the one without a release (which the
// tracker applies to every release that has none). A fixed version is a
// range fixed there; an unfixed, no-dsa, postponed, end-of-life or
// ignored entry is affected with no fix and carries its state; not
// affected, removed and ITP entries name no affected versions.
func TrackerToOSV(r *TrackerRecord, releases map[string]string) *osvpb.Vulnerability {
	id := r.Header.ID
	v := &osvpb.Vulnerability{SchemaVersion: "1.7.0", Id: id, Summary: strings.Trim(r.Header.Description, "() ")}
	if strings.HasPrefix(id, "CVE-") {
		v.Id = "DEBIAN-" + id
		v.Upstream = []string{id}
	}
	type entry struct {
		general   *trackerAnnotation
		byRelease map[string]*trackerAnnotation
	}
	pkgs := map[string]*entry{}
	var names []string
	var related []string
	for i := range r.Annotations {
		a := &r.Annotations[i]
		if a.Type == "xref" {
			related = append(related, a.Bugs...)
			continue
		}
		if a.Type != "package" || a.Package == "" {
			continue
		}
		e, ok := pkgs[a.Package]
		if !ok {
			e = &entry{byRelease: map[string]*trackerAnnotation{}}
			pkgs[a.Package] = e
			names = append(names, a.Package)
		}
		if a.Release == "" {
			e.general = a
		} else {
			e.byRelease[a.Release] = a
		}
	}
	v.Related = dedupe(related)
	sort.Strings(names)
	codenames := make([]string, 0, len(releases))
	for c := range releases {
		codenames = append(codenames, c)
	}
	sort.Slice(codenames, func(i, j int) bool { return lessVersion("Debian", releases[codenames[i]], releases[codenames[j]]) })
	for _, name := range names {
		e := pkgs[name]
		for _, c := range codenames {
			a := e.byRelease[c]
			if a == nil {
				a = e.general
			}
			if af := trackerAffected(a, name, "Debian:"+releases[c]); af != nil {
				v.Affected = append(v.Affected, af)
			}
		}
	}
	return v
}

func trackerAffected(a *trackerAnnotation, name, ecosystem string) *osvpb.Affected {
	if a == nil {
		return nil
	}
	af := &osvpb.Affected{Package: &osvpb.Package{Ecosystem: ecosystem, Name: name}}
	events := []*osvpb.Event{{Introduced: "0"}}
	specific := map[string]any{}
	switch a.Kind {
	case "fixed":
		if a.Version == "" || a.Version == "0" {
			return nil
		}
		events = append(events, &osvpb.Event{Fixed: a.Version})
	case StateUnfixed, StateNoDSA, StatePostponed, StateEndOfLife, StateIgnored:
		specific["tracker_state"] = a.Kind
	default: // not-affected, removed, itp
		return nil
	}
	if a.Severity != "" {
		specific["urgency"] = a.Severity
	}
	af.Ranges = []*osvpb.Range{{Type: osvpb.Range_ECOSYSTEM, Events: events}}
	if len(specific) > 0 {
		af.EcosystemSpecific, _ = structpb.NewStruct(specific)
	}
	return af
}

// trackerStateOf reads the tracker state of an affected entry: the one
// socle's conversion records, or the urgency "end-of-life" that osv.dev's
// Debian records use for packages out of support.
func trackerStateOf(af *osvpb.Affected) string {
	for _, st := range []*structpb.Struct{af.GetEcosystemSpecific(), af.GetDatabaseSpecific()} {
		if s := stringField(st, "tracker_state"); s != "" {
			return s
		}
		if u := strings.ToLower(stringField(st, "urgency")); u == StateEndOfLife {
			return StateEndOfLife
		}
	}
	return ""
}
