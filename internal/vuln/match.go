package vuln

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/osv-scalibr/semantic"

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
	groups := GroupByAlias(len(ms), func(i int) []string { return append([]string{ms[i].AdvisoryID}, ms[i].Aliases...) })
	out := make([]Finding, 0, len(groups))
	for _, g := range groups {
		f := Finding{Package: p, Key: key, Severity: SeverityUnknown}
		ids := map[string]bool{}
		for _, i := range g {
			mt := ms[i]
			f.Advisories = append(f.Advisories, mt.AdvisoryID)
			ids[mt.AdvisoryID] = true
			for _, a := range mt.Aliases {
				ids[a] = true
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
		all := make([]string, 0, len(ids))
		for id := range ids {
			all = append(all, id)
		}
		f.ID = PreferredID(all)
		for _, id := range all {
			if id != f.ID {
				f.Aliases = append(f.Aliases, id)
			}
		}
		sort.Strings(f.Aliases)
		sort.Strings(f.Advisories)
		if f.FixedVersion != "" {
			f.FixState = FixStateFixed
		} else if f.FixState == "" {
			f.FixState = FixStateNoFixYet
		}
		Repick(&f, DefaultSeverityOrder)
		SetRisk(&f, Exposure{Weight: NotDeployedWeight}) // until Rank knows where it runs
		out = append(out, f)
	}
	return out
}

// GroupByAlias partitions n items into groups that share an identifier.
func GroupByAlias(n int, ids func(int) []string) [][]int {
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[string]int{}
	for i := 0; i < n; i++ {
		for _, id := range ids(i) {
			if j, ok := owner[id]; ok {
				parent[find(i)] = find(j)
			} else {
				owner[id] = i
			}
		}
	}
	byRoot := map[int][]int{}
	var roots []int
	for i := 0; i < n; i++ {
		r := find(i)
		if _, ok := byRoot[r]; !ok {
			roots = append(roots, r)
		}
		byRoot[r] = append(byRoot[r], i)
	}
	out := make([][]int, 0, len(roots))
	for _, r := range roots {
		out = append(out, byRoot[r])
	}
	return out
}

// PreferredID picks the identifier to show: a CVE, else a GHSA, else the
// smallest.
func PreferredID(ids []string) string {
	sort.Strings(ids)
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

// SortFindings orders findings by package, then severity, then ID.
func SortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := &fs[i], &fs[j]
		if a.Package.Name != b.Package.Name {
			return a.Package.Name < b.Package.Name
		}
		if a.Package.Version != b.Package.Version {
			return a.Package.Version < b.Package.Version
		}
		if a.Package.Path != b.Package.Path {
			return a.Package.Path < b.Package.Path
		}
		if ra, rb := SeverityRank(a.Severity), SeverityRank(b.Severity); ra != rb {
			return ra > rb
		}
		return a.ID < b.ID
	})
}

// FromStore merges the stored findings of one image by package and
// alias, as FindingsFor does for a fresh scan.
func FromStore(rows []store.Finding) []Finding {
	type group struct {
		pkg     sbom.Package
		key     store.PackageKey
		matches []Match
	}
	var order []string
	groups := map[string]*group{}
	for _, r := range rows {
		p := r.Package
		k := p.Type + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Path
		g, ok := groups[k]
		if !ok {
			g = &group{
				pkg: sbom.Package{Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL, Path: p.Path,
					Layer: p.Layer, LayerIndex: p.LayerIndex, Ecosystem: p.Key.Ecosystem},
				key: p.Key,
			}
			if p.Key.Name != p.Name {
				g.pkg.SourceName = p.Key.Name
			}
			groups[k] = g
			order = append(order, k)
		}
		g.matches = append(g.matches, Match{
			AffectedRow: store.AffectedRow{
				AdvisoryID: r.AdvisoryID, Aliases: r.Aliases, Summary: r.Summary, Severity: r.Severity,
				Score: r.Score, Withdrawn: r.Withdrawn, Published: r.Published, RatingFacts: r.RatingFacts,
			},
			FixedVersion: r.FixedVersion,
			Severity:     r.Severity,
		})
	}
	var out []Finding
	for _, k := range order {
		g := groups[k]
		out = append(out, MergeAliases(g.pkg, g.key, g.matches)...)
	}
	SortFindings(out)
	return out
}
