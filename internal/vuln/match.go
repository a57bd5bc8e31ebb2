package vuln

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/osv-scalibr/semantic"

	"github.com/socle-dev/socle/internal/order"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
)

// AffectedSource is the part of the store matching reads.
type AffectedSource interface {
	AffectedFor(ctx context.Context, ecosystem, name string) ([]store.AffectedRow, error)
}

// generationSource is implemented by stores that version their
// advisories; the matcher then caches decoded advisories between calls.
type generationSource interface {
	AdvisoryGeneration(ctx context.Context) (int64, error)
}

// Match is one advisory affecting one package version.
type Match struct {
	store.AffectedRow
	// FixedVersion is the first version that is not affected, or empty
	// when no fix is known.
	FixedVersion string
	// Severity is the advisory's, or the package-specific one its
	// database gives.
	Severity string
	// State is the distribution tracker's state of an unfixed entry
	// (StateNoDSA, StatePostponed, ...), empty when it states none.
	State string
}

// withPackageRating puts a package-specific vendor rating in place of
// the record's own vendor rating of the same advisory.
func withPackageRating(rs []store.Rating, pkg store.Rating) []store.Rating {
	out := []store.Rating{pkg}
	for _, r := range rs {
		if r.ID != pkg.ID || r.Source != pkg.Source {
			out = append(out, r)
		}
	}
	return out
}

// Matcher finds the advisories affecting package versions.
type Matcher struct {
	src AffectedSource

	mu    sync.Mutex
	gen   int64
	cache map[[2]string][]decodedRow
}

// decodedRow is an affected entry with its spec decoded.
type decodedRow struct {
	store.AffectedRow
	spec Spec
}

// maxCachedNames bounds the decoded-advisory cache.
const maxCachedNames = 50_000

// NewMatcher returns a Matcher reading advisories from src.
func NewMatcher(src AffectedSource) *Matcher { return &Matcher{src: src} }

