package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// The property test drives a store with random images, rebuilds (an
// image indexed again with other packages), matches, withdrawals, VEX
// and rebuild closures and tag moves, and after every step compares each
// answer with a model that recomputes it from scratch: one row per image,
// package version and advisory, each with every interval it was open, as
// the store kept findings before they were derived. All inputs are
// hand-made.

// mInterval is one time a finding was open; to is zero while it is.
type mInterval struct {
	from, to time.Time
	reason   string
}

type mRow struct {
	spans  []mInterval
	sticky bool
}

func (r *mRow) open() bool { return len(r.spans) > 0 && r.spans[len(r.spans)-1].to.IsZero() }

type mKey struct {
	digest string
	pkg    store.PackageKey
	adv    string
}

type fleetModel struct {
	images    map[string][]store.ImagePackage
	tagged    map[string]bool
	matches   map[store.PackageKey]map[string]string
	severity  map[string]string
	withdrawn map[string]bool
	rows      map[mKey]*mRow
}

func (m *fleetModel) row(k mKey) *mRow {
	r := m.rows[k]
	if r == nil {
		r = &mRow{}
		m.rows[k] = r
	}
	return r
}

// openRow opens a finding unless it is open or a sticky reason closed it.
func (m *fleetModel) openRow(k mKey, at time.Time) bool {
	r := m.row(k)
	if r.open() || r.sticky {
		return false
	}
	r.spans = append(r.spans, mInterval{from: at})
	return true
}

func (m *fleetModel) closeRow(k mKey, reason string, at time.Time) bool {
	r := m.rows[k]
	if r == nil || !r.open() {
		return false
	}
	r.spans[len(r.spans)-1].to, r.spans[len(r.spans)-1].reason = at, reason
	r.sticky = store.Sticky(reason)
	return true
}

func keysOf(pkgs []store.ImagePackage) map[store.PackageKey]bool {
	out := map[store.PackageKey]bool{}
	for _, p := range pkgs {
		out[p.Key] = true
	}
	return out
}

func (m *fleetModel) putImage(digest string, pkgs []store.ImagePackage, at time.Time) {
	old := keysOf(m.images[digest])
	now := keysOf(pkgs)
	m.images[digest] = pkgs
	for p := range now {
		for adv := range m.matches[p] {
			m.openRow(mKey{digest, p, adv}, at)
		}
	}
	for p := range old {
		if now[p] {
			continue
		}
		for k := range m.rows {
			if k.digest == digest && k.pkg == p {
				m.closeRow(k, store.ClosePackageRemoved, at)
			}
		}
	}
}

func (m *fleetModel) setMatches(p store.PackageKey, next map[string]string, reasons map[string]string, at time.Time) (ch store.FindingChanges) {
	old := m.matches[p]
	m.matches[p] = next
	changed := false
	for adv := range old {
		if _, ok := next[adv]; ok {
			continue
		}
		changed = true
		reason := reasons[adv]
		if reason == "" {
			reason = store.CloseNoLongerAffected
		}
		for k := range m.rows {
			if k.pkg == p && k.adv == adv && m.closeRow(k, reason, at) {
				ch.Closed++
			}
		}
	}
	for adv, fixed := range next {
		if _, had := old[adv]; had {
			continue
		}
		changed = true
		for d, pkgs := range m.images {
			if keysOf(pkgs)[p] && m.openRow(mKey{d, p, adv}, at) {
				ch.Opened++
				if fixed != "" {
					ch.OpenedFixable++
				}
			}
		}
	}
	// The images holding a version whose matches changed: those whose
	// findings may have.
	for d, pkgs := range m.images {
		if changed && keysOf(pkgs)[p] {
			ch.Images = append(ch.Images, d)
		}
	}
	return ch
}

func (m *fleetModel) closeFindings(digest, adv, binary, reason string, at time.Time) int {
	n := 0
	for _, p := range m.images[digest] {
		if p.Name == binary && m.closeRow(mKey{digest, p.Key, adv}, reason, at) {
			n++
		}
	}
	return n
}

