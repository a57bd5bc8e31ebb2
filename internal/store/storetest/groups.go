package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// sharedBaseAdvisory matches base package b3 of SharedBase's images.
const sharedBaseAdvisory = "CVE-2026-3"

// SharedBase puts n images (hand-made; digests sha256:<prefix>-<i>) on
// one base layer of ten Debian packages (b0 to b9), each with a top
// layer of its own holding two PyPI packages, one its own and one all
// share: the shape of a fleet, where the lower layers' packages are most
// of an image's and many images hold them. Images are scanned a minute
// apart from at.
func SharedBase(t testing.TB, s store.Store, prefix string, n int, at time.Time) []string {
	t.Helper()
	layers := []string{"sha256:base", ""}
	var digests []string
	for i := range n {
		d := fmt.Sprintf("sha256:%s-%d", prefix, i)
		layers[1] = "sha256:top-" + d[7:]
		var pkgs []store.ImagePackage
		for b := range 10 {
			p := pkg("Debian:12", fmt.Sprint("b", b), "1.0", fmt.Sprint("b", b))
			p.Layer = layers[0]
			pkgs = append(pkgs, p)
		}
		for _, name := range []string{"own-" + d[7:], "shared"} {
			pkgs = append(pkgs, store.ImagePackage{Key: store.PackageKey{Ecosystem: "PyPI", Name: name, Version: "2.0"}, Name: name,
				Version: "2.0", Type: "python", PURL: "pkg:pypi/" + name + "@2.0", Path: "app/" + name, Layer: layers[1], LayerIndex: 1})
		}
		img := image(d, "r/"+prefix, at.Add(time.Duration(i)*time.Minute))
		img.Layers = slices.Clone(layers)
		if _, err := s.PutImage(ctx, img, pkgs); err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	return digests
}

// testSharedBase checks the answers about images sharing a base layer
// (which a store may link as a group): "affected by" page by page, each
// image's findings and their opening times, and an image whose packages
// change once stored.
func testSharedBase(t *testing.T, s store.Store) {
	t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	digests := SharedBase(t, s, "sb", 3, t0)
	if newest, err := s.NewestDigests(ctx, 2); err != nil || !slices.Equal(newest, []string{digests[2], digests[1]}) {
		t.Fatalf("NewestDigests(2) = %v, %v; want the last two stored, newest first", newest, err)
	}
	_, err := s.UpsertAdvisories(ctx, []store.Advisory{
		advisory(sharedBaseAdvisory, t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "b3", Spec: []byte("hand-made")}),
		advisory("PYSEC-2026-1", t0, nil, store.Affected{Ecosystem: "PyPI", Name: "shared", Spec: []byte("hand-made")}),
	})
	must(t, err)
	matchAll := func(eco, name, adv string, at time.Time) {
		rows, err := s.PackagesNamed(ctx, eco, name)
		must(t, err)
		var ups []store.MatchUpdate
		for _, r := range rows {
			ups = append(ups, store.MatchUpdate{PackageID: r.ID, Matches: []store.PackageMatch{{AdvisoryID: adv, FixedVersion: "9"}}})
		}
		_, err = s.SetMatches(ctx, ups, at)
		must(t, err)
	}
	t1 := t0.Add(time.Hour)
	matchAll("Debian:12", "b3", sharedBaseAdvisory, t1)
	matchAll("PyPI", "shared", "PYSEC-2026-1", t1)

	affected := func(adv string) []string {
		var got []string
		for off := 0; ; off += 2 {
			res, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: adv, Limit: 2, Offset: off})
			must(t, err)
			for _, r := range res.Rows {
				got = append(got, r.Digest)
			}
			if len(res.Rows) < 2 {
				if res.Total != len(got) || res.Images != len(got) {
					t.Fatalf("%s: total %d, images %d, rows %d", adv, res.Total, res.Images, len(got))
				}
				return got
			}
		}
	}
	for _, adv := range []string{sharedBaseAdvisory, "PYSEC-2026-1"} {
		if got := affected(adv); !slices.Equal(got, digests) {
			t.Fatalf("affected by %s: %v, want %v (oldest first)", adv, got, digests)
		}
	}
	openOf := func(d string) map[string]store.Finding {
		fs, err := s.ImageFindings(ctx, d)
		must(t, err)
		out := map[string]store.Finding{}
		for _, f := range fs {
			out[f.AdvisoryID] = f
		}
		return out
	}
	for _, d := range digests {
		if fs := openOf(d); len(fs) != 2 || !fs[sharedBaseAdvisory].OpenedAt.Equal(t1) || !fs[sharedBaseAdvisory].ClosedAt.IsZero() {
			t.Fatalf("%s findings: %+v", d, fs)
		}
	}

	// The second image loses b3 (a rescan with another analyser): its
	// finding is no longer open, its others keep their opening time, and
	// "affected by" no longer lists it.
	t2 := t1.Add(time.Hour)
	img := image(digests[1], "r/sb", t2)
	img.Layers = []string{"sha256:base", "sha256:top-" + digests[1][7:]}
	pkgs, err := s.ImagePackages(ctx, digests[1])
	must(t, err)
	pkgs = slices.DeleteFunc(pkgs, func(p store.ImagePackage) bool { return p.Key.Name == "b3" })
	_, err = s.PutImage(ctx, img, pkgs)
	must(t, err)
	fs := openOf(digests[1])
	if _, open := fs[sharedBaseAdvisory]; open {
		t.Fatalf("b3 removed: its finding is still open: %+v", fs)
	}
	if f := fs["PYSEC-2026-1"]; !f.OpenedAt.Equal(t1) || !f.ClosedAt.IsZero() {
		t.Fatalf("kept package: finding %+v", f)
	}
	if got, want := affected(sharedBaseAdvisory), []string{digests[0], digests[2]}; !slices.Equal(got, want) {
		t.Fatalf("affected after the change: %v, want %v", got, want)
	}
	if got := affected("PYSEC-2026-1"); !slices.Equal(got, digests) {
		t.Fatalf("affected by PYSEC-2026-1 after the change: %v", got)
	}
	// b3 comes back: a new link, its finding open again from now.
	t3 := t2.Add(time.Hour)
	img.ScannedAt = t3
	all, err := s.ImagePackages(ctx, digests[0])
	must(t, err)
	pkgs = append(pkgs, all[slices.IndexFunc(all, func(p store.ImagePackage) bool { return p.Key.Name == "b3" })])
	_, err = s.PutImage(ctx, img, pkgs)
	must(t, err)
	if f := openOf(digests[1])[sharedBaseAdvisory]; !f.OpenedAt.Equal(t3) || !f.ClosedAt.IsZero() {
		t.Fatalf("b3 back: finding %+v", f)
	}
	if got := affected(sharedBaseAdvisory); !slices.Equal(got, digests) {
		t.Fatalf("affected once b3 is back: %v", got)
	}
}