// Refresh checks whether the store's advisories changed since the cache
// was filled, and drops it if so. Batch callers (indexing an image,
// re-evaluating) call it once per batch; without it the cache is not
// used, and every Match reads the store.
func (m *Matcher) Refresh(ctx context.Context) error {
	gs, ok := m.src.(generationSource)
	if !ok {
		return nil
	}
	g, err := gs.AdvisoryGeneration(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cache == nil || g != m.gen {
		m.cache = map[[2]string][]decodedRow{}
		m.gen = g
	}
	return nil
}

// rows returns the decoded affected entries for a package name.
func (m *Matcher) rows(ctx context.Context, ecosystem, name string) ([]decodedRow, error) {
	k := [2]string{ecosystem, name}
	m.mu.Lock()
	if m.cache != nil {
		if rows, ok := m.cache[k]; ok {
			m.mu.Unlock()
			return rows, nil
		}
	}
	m.mu.Unlock()
	raw, err := m.src.AffectedFor(ctx, ecosystem, name)
	if err != nil {
		return nil, fmt.Errorf("advisories for %s/%s: %w", ecosystem, name, err)
	}
	rows := make([]decodedRow, 0, len(raw))
	for _, r := range raw {
		spec, err := DecodeSpec(r.Spec)
		if err != nil {
			return nil, fmt.Errorf("advisory %s: %w", r.AdvisoryID, err)
		}
		rows = append(rows, decodedRow{AffectedRow: r, spec: spec})
	}
	m.mu.Lock()
	if m.cache != nil {
		if len(m.cache) >= maxCachedNames {
			m.cache = map[[2]string][]decodedRow{}
		}
		m.cache[k] = rows
	}
	m.mu.Unlock()
	return rows, nil
}

// Match returns the advisories affecting key, with the withdrawn ones
// apart.
func (m *Matcher) Match(ctx context.Context, key store.PackageKey) (active, withdrawn []Match, err error) {
	rows, err := m.rows(ctx, key.Ecosystem, key.Name)
	if err != nil {
		return nil, nil, err
	}
	for _, dr := range rows {
		r, spec := dr.AffectedRow, dr.spec
		ok, fixed := Affects(spec, key.Ecosystem, key.Version)
		if !ok {
			continue
		}
		mt := Match{AffectedRow: r, FixedVersion: fixed, Severity: r.Severity, State: spec.State}
		if spec.Severity != "" {
			mt.Ratings = withPackageRating(r.Ratings, store.Rating{ID: r.AdvisoryID, Source: SourceVendor, Severity: spec.Severity})
			if mt.Severity == "" || mt.Severity == SeverityUnknown || r.Score == 0 {
				mt.Severity = spec.Severity
			}
		}
		if r.Withdrawn {
			withdrawn = append(withdrawn, mt)
		} else {
			active = append(active, mt)
		}
	}
	return active, withdrawn, nil
}

// Affects reports whether version is affected under spec in ecosystem,
// and the first fixed version above it when one is known. It follows the
// OSV evaluation: an exact entry in the versions list, or any ECOSYSTEM or
// SEMVER range whose sorted events leave the version affected.
func Affects(spec Spec, ecosystem, version string) (bool, string) {
	if version == "" {
		return false, ""
	}
	listed := false
	for _, v := range spec.Versions {
		if v == version || strings.TrimPrefix(v, "v") == strings.TrimPrefix(version, "v") {
			listed = true
			break
		}
	}
	pv, err := parseVersion(version, ecosystem)
	if err != nil {
		// An ecosystem semantic does not know, or a malformed version:
		// only an exact listing can say it is affected.
		return listed, ""
	}
	affected := listed
	fixed := ""
	for _, r := range spec.Ranges {
		if r.Type != "ECOSYSTEM" && r.Type != "SEMVER" {
			continue
		}
		in, f := rangeAffects(r, pv, ecosystem, version)
		if !in {
			continue
		}
		affected = true
		if f != "" && (fixed == "" || lessVersion(ecosystem, f, fixed)) {
			fixed = f
		}
	}
	if affected && fixed == "" {
		// A version listed as affected may still have a fix in a range.
		for _, r := range spec.Ranges {
			for _, e := range r.Events {
				if e.Fixed != "" {
					if fv, err := parseVersion(e.Fixed, ecosystem); err == nil {
						if c, err := pv.Compare(fv); err == nil && c < 0 && (fixed == "" || lessVersion(ecosystem, e.Fixed, fixed)) {
							fixed = e.Fixed
						}
					}
				}
			}
		}
	}
	return affected, fixed
}

func rangeAffects(r Range, pv semantic.Version, ecosystem, version string) (bool, string) {
	type parsed struct {
		e Event
		v semantic.Version // nil for "0" and for versions that do not parse
	}
	events := make([]parsed, 0, len(r.Events))
	for _, e := range r.Events {
		p := parsed{e: e}
		if ev := eventVersion(e); ev != "0" && ev != "*" {
			p.v, _ = parseVersion(ev, ecosystem)
		}
		events = append(events, p)
	}
	sort.SliceStable(events, func(i, j int) bool {
		a, b := events[i], events[j]
		if eventVersion(a.e) == "0" {
			return eventVersion(b.e) != "0"
		}
		if eventVersion(b.e) == "0" || a.v == nil || b.v == nil {
			return false
		}
		c, err := a.v.Compare(b.v)
		return err == nil && c < 0
	})
	// cmp compares the package version with an event's: -1, 0, 1, or
	// false when they cannot be compared.
	cmp := func(p parsed) (int, bool) {
		if p.v == nil {
			return 0, false
		}
		c, err := pv.Compare(p.v)
		return c, err == nil
	}
	affected := false
	fixed := ""
	for _, p := range events {
		e := p.e
		switch {
		case e.Introduced != "":
			if e.Introduced == "0" {
				affected = true
			} else if c, ok := cmp(p); ok && c >= 0 {
				affected = true
			}
		case e.Fixed != "":
			if c, ok := cmp(p); ok {
				if c >= 0 {
					affected = false
				} else if affected && fixed == "" {
					fixed = e.Fixed
				}
			}
		case e.LastAffected != "":
			if c, ok := cmp(p); ok && c > 0 && e.LastAffected != version {
				affected = false
			}
		case e.Limit != "":
			if e.Limit != "*" {
				if c, ok := cmp(p); ok && c >= 0 {
					affected = false
				}
			}
		}
	}
	if !affected {
		return false, ""
	}
	return true, fixed
}

func eventVersion(e Event) string {
	switch {
	case e.Introduced != "":
		return e.Introduced
	case e.Fixed != "":
		return e.Fixed
	case e.LastAffected != "":
		return e.LastAffected
	}
	return e.Limit
}

// LessVersion reports a < b under the ecosystem's version rules,
// falling back to string order for versions it cannot parse.
func LessVersion(ecosystem, a, b string) bool { return lessVersion(ecosystem, a, b) }

// lessVersion reports a < b under ecosystem, falling back to string order.
func lessVersion(ecosystem, a, b string) bool {
	pa, err := parseVersion(a, ecosystem)
	if err != nil {
		return a < b
	}
	pb, err := parseVersion(b, ecosystem)
	if err != nil {
		return a < b
	}
	c, err := pa.Compare(pb)
	if err != nil {
		return a < b
	}
	return c < 0
}

// versionCache keeps parsed versions: matching a fleet parses the same
// advisory events and package versions over and over, and parsing (PEP
// 440, Debian) costs more than comparing.
var versionCache = struct {
	sync.Mutex
	m map[[2]string]parsedVersion
}{m: map[[2]string]parsedVersion{}}

type parsedVersion struct {
	v   semantic.Version
	err error
}

const maxCachedVersions = 200_000

// parseVersion parses with semantic under the ecosystem's rules, cached.
func parseVersion(v, ecosystem string) (semantic.Version, error) {
	base, _, _ := strings.Cut(ecosystem, ":")
	k := [2]string{base, v}
	versionCache.Lock()
	p, ok := versionCache.m[k]
	versionCache.Unlock()
	if ok {
		return p.v, p.err
	}
	pv, err := semantic.Parse(v, base)
	versionCache.Lock()
	if len(versionCache.m) >= maxCachedVersions {
		versionCache.m = map[[2]string]parsedVersion{}
	}
	versionCache.m[k] = parsedVersion{pv, err}
	versionCache.Unlock()
	return pv, err
}

// KeyOf returns what a package is matched on: its OSV ecosystem, the
// name advisories use (the source package for Debian and Alpine, stdlib
// for the Go toolchain, group:artifact for Maven) and its version. ok is
// false for packages nothing can be matched against.
func KeyOf(p *sbom.Package) (store.PackageKey, bool) {
	if p.Ecosystem == "" || p.Version == "" {
		return store.PackageKey{}, false
	}
	k := store.PackageKey{Ecosystem: p.Ecosystem, Name: p.Name, Version: p.Version}
	switch p.Type {
	case "deb", "opkg":
		if p.SourceName != "" {
			k.Name = p.SourceName
		}
		if p.SourceVersion != "" {
			k.Version = p.SourceVersion
		}
	case "apk":
		if p.SourceName != "" {
			k.Name = p.SourceName
		}
	case "rpm":
		base, _, _ := strings.Cut(p.Ecosystem, ":")
		if p.Epoch > 0 && (base == "Red Hat" || base == "AlmaLinux" || base == "Rocky Linux") {
			k.Version = strconv.Itoa(p.Epoch) + ":" + p.Version
		}
	case "golang":
		if p.Name == "go" {
			k.Name = "stdlib"
		}
		k.Version = strings.TrimPrefix(k.Version, "v")
		if k.Version == "(devel)" {
			return store.PackageKey{}, false
		}
	case "maven":
		if p.Namespace != "" {
			k.Name = p.Namespace + ":" + p.Name
		}
	}
	k.Name = NormalizeName(k.Ecosystem, k.Name)
	return k, true
}

// Finding is one vulnerability in one package of an image, after
// aliases are merged.
type Finding struct {
	// ID is the preferred identifier: the CVE when there is one.
	ID string `json:"id"`
	// Aliases are every other identifier of the same vulnerability.
	Aliases []string `json:"aliases,omitempty"`
	// Advisories are the records merged into this finding.
	Advisories   []string         `json:"advisories"`
	Package      sbom.Package     `json:"package"`
	Key          store.PackageKey `json:"match_key"`
	Severity     string           `json:"severity"`
	Score        float64          `json:"score,omitempty"`
	FixedVersion string           `json:"fixed_version,omitempty"`
	Summary      string           `json:"summary,omitempty"`
	Published    time.Time        `json:"published,omitzero"`
	Withdrawn    bool             `json:"withdrawn,omitempty"`
	// Suppressed holds the VEX status and justification that hid it.
	Suppressed string `json:"suppressed,omitempty"`
	// SeveritySource says whose severity Severity is; Ratings are every
	// source's, for the finding's identifiers.
	SeveritySource string         `json:"severity_source,omitempty"`
	Ratings        []store.Rating `json:"ratings,omitempty"`
	// KEV is when CISA listed it as known exploited; EPSS its
	// probability of exploitation in the next 30 days.
	KEV  time.Time `json:"kev,omitzero"`
	EPSS float64   `json:"epss,omitempty"`
	// FixState is "fixed" when a fix exists, else what the distribution
	// tracker says of it: "no_fix_yet" or "wont_fix".
	FixState string `json:"fix_state,omitempty"`
	// Risk ranks findings by severity, exploitation and exposure (see
	// Risk); Exposure is the most exposed environment running the image.
	Risk     float64 `json:"risk"`
	Exposure string  `json:"exposure,omitempty"`
}

// FindingsFor matches every present package of an inventory and merges
// aliases per package. Results are cached per match key, so a package
// version shared by many binaries is matched once.
func FindingsFor(ctx context.Context, m *Matcher, pkgs []sbom.Package) (findings, withdrawn []Finding, err error) {
	type result struct{ active, withdrawn []Match }
	if err := m.Refresh(ctx); err != nil {
		return nil, nil, err
	}
	cache := map[store.PackageKey]result{}
	var mu sync.Mutex
	for i := range pkgs {
		p := &pkgs[i]
		key, ok := KeyOf(p)
		if !ok {
			continue
		}
		mu.Lock()
		r, hit := cache[key]
		mu.Unlock()
		if !hit {
			a, w, err := m.Match(ctx, key)
			if err != nil {
				return nil, nil, err
			}
			r = result{a, w}
			cache[key] = r
		}
		findings = append(findings, MergeAliases(*p, key, r.active)...)
		withdrawn = append(withdrawn, MergeAliases(*p, key, r.withdrawn)...)
	}
	SortFindings(findings)
	SortFindings(withdrawn)
	return findings, withdrawn, nil
}

// MergeAliases folds the matches of one package that name the same
// vulnerability (through their IDs and aliases) into one finding each.
func MergeAliases(p sbom.Package, key store.PackageKey, ms []Match) []Finding {
	return appendMerged(nil, p, key, ms)
}

// appendMerged appends MergeAliases' findings to out.
func appendMerged(out []Finding, p sbom.Package, key store.PackageKey, ms []Match) []Finding {
	for _, g := range groupByAlias(ms) {
		out = append(out, mergeGroup(p, key, ms, g))
	}
	return out
}

// mergeGroup is the finding of the matches g of ms, which name one
// vulnerability.
func mergeGroup(p sbom.Package, key store.PackageKey, ms []Match, g []int) Finding {
	f := Finding{Package: p, Key: key, Severity: SeverityUnknown}
	// Every identifier once: a group has a few.
	var buf [8]string
	ids := buf[:0]
	add := func(id string) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	for _, i := range g {
		mt := ms[i]
		f.Advisories = append(f.Advisories, mt.AdvisoryID)
		add(mt.AdvisoryID)
		for _, a := range mt.Aliases {
			add(a)
		}
		if SeverityRank(mt.Severity) > SeverityRank(f.Severity) {
			f.Severity = mt.Severity
		}
		if mt.Score > f.Score {
			f.Score = mt.Score
		}
		f.Ratings = mergeRatings(f.Ratings, mt.Ratings)
		if !mt.KEV.IsZero() && (f.KEV.IsZero() || mt.KEV.Before(f.KEV)) {
			f.KEV = mt.KEV
		}
		f.EPSS = max(f.EPSS, mt.EPSS)
		f.FixState = mergeFixState(f.FixState, mt.State)
		if mt.FixedVersion != "" && (f.FixedVersion == "" || lessVersion(key.Ecosystem, f.FixedVersion, mt.FixedVersion)) {
			f.FixedVersion = mt.FixedVersion
		}
		if f.Summary == "" {
			f.Summary = mt.Summary
		}
		if !mt.Published.IsZero() && (f.Published.IsZero() || mt.Published.Before(f.Published)) {
			f.Published = mt.Published
		}
		f.Withdrawn = f.Withdrawn || mt.Withdrawn
	}
	f.ID = preferredID(ids) // sorts ids
	for _, id := range ids {
		if id != f.ID {
			f.Aliases = append(f.Aliases, id)
		}
	}
	sort.Strings(f.Advisories)
	if f.FixedVersion != "" {
		f.FixState = FixStateFixed
	} else if f.FixState == "" {
		f.FixState = FixStateNoFixYet
	}
	Repick(&f, DefaultSeverityOrder)
	SetRisk(&f, Exposure{Weight: NotDeployedWeight}) // until Rank knows where it runs
	return f
}

// groupByAlias partitions matches into groups that share an identifier
// (an advisory ID or an alias), in the order of their first match.
func groupByAlias(ms []Match) [][]int {
	n := len(ms)
	if n == 1 {
		return [][]int{{0}}
	}
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := make(map[string]int, 2*n)
	merged := false
	own := func(i int, id string) {
		if j, ok := owner[id]; !ok {
			owner[id] = i
		} else if ri, rj := find(i), find(j); ri != rj {
			parent[ri] = rj
			merged = true
		}
	}
	for i, m := range ms {
		own(i, m.AdvisoryID)
		for _, a := range m.Aliases {
			own(i, a)
		}
	}
	each := make([]int, n)
	if !merged { // each match its own group, the usual case
		out := make([][]int, n)
		for i := range each {
			each[i] = i
			out[i] = each[i : i+1 : i+1]
		}
		return out
	}
	var out [][]int
	for i := range n { // each[r]: 1 + the group of root r
		r := find(i)
		if each[r] == 0 {
			out = append(out, nil)
			each[r] = len(out)
		}
		out[each[r]-1] = append(out[each[r]-1], i)
	}
	return out
}

// preferredID picks the identifier to show: a CVE, else a GHSA, else the
// smallest. It sorts ids.
func preferredID(ids []string) string {
	slices.Sort(ids)
	for _, prefix := range []string{"CVE-", "GHSA-"} {
		for _, id := range ids {
			if strings.HasPrefix(id, prefix) {
				return id
			}
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// SortFindings orders findings by package, then severity, then ID,
// keeping the order of equal ones.
func SortFindings(fs []Finding) { order.Stable(fs, compareFindings) }

func compareFindings(a, b *Finding) int {
	return cmp.Or(strings.Compare(a.Package.Name, b.Package.Name), strings.Compare(a.Package.Version, b.Package.Version),
		strings.Compare(a.Package.Path, b.Package.Path), cmp.Compare(SeverityRank(b.Severity), SeverityRank(a.Severity)),
		strings.Compare(a.ID, b.ID))
}

// FromStore merges the stored findings of one image by package and
// alias, as FindingsFor does for a fresh scan.
func FromStore(rows []store.Finding) []Finding {
	first, starts, matches := groupByBinary(rows)
	out := make([]Finding, 0, len(rows))
	for g, i := range first {
		p := rows[i].Package
		pkg := sbom.Package{Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL, Path: p.Path,
			Layer: p.Layer, LayerIndex: p.LayerIndex, Ecosystem: p.Key.Ecosystem}
		if p.Key.Name != p.Name {
			pkg.SourceName = p.Key.Name
		}
		out = appendMerged(out, pkg, p.Key, matches[starts[g]:starts[g+1]])
	}
	SortFindings(out)
	return out
}

// groupByBinary groups rows by binary package (type, name, version,
// path), groups in the order they first appear: first[g] is group g's
// first row, and its rows' matches are matches[starts[g]:starts[g+1]].
func groupByBinary(rows []store.Finding) (first, starts []int, matches []Match) {
	type binary struct{ typ, name, version, path string }
	index := make(map[binary]int, len(rows))
	groupOf := make([]int, len(rows))
	var count []int
	for i := range rows {
		p := &rows[i].Package
		k := binary{p.Type, p.Name, p.Version, p.Path}
		g, ok := index[k]
		if !ok {
			g = len(first)
			index[k] = g
			first, count = append(first, i), append(count, 0)
		}
		groupOf[i] = g
		count[g]++
	}
	starts = make([]int, len(count)+1)
	for g, c := range count {
		starts[g+1] = starts[g] + c
	}
	matches = make([]Match, len(rows))
	next := slices.Clone(starts[:len(count)])
	for i := range rows {
		r := &rows[i]
		g := groupOf[i]
		matches[next[g]] = Match{
			AffectedRow: store.AffectedRow{
				AdvisoryID: r.AdvisoryID, Aliases: r.Aliases, Summary: r.Summary, Severity: r.Severity,
				Score: r.Score, Withdrawn: r.Withdrawn, Published: r.Published, RatingFacts: r.RatingFacts,
			},
			FixedVersion: r.FixedVersion,
			Severity:     r.Severity,
		}
		next[g]++
	}
	return first, starts, matches
}