// binaries lists an image's packages with a given match key.
func (m *fleetModel) binaries(digest string, key store.PackageKey) []store.ImagePackage {
	var out []store.ImagePackage
	for _, p := range m.images[digest] {
		if p.Key == key {
			out = append(out, p)
		}
	}
	return out
}

func (m *fleetModel) openFindings(digest string) []string {
	var out []string
	for k, r := range m.rows {
		if k.digest != digest || !r.open() {
			continue
		}
		for _, b := range m.binaries(digest, k.pkg) {
			out = append(out, fmt.Sprintf("%s %s %s opened %s fixed %q", k.adv, b.Name, k.pkg.Version,
				r.spans[len(r.spans)-1].from.Format(time.TimeOnly), m.matches[k.pkg][k.adv]))
		}
	}
	sort.Strings(out)
	return out
}

func (m *fleetModel) closedFindings(digest, prefix string) []string {
	var out []string
	for k, r := range m.rows {
		if k.digest != digest || len(r.spans) == 0 || r.open() {
			continue
		}
		last := r.spans[len(r.spans)-1]
		if !strings.HasPrefix(last.reason, prefix) {
			continue
		}
		for _, b := range m.binaries(digest, k.pkg) {
			out = append(out, fmt.Sprintf("%s %s %s opened %s closed %s %q", k.adv, b.Name, k.pkg.Version,
				last.from.Format(time.TimeOnly), last.to.Format(time.TimeOnly), last.reason))
		}
	}
	sort.Strings(out)
	return out
}

func (m *fleetModel) summary(digest string) (open, fixable map[string]int) {
	open, fixable = map[string]int{}, map[string]int{}
	for k, r := range m.rows {
		if k.digest != digest || !r.open() || m.withdrawn[k.adv] {
			continue
		}
		open[m.severity[k.adv]]++
		if m.matches[k.pkg][k.adv] != "" {
			fixable[m.severity[k.adv]]++
		}
	}
	return open, fixable
}

func (m *fleetModel) trend(at time.Time) store.TrendPoint {
	p := store.TrendPoint{At: at}
	for k, r := range m.rows {
		if !m.tagged[k.digest] || m.withdrawn[k.adv] {
			continue
		}
		for _, s := range r.spans {
			if !s.from.After(at) && (s.to.IsZero() || s.to.After(at)) {
				p.Open++
				if m.matches[k.pkg][k.adv] != "" {
					p.Fixable++
				}
			}
		}
	}
	return p
}

func (m *fleetModel) affected(adv string) []string {
	var out []string
	for d, pkgs := range m.images {
		for p := range keysOf(pkgs) {
			if _, ok := m.matches[p][adv]; ok {
				out = append(out, d+" "+p.Name+" "+p.Version)
			}
		}
	}
	sort.Strings(out)
	return out
}

func testFindingsProperty(t *testing.T, newStore Factory) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			runFleetProperty(t, s, uint64(seed))
		})
	}
}

func runFleetProperty(t *testing.T, s store.Store, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 17))
	t0 := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	m := &fleetModel{images: map[string][]store.ImagePackage{}, tagged: map[string]bool{}, matches: map[store.PackageKey]map[string]string{},
		severity: map[string]string{}, withdrawn: map[string]bool{}, rows: map[mKey]*mRow{}}
	var advs []store.Advisory
	for i := range 6 {
		a := advisory(fmt.Sprintf("CVE-2025-%d", i), t0, nil, store.Affected{Ecosystem: "Debian:12", Name: fmt.Sprint("src", i%4), Spec: []byte("hand-made")})
		a.Severity = []string{"LOW", "HIGH", "CRITICAL"}[rng.IntN(3)]
		m.severity[a.ID] = a.Severity
		advs = append(advs, a)
	}
	_, err := s.UpsertAdvisories(ctx, advs)
	must(t, err)
	digests := []string{"sha256:p0", "sha256:p1", "sha256:p2", "sha256:p3", "sha256:p4"}
	ids := map[store.PackageKey]int64{}
	var keys []store.PackageKey
	at := t0
	// Three layers: sources 0 and 3 in the first, 1 in the second, 2 in
	// the top one, so that images share their lower layers' versions now
	// and then (a store grouping them links the group).
	layers := []string{"sha256:pl0", "sha256:pl1", "sha256:pl2"}
	randomPackages := func() []store.ImagePackage {
		var out []store.ImagePackage
		for src := range 4 {
			v := rng.IntN(2)
			for _, bin := range []string{"a", "b"} {
				if rng.IntN(2) == 0 {
					p := pkg("Debian:12", fmt.Sprint("src", src), fmt.Sprintf("1.%d", v), fmt.Sprintf("src%d-%s", src, bin))
					p.LayerIndex = src % 3
					p.Layer = layers[p.LayerIndex]
					out = append(out, p)
				}
				// Now and then a binary of another version of the same
				// source: the image holds two versions of one package.
				if rng.IntN(5) == 0 {
					v = 1 - v
				}
			}
		}
		return out
	}
	for step := range 70 {
		at = at.Add(time.Minute)
		op := rng.IntN(10)
		switch {
		case op < 3 || len(keys) == 0:
			d := digests[rng.IntN(len(digests))]
			pkgs := randomPackages()
			img := image(d, "r/prop", at)
			img.Layers = layers
			_, err := s.PutImage(ctx, img, pkgs)
			must(t, err)
			m.putImage(d, pkgs, at)
			for _, p := range pkgs {
				if _, ok := ids[p.Key]; !ok {
					rows, err := s.PackagesNamed(ctx, p.Key.Ecosystem, p.Key.Name)
					must(t, err)
					for _, r := range rows {
						if _, ok := ids[r.PackageKey]; !ok {
							ids[r.PackageKey] = r.ID
							keys = append(keys, r.PackageKey)
						}
					}
				}
			}
		case op < 6:
			var ups []store.MatchUpdate
			var want store.FindingChanges
			used := map[store.PackageKey]bool{}
			for range 1 + rng.IntN(3) {
				k := keys[rng.IntN(len(keys))]
				if used[k] {
					continue
				}
				used[k] = true
				next := map[string]string{}
				var ms []store.PackageMatch
				for _, a := range advs {
					if m.withdrawn[a.ID] || rng.IntN(3) != 0 {
						continue
					}
					fixed := []string{"", "9.9"}[rng.IntN(2)]
					next[a.ID] = fixed
					ms = append(ms, store.PackageMatch{AdvisoryID: a.ID, FixedVersion: fixed})
				}
				reasons := map[string]string{}
				for _, a := range advs {
					if rng.IntN(2) == 0 {
						reasons[a.ID] = "fixed upstream"
					}
				}
				ups = append(ups, store.MatchUpdate{PackageID: ids[k], Matches: ms, CloseReasons: reasons})
				c := m.setMatches(k, next, reasons, at)
				want.Opened += c.Opened
				want.Closed += c.Closed
				want.OpenedFixable += c.OpenedFixable
				want.Images = append(want.Images, c.Images...)
			}
			slices.Sort(want.Images)
			want.Images = slices.Compact(want.Images)
			got, err := s.SetMatches(ctx, ups, at)
			must(t, err)
			if got.Opened != want.Opened || got.Closed != want.Closed || got.OpenedFixable != want.OpenedFixable ||
				!slices.Equal(got.Images, want.Images) {
				t.Fatalf("step %d: SetMatches changes = %+v, recomputed %+v", step, got, want)
			}
		case op < 8:
			d := digests[rng.IntN(len(digests))]
			adv := advs[rng.IntN(len(advs))].ID
			bin := fmt.Sprintf("src%d-%s", rng.IntN(4), []string{"a", "b"}[rng.IntN(2)])
			reason := []string{store.CloseVEX + ": not_affected", store.CloseFixedByRebuild + " (rebuild → sha256:x)"}[rng.IntN(2)]
			got, err := s.CloseFindings(ctx, d, []store.FindingKey{{AdvisoryID: adv, Package: bin}}, reason, at)
			must(t, err)
			if want := m.closeFindings(d, adv, bin, reason, at); got != want {
				t.Fatalf("step %d: CloseFindings closed %d, recomputed %d", step, got, want)
			}
		case op < 9:
			// A withdrawal: the advisory is marked, then every package
			// version loses the match.
			a := advs[rng.IntN(len(advs))]
			if m.withdrawn[a.ID] {
				continue
			}
			a.Withdrawn, a.Modified = at, at
			a.Raw = []byte(fmt.Sprintf(`{"id":%q,"withdrawn":%q}`, a.ID, at.Format(time.RFC3339)))
			_, err := s.UpsertAdvisories(ctx, []store.Advisory{a})
			must(t, err)
			m.withdrawn[a.ID] = true
			var ups []store.MatchUpdate
			for _, k := range keys {
				if _, ok := m.matches[k][a.ID]; !ok {
					continue
				}
				next := map[string]string{}
				var ms []store.PackageMatch
				for id, fixed := range m.matches[k] {
					if id != a.ID {
						next[id] = fixed
						ms = append(ms, store.PackageMatch{AdvisoryID: id, FixedVersion: fixed})
					}
				}
				reasons := map[string]string{a.ID: "advisory withdrawn"}
				ups = append(ups, store.MatchUpdate{PackageID: ids[k], Matches: ms, CloseReasons: reasons})
				m.setMatches(k, next, reasons, at)
			}
			_, err = s.SetMatches(ctx, ups, at)
			must(t, err)
		default:
			d := digests[rng.IntN(len(digests))]
			if _, known := m.images[d]; !known {
				continue
			}
			if m.tagged[d] {
				must(t, s.DeleteTag(ctx, "r/prop", d[7:], at))
				m.tagged[d] = false
			} else {
				must(t, s.PutTag(ctx, store.TagEvent{Repository: "r/prop", Tag: d[7:], Digest: d, At: at}))
				m.tagged[d] = true
			}
		}
		compareFleet(t, s, m, advs, step)
	}
	pts, err := s.FindingTrend(ctx, t0, at, 30*time.Second)
	must(t, err)
	for _, p := range pts {
		if want := m.trend(p.At); p.Open != want.Open || p.Fixable != want.Fixable {
			t.Fatalf("trend at %s = %d open, %d fixable; recomputed %d, %d", p.At.Format(time.TimeOnly), p.Open, p.Fixable, want.Open, want.Fixable)
		}
	}
}

func compareFleet(t *testing.T, s store.Store, m *fleetModel, advs []store.Advisory, step int) {
	t.Helper()
	sums, err := s.Images(ctx, store.ImageFilter{Limit: store.All})
	must(t, err)
	byDigest := map[string]store.ImageSummary{}
	for _, sm := range sums {
		byDigest[sm.Digest] = sm
	}
	for d := range m.images {
		fs, err := s.ImageFindings(ctx, d)
		must(t, err)
		var got []string
		for _, f := range fs {
			got = append(got, fmt.Sprintf("%s %s %s opened %s fixed %q", f.AdvisoryID, f.Package.Name, f.Package.Key.Version,
				f.OpenedAt.UTC().Format(time.TimeOnly), f.FixedVersion))
		}
		sort.Strings(got)
		if want := m.openFindings(d); !reflect.DeepEqual(nilIfEmpty(got), nilIfEmpty(want)) {
			t.Fatalf("step %d: ImageFindings(%s) =\n%s\nrecomputed:\n%s", step, d, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		for _, prefix := range []string{"", store.CloseVEX, store.CloseFixedByRebuild, store.ClosePackageRemoved, "advisory withdrawn", "fixed upstream", store.CloseNoLongerAffected} {
			fs, err := s.FindingsClosedAs(ctx, d, prefix)
			must(t, err)
			var got []string
			for _, f := range fs {
				got = append(got, fmt.Sprintf("%s %s %s opened %s closed %s %q", f.AdvisoryID, f.Package.Name, f.Package.Key.Version,
					f.OpenedAt.UTC().Format(time.TimeOnly), f.ClosedAt.UTC().Format(time.TimeOnly), f.CloseReason))
			}
			sort.Strings(got)
			if want := m.closedFindings(d, prefix); !reflect.DeepEqual(nilIfEmpty(got), nilIfEmpty(want)) {
				t.Fatalf("step %d: FindingsClosedAs(%s, %q) =\n%s\nrecomputed:\n%s", step, d, prefix, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		}
		open, fixable := m.summary(d)
		if sm := byDigest[d]; !reflect.DeepEqual(sm.Open, open) || !reflect.DeepEqual(sm.Fixable, fixable) {
			t.Fatalf("step %d: summary of %s open %v fixable %v; recomputed %v, %v", step, d, sm.Open, sm.Fixable, open, fixable)
		}
	}
	for _, a := range advs {
		res, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: a.ID})
		must(t, err)
		var got []string
		for _, r := range res.Rows {
			got = append(got, r.Digest+" "+r.Package.Key.Name+" "+r.Package.Key.Version)
		}
		sort.Strings(got)
		if want := m.affected(a.ID); !reflect.DeepEqual(nilIfEmpty(got), nilIfEmpty(want)) || res.Total != len(want) ||
			res.Images != distinctImages(want) {
			t.Fatalf("step %d: AffectedImages(%s) = %v (total %d, images %d); recomputed %v", step, a.ID, got, res.Total, res.Images, want)
		}
	}
	for src := range 4 {
		name := fmt.Sprint("src", src)
		res, err := s.AffectedImages(ctx, store.AffectedQuery{Package: name, Limit: store.All})
		must(t, err)
		var got, want []string
		for _, r := range res.Rows {
			got = append(got, r.Digest+" "+r.Package.Key.Version)
		}
		for d, pkgs := range m.images {
			for p := range keysOf(pkgs) {
				if p.Name == name {
					want = append(want, d+" "+p.Version)
				}
			}
		}
		sort.Strings(got)
		sort.Strings(want)
		if !reflect.DeepEqual(nilIfEmpty(got), nilIfEmpty(want)) || res.Images != distinctImages(want) {
			t.Fatalf("step %d: AffectedImages(package %s) = %v (images %d); recomputed %v", step, name, got, res.Images, want)
		}
	}
}

// distinctImages counts the digests that begin rows of "digest ...".
func distinctImages(rows []string) int {
	seen := map[string]bool{}
	for _, r := range rows {
		seen[strings.Fields(r)[0]] = true
	}
	return len(seen)
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// testConcurrentIngest indexes images from many goroutines at once (the
// store commits them together) and checks each image's packages and
// findings, and that a caller whose context is gone fails alone.
func testConcurrentIngest(t *testing.T, s store.Store) {
	t0 := time.Date(2025, 7, 1, 0, 0, 0, 0, time.UTC)
	_, err := s.UpsertAdvisories(ctx, []store.Advisory{advisory("CVE-2025-77", t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "src0", Spec: []byte("hand-made")})})
	must(t, err)
	first := []store.ImagePackage{pkg("Debian:12", "src0", "1.0", "src0-a")}
	fresh, err := s.PutImage(ctx, image("sha256:c0", "r/c", t0), first)
	must(t, err)
	_, err = s.SetPackageMatches(ctx, fresh[0].ID, []store.PackageMatch{{AdvisoryID: "CVE-2025-77", FixedVersion: "1.1"}}, nil, t0)
	must(t, err)
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := ctx
			if i == 7 {
				cc, cancel := context.WithCancel(ctx)
				cancel()
				c = cc
			}
			pkgs := []store.ImagePackage{pkg("Debian:12", "src0", "1.0", "src0-a"), pkg("Debian:12", fmt.Sprint("own", i), "1.0", fmt.Sprint("own", i))}
			_, errs[i] = s.PutImage(c, image(fmt.Sprintf("sha256:c%d", i+1), "r/c", t0.Add(time.Minute)), pkgs)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		d := fmt.Sprintf("sha256:c%d", i+1)
		if i == 7 {
			if err == nil {
				t.Fatal("a cancelled caller's image was stored")
			}
			if ok, _ := s.HasImage(ctx, d); ok {
				t.Fatalf("the cancelled caller's image %s is stored", d)
			}
			continue
		}
		must(t, err)
		ps, err := s.ImagePackages(ctx, d)
		must(t, err)
		if len(ps) != 2 || ps[0].Name != fmt.Sprint("own", i) || ps[1].Name != "src0-a" {
			t.Fatalf("packages of %s = %+v", d, ps)
		}
		fs, err := s.ImageFindings(ctx, d)
		must(t, err)
		if len(fs) != 1 || fs[0].AdvisoryID != "CVE-2025-77" || fs[0].Package.Layer != "sha256:l1" || !fs[0].OpenedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("findings of %s = %+v", d, fs)
		}
		// Each image is linked to its own packages only, whatever else
		// its batch held.
		own, err := s.AffectedImages(ctx, store.AffectedQuery{Package: fmt.Sprint("own", i)})
		must(t, err)
		if own.Images != 1 || own.Rows[0].Digest != d {
			t.Fatalf("images holding own%d = %+v", i, own)
		}
	}
	// The same image indexed twice at once with other packages (a batch
	// may hold both): it ends with one of the two, and the index by
	// package agrees.
	for round := range 5 {
		d := fmt.Sprintf("sha256:dup%d", round)
		var wg sync.WaitGroup
		for _, own := range []string{"dupA", "dupB"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.PutImage(ctx, image(d, "r/c", t0.Add(time.Minute)), []store.ImagePackage{pkg("Debian:12", own, "1.0", own)})
				must(t, err)
			}()
		}
		wg.Wait()
		ps, err := s.ImagePackages(ctx, d)
		must(t, err)
		if len(ps) != 1 {
			t.Fatalf("packages of %s = %+v", d, ps)
		}
		for _, own := range []string{"dupA", "dupB"} {
			res, err := s.AffectedImages(ctx, store.AffectedQuery{Package: own, Limit: store.All})
			must(t, err)
			held := 0
			for _, r := range res.Rows {
				if r.Digest == d {
					held++
				}
			}
			if want := map[bool]int{true: 1}[ps[0].Name == own]; held != want {
				t.Fatalf("round %d: %s holds %s in the index %d times, its packages %+v", round, d, own, held, ps)
			}
		}
	}
	res, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: "CVE-2025-77"})
	must(t, err)
	if res.Images != n {
		t.Fatalf("affected images = %d, want %d", res.Images, n)
	}
}

// testConcurrentReindex indexes stored images again from many goroutines
// at once (a batch then holds several images the store knows), each with
// a package swapped, a second version of a package it keeps and a new
// repository, and moves tags at once: some twice, some to the digest
// they name already. Each image must end as if indexed alone: the kept
// package keeps its time, the swapped one's finding is no longer open
// (nor the image affected by its advisory), both versions are one image
// to the advisory, the answers show the new repository, and each tag's
// history holds exactly its moves.
func testConcurrentReindex(t *testing.T, s store.Store) {
	t0 := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	_, err := s.UpsertAdvisories(ctx, []store.Advisory{
		advisory("CVE-2025-91", t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "keep", Spec: []byte("hand-made")}),
		advisory("CVE-2025-92", t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "swap", Spec: []byte("hand-made")}),
	})
	must(t, err)
	const n = 24
	digest := func(i int) string { return fmt.Sprintf("sha256:re%02d", i) }
	for i := range n {
		fresh, err := s.PutImage(ctx, image(digest(i), "r/old", t0), []store.ImagePackage{
			pkg("Debian:12", "keep", "1.0", "keep"), pkg("Debian:12", "swap", "1.0", "swap")})
		must(t, err)
		for _, f := range fresh {
			_, err := s.SetPackageMatches(ctx, f.ID, []store.PackageMatch{{AdvisoryID: map[string]string{"keep": "CVE-2025-91", "swap": "CVE-2025-92"}[f.Name], FixedVersion: "9"}}, nil, t0)
			must(t, err)
		}
		must(t, s.PutTag(ctx, store.TagEvent{Repository: "r/re", Tag: fmt.Sprint("t", i), Digest: digest(i), At: t0}))
	}
	// Names are cached from here on: the rename must reach them.
	if res, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: "CVE-2025-91", Limit: store.All}); err != nil || res.Images != n {
		t.Fatalf("before: affected = %+v, %v", res, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			fresh, err := s.PutImage(ctx, image(digest(i), "r/new", t1), []store.ImagePackage{
				pkg("Debian:12", "keep", "1.0", "keep"), pkg("Debian:12", "keep", "2.0", "keep"), pkg("Debian:12", fmt.Sprint("own", i), "1.0", fmt.Sprint("own", i))})
			for _, f := range fresh {
				if f.Name == "keep" && err == nil {
					_, err = s.SetPackageMatches(ctx, f.ID, []store.PackageMatch{{AdvisoryID: "CVE-2025-91", FixedVersion: "9"}}, nil, t1)
				}
			}
			errs <- err
		}()
		go func() {
			defer wg.Done()
			// Even tags move on, odd ones are told the digest they name.
			to := digest(i)
			if i%2 == 0 {
				to = digest((i + 1) % n)
			}
			errs <- s.PutTag(ctx, store.TagEvent{Repository: "r/re", Tag: fmt.Sprint("t", i), Digest: to, At: t1})
		}()
	}
	// One tag moved twice at once.
	for _, d := range []string{digest(1), digest(2)} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.PutTag(ctx, store.TagEvent{Repository: "r/re", Tag: "twice", Digest: d, At: t1})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	for i := range n {
		d := digest(i)
		ps, err := s.ImagePackages(ctx, d)
		must(t, err)
		var got []string
		for _, p := range ps {
			got = append(got, p.Name+" "+p.Key.Version)
		}
		sort.Strings(got)
		if want := []string{"keep 1.0", "keep 2.0", fmt.Sprint("own", i, " 1.0")}; !reflect.DeepEqual(got, want) {
			t.Fatalf("packages of %s = %v, want %v", d, got, want)
		}
		open, err := s.ImageFindings(ctx, d)
		must(t, err)
		got = nil
		for _, f := range open {
			got = append(got, fmt.Sprintf("%s %s opened %s", f.AdvisoryID, f.Package.Key.Version, f.OpenedAt.UTC().Format(time.TimeOnly)))
		}
		sort.Strings(got)
		// The kept version keeps its time; the new one opens at t1.
		want := []string{"CVE-2025-91 1.0 opened " + t0.Format(time.TimeOnly), "CVE-2025-91 2.0 opened " + t1.Format(time.TimeOnly)}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("open findings of %s = %v, want %v", d, got, want)
		}
	}
	res, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: "CVE-2025-91", Limit: store.All})
	must(t, err)
	if res.Images != n || res.Total != 2*n {
		t.Fatalf("affected by CVE-2025-91: %d images, %d rows; want %d and %d", res.Images, res.Total, n, 2*n)
	}
	for _, r := range res.Rows {
		if r.Repository != "r/new" {
			t.Fatalf("%s shown in %q after its rename", r.Digest, r.Repository)
		}
	}
	if res, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: "CVE-2025-92", Limit: store.All}); err != nil || res.Images != 0 {
		t.Fatalf("affected by the swapped package's advisory = %+v, %v", res, err)
	}
	tags, err := s.Tags(ctx, "r/re")
	must(t, err)
	now := map[string]string{}
	for _, tg := range tags {
		now[tg.Tag] = tg.Digest
	}
	for i := range n {
		tag := fmt.Sprint("t", i)
		hist, err := s.TagHistory(ctx, "r/re", tag)
		must(t, err)
		want := []string{digest(i)}
		if i%2 == 0 {
			want = []string{digest((i + 1) % n), digest(i)}
		}
		var got []string
		for _, h := range hist {
			got = append(got, h.Digest)
		}
		if !reflect.DeepEqual(got, want) || now[tag] != want[0] {
			t.Fatalf("tag %s: now %s, history %v; want %v", tag, now[tag], got, want)
		}
	}
	hist, err := s.TagHistory(ctx, "r/re", "twice")
	must(t, err)
	if len(hist) != 2 || hist[0].Digest != now["twice"] || hist[0].Digest == hist[1].Digest {
		t.Fatalf("tag moved twice at once: now %s, history %+v", now["twice"], hist)
	}
}

// testBadImageInBatch indexes images from many goroutines at once, each
// followed by a tag move, one of them with a repository name no
// PostgreSQL text column takes (a NUL byte, as a crafted push could
// carry): the store writes a batch's images and tag moves together, in
// one statement a table there, and the bad row must fail only its own
// call. Where the database takes the name (SQLite), the call succeeds and
// the name comes back as it was given.
func testBadImageInBatch(t *testing.T, s store.Store) {
	t0 := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	const n, bad = 24, 11
	digest := func(i int) string { return fmt.Sprintf("sha256:bad%02d", i) }
	errs, tagErrs := make([]error, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			repo := "r/batch"
			if i == bad {
				repo = "r/\x00evil"
			}
			_, errs[i] = s.PutImage(ctx, image(digest(i), repo, t0), []store.ImagePackage{pkg("Debian:12", fmt.Sprint("b", i), "1.0", fmt.Sprint("b", i))})
			tagErrs[i] = s.PutTag(ctx, store.TagEvent{Repository: repo, Tag: fmt.Sprint("t", i), Digest: digest(i), At: t0})
		}()
	}
	wg.Wait()
	for i := range n {
		repo := "r/batch"
		if i == bad {
			repo = "r/\x00evil"
		}
		hist, err := s.TagHistory(ctx, repo, fmt.Sprint("t", i))
		switch {
		case i == bad && tagErrs[i] != nil:
			if err == nil && len(hist) > 0 {
				t.Fatalf("the refused tag move is recorded: %+v", hist)
			}
		case tagErrs[i] != nil:
			t.Fatalf("tag %d failed with the bad one in its batch: %v", i, tagErrs[i])
		case err != nil:
			t.Fatalf("tag %d: %v", i, err)
		case len(hist) != 1 || hist[0].Digest != digest(i) || hist[0].Repository != repo:
			t.Fatalf("tag %d: history %+v, want one move to %s in %q", i, hist, digest(i), repo)
		}
	}
	for i := range n {
		img, err := s.Image(ctx, digest(i))
		switch {
		case i == bad && errs[i] != nil:
			if err == nil {
				t.Fatalf("the refused image is stored: %+v", img)
			}
		case errs[i] != nil:
			t.Fatalf("image %d failed with the bad one in its batch: %v", i, errs[i])
		case err != nil:
			t.Fatalf("image %d: %v", i, err)
		case i == bad && img.Repository != "r/\x00evil":
			t.Fatalf("the bad image's repository came back as %q", img.Repository)
		}
	}
}

// testChangedImagesBound matches a package that more images hold than a
// change lists: the counts stay exact, the list stops at
// store.MaxChangedImages and says so.
func testChangedImagesBound(t *testing.T, s store.Store) {
	t0 := time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
	_, err := s.UpsertAdvisories(ctx, []store.Advisory{advisory("CVE-2025-88", t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "base", Spec: []byte("hand-made")})})
	must(t, err)
	n := store.MaxChangedImages + 1
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				_, err := s.PutImage(ctx, image(fmt.Sprintf("sha256:b%05d", i), "r/b", t0), []store.ImagePackage{pkg("Debian:12", "base", "1.0", "base")})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	rows, err := s.PackagesNamed(ctx, "Debian:12", "base")
	must(t, err)
	ch, err := s.SetPackageMatches(ctx, rows[0].ID, []store.PackageMatch{{AdvisoryID: "CVE-2025-88"}}, nil, t0.Add(time.Hour))
	must(t, err)
	if ch.Opened != n || len(ch.Images) != store.MaxChangedImages || !ch.ImagesTruncated {
		t.Fatalf("changes: opened %d, %d images listed, truncated %v", ch.Opened, len(ch.Images), ch.ImagesTruncated)
	}
	ch, err = s.SetPackageMatches(ctx, rows[0].ID, nil, nil, t0.Add(2*time.Hour))
	must(t, err)
	if ch.Closed != n || !ch.ImagesTruncated {
		t.Fatalf("withdrawal: closed %d, truncated %v", ch.Closed, ch.ImagesTruncated)
	}
}
