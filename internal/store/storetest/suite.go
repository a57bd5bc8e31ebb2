package storetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// Factory returns an empty store for one test; the suite closes it.
type Factory func(t *testing.T) store.Store

// Run runs the whole suite.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"LayerCache", testLayerCache},
		{"LayerClaims", testLayerClaims},
		{"Advisories", testAdvisories},
		{"AffectedForReleaseless", testAffectedForReleaseless},
		{"ImagesAndTags", testImagesAndTags},
		{"MatchesOpenAndCloseFindings", testMatches},
		{"AffectedImages", testAffectedImages},
		{"SetMatchesBatch", testSetMatchesBatch},
		{"AdvisoryGeneration", testAdvisoryGeneration},
		{"FindingTrend", testFindingTrend},
		{"JobsQueue", testJobs},
		{"JobsConcurrentClaim", testJobsConcurrentClaim},
		{"JobsClaimOrder", testJobsClaimOrder},
		{"JobLeaseExpiry", testJobLeaseExpiry},
		{"Tokens", testTokens},
		{"Sessions", testSessions},
		{"AuditChain", testAudit},
		{"AuditConcurrentAppend", testAuditConcurrent},
		{"Deployments", testDeployments},
		{"Inventory", testInventory},
		{"Meta", testMeta},
		{"ChainIDs", testChainIDs},
		{"Builds", testBuilds},
		{"Promotions", testPromotions},
		{"StickyClosures", testStickyClosures},
		{"DataGeneration", testDataGeneration},
		{"RatingsAndExploits", testRatings},
		{"VEXDocuments", testVEXDocuments},
		{"ImageChecks", testImageChecks},
		{"LayerLists", testLayerLists},
		{"ConcurrentIngest", testConcurrentIngest},
		{"ConcurrentReindex", testConcurrentReindex},
		{"BadImageInBatch", testBadImageInBatch},
		{"ChangedImagesBound", testChangedImagesBound},
		{"SharedBase", testSharedBase},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
	t.Run("FindingsProperty", func(t *testing.T) { testFindingsProperty(t, newStore) })
}

var ctx = context.Background()

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testLayerCache(t *testing.T, s store.Store) {
	b, err := s.LoadLayerAnalysis(ctx, "sha256:aa")
	must(t, err)
	if b != nil {
		t.Fatalf("empty cache returned %q", b)
	}
	d, err := s.LayerDiffID(ctx, "sha256:gz1")
	must(t, err)
	if d != "" {
		t.Fatalf("an unverified blob has DiffID %q", d)
	}
	must(t, s.StoreLayerAnalysis(ctx, "sha256:gz1", "sha256:aa", []byte("one")))
	// The same content compressed another way: a second blob, one DiffID.
	must(t, s.StoreLayerAnalysis(ctx, "sha256:gz2", "sha256:aa", []byte("two")))
	b, err = s.LoadLayerAnalysis(ctx, "sha256:aa")
	must(t, err)
	if string(b) != "two" {
		t.Fatalf("got %q, want the replacement", b)
	}
	for _, blob := range []string{"sha256:gz1", "sha256:gz2"} {
		if d, err := s.LayerDiffID(ctx, blob); err != nil || d != "sha256:aa" {
			t.Fatalf("LayerDiffID(%s) = %q, %v", blob, d, err)
		}
	}
	n, err := s.LayerCount(ctx)
	must(t, err)
	if n != 1 {
		t.Fatalf("LayerCount = %d, want 1", n)
	}
}

func testLayerClaims(t *testing.T, s store.Store) {
	ok, err := s.ClaimLayer(ctx, "sha256:bb", "a", time.Minute)
	must(t, err)
	if !ok {
		t.Fatal("first claim refused")
	}
	ok, err = s.ClaimLayer(ctx, "sha256:bb", "b", time.Minute)
	must(t, err)
	if ok {
		t.Fatal("second owner took an unexpired claim")
	}
	ok, err = s.ClaimLayer(ctx, "sha256:bb", "a", time.Minute)
	must(t, err)
	if !ok {
		t.Fatal("owner could not renew its own claim")
	}
	must(t, s.ReleaseLayer(ctx, "sha256:bb", "a"))
	ok, err = s.ClaimLayer(ctx, "sha256:bb", "b", -time.Second)
	must(t, err)
	if !ok {
		t.Fatal("released claim not available")
	}
	// b's lease is already expired: c may take it.
	ok, err = s.ClaimLayer(ctx, "sha256:bb", "c", time.Minute)
	must(t, err)
	if !ok {
		t.Fatal("expired claim not taken over")
	}
}

func advisory(id string, mod time.Time, aliases []string, affected ...store.Affected) store.Advisory {
	return store.Advisory{
		ID: id, Modified: mod, Published: mod.Add(-time.Hour), Aliases: aliases,
		Summary: "summary of " + id, Severity: "HIGH", Score: 7.5, Source: "suite",
		Raw: []byte(fmt.Sprintf(`{"id":%q,"modified":%q}`, id, mod.Format(time.RFC3339))), Affected: affected,
	}
}

func testAdvisories(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	a := advisory("GHSA-aaaa", t0, []string{"CVE-2024-1"}, store.Affected{Ecosystem: "npm", Name: "left-pad", Spec: []byte("spec1")})
	b := advisory("GO-2024-1", t0, []string{"CVE-2024-1", "GHSA-aaaa"}, store.Affected{Ecosystem: "Go", Name: "stdlib", Spec: []byte("spec2")})
	res, err := s.UpsertAdvisories(ctx, []store.Advisory{a, b})
	must(t, err)
	if res.Added != 2 || res.Updated != 0 || len(res.Changed) != 2 {
		t.Fatalf("first upsert: %+v", res)
	}
	res, err = s.UpsertAdvisories(ctx, []store.Advisory{a})
	must(t, err)
	if res.Unchanged != 1 || len(res.Changed) != 0 || len(res.Packages) != 0 {
		t.Fatalf("unchanged upsert: %+v", res)
	}
	// A new version moves the advisory to another package: both the old
	// and the new package must be re-evaluated.
	a2 := advisory("GHSA-aaaa", t0.Add(time.Hour), []string{"CVE-2024-1"}, store.Affected{Ecosystem: "npm", Name: "right-pad", Spec: []byte("spec3")})
	res, err = s.UpsertAdvisories(ctx, []store.Advisory{a2})
	must(t, err)
	want := []store.PackageName{{Ecosystem: "npm", Name: "left-pad"}, {Ecosystem: "npm", Name: "right-pad"}}
	if res.Updated != 1 || !reflect.DeepEqual(res.Packages, want) {
		t.Fatalf("update: %+v, want packages %v", res, want)
	}
	got, err := s.Advisory(ctx, "GHSA-aaaa")
	must(t, err)
	if !got.Modified.Equal(a2.Modified) || len(got.Affected) != 1 || got.Affected[0].Name != "right-pad" || string(got.Raw) != string(a2.Raw) {
		t.Fatalf("stored advisory: %+v", got)
	}
	if _, err := s.Advisory(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing advisory: err = %v, want ErrNotFound", err)
	}
	ids, err := s.ResolveAdvisoryIDs(ctx, "CVE-2024-1")
	must(t, err)
	if !reflect.DeepEqual(ids, []string{"GHSA-aaaa", "GO-2024-1"}) {
		t.Fatalf("ResolveAdvisoryIDs(CVE) = %v", ids)
	}
	ids, err = s.ResolveAdvisoryIDs(ctx, "GO-2024-1")
	must(t, err)
	if !reflect.DeepEqual(ids, []string{"GO-2024-1"}) {
		t.Fatalf("ResolveAdvisoryIDs(own id) = %v", ids)
	}
	rows, err := s.AffectedFor(ctx, "npm", "left-pad")
	must(t, err)
	if len(rows) != 0 {
		t.Fatalf("old affected entry still returned: %+v", rows)
	}
	rows, err = s.AffectedFor(ctx, "Go", "stdlib")
	must(t, err)
	if len(rows) != 1 || rows[0].AdvisoryID != "GO-2024-1" || string(rows[0].Spec) != "spec2" || rows[0].Severity != "HIGH" {
		t.Fatalf("AffectedFor(Go, stdlib) = %+v", rows)
	}
	stats, err := s.AdvisoryStats(ctx)
	must(t, err)
	if len(stats) != 2 || stats[0].Ecosystem != "Go" || stats[0].Records != 1 || !reflect.DeepEqual(stats[0].Sources, []string{"suite"}) {
		t.Fatalf("AdvisoryStats = %+v", stats)
	}
	n, err := s.AdvisoryCount(ctx)
	must(t, err)
	if n != 2 {
		t.Fatalf("AdvisoryCount = %d", n)
	}
	f := store.Feed{Name: "go", Kind: "osv-zip", URL: "file:///x", Records: 2, LastAttempt: t0, LastSuccess: t0, Cursor: "etag"}
	must(t, s.PutFeed(ctx, f))
	f.LastError, f.LastAttempt = "boom", t0.Add(time.Hour)
	must(t, s.PutFeed(ctx, f))
	feeds, err := s.Feeds(ctx)
	must(t, err)
	if len(feeds) != 1 || feeds[0].LastError != "boom" || !feeds[0].LastSuccess.Equal(t0) || feeds[0].Cursor != "etag" {
		t.Fatalf("Feeds = %+v", feeds)
	}
}

func testAffectedForReleaseless(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	_, err := s.UpsertAdvisories(ctx, []store.Advisory{
		advisory("DEBIAN-1", t0, nil, store.Affected{Ecosystem: "Debian", Name: "openssl", Spec: []byte("any")}),
		advisory("DSA-1", t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "openssl", Spec: []byte("12")}),
		advisory("DSA-2", t0, nil, store.Affected{Ecosystem: "Debian:11", Name: "openssl", Spec: []byte("11")}),
	})
	must(t, err)
	rows, err := s.AffectedFor(ctx, "Debian:12", "openssl")
	must(t, err)
	var ids []string
	for _, r := range rows {
		ids = append(ids, r.AdvisoryID)
	}
	if !reflect.DeepEqual(ids, []string{"DEBIAN-1", "DSA-1"}) {
		t.Fatalf("AffectedFor(Debian:12) = %v, want the release-less and the Debian:12 entries", ids)
	}
}

func image(digest, repo string, at time.Time) store.Image {
	return store.Image{
		Digest: digest, Repository: repo, MediaType: "application/vnd.oci.image.manifest.v1+json",
		Platform: "linux/amd64", OS: "Debian GNU/Linux 12", Ecosystem: "Debian:12", Layers: []string{"sha256:l1"},
		Inventory: []byte("inv-" + digest), ScannedAt: at, Labels: map[string]string{"a": "b"},
	}
}

func pkg(eco, name, version, bin string) store.ImagePackage {
	return store.ImagePackage{
		Key: store.PackageKey{Ecosystem: eco, Name: name, Version: version}, Name: bin, Version: version,
		Type: "deb", PURL: "pkg:deb/debian/" + bin + "@" + version, Path: "var/lib/dpkg/status", Layer: "sha256:l1",
	}
}

func testImagesAndTags(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	fresh, err := s.PutImage(ctx, image("sha256:i1", "r/app", t0), []store.ImagePackage{
		pkg("Debian:12", "openssl", "3.0.1", "libssl3"), pkg("Debian:12", "openssl", "3.0.1", "openssl"), pkg("Debian:12", "zlib", "1.2", "zlib1g"),
	})
	must(t, err)
	if len(fresh) != 2 {
		t.Fatalf("PutImage returned %d unmatched packages, want 2 distinct keys", len(fresh))
	}
	must2(t, s.SetPackageMatches, fresh[0].ID)
	// The same keys from a second image are no longer "never matched"
	// for the one that was matched.
	fresh2, err := s.PutImage(ctx, image("sha256:i2", "r/app", t0.Add(time.Hour)), []store.ImagePackage{pkg("Debian:12", "openssl", "3.0.1", "libssl3"), pkg("Debian:12", "zlib", "1.2", "zlib1g")})
	must(t, err)
	if len(fresh2) != 1 {
		t.Fatalf("second image: %d unmatched, want 1", len(fresh2))
	}
	img, err := s.Image(ctx, "sha256:i1")
	must(t, err)
	if string(img.Inventory) != "inv-sha256:i1" || img.Labels["a"] != "b" || !reflect.DeepEqual(img.Layers, []string{"sha256:l1"}) || !img.ScannedAt.Equal(t0) {
		t.Fatalf("Image = %+v", img)
	}
	if _, err := s.Image(ctx, "sha256:none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing image err = %v", err)
	}
	has, err := s.HasImage(ctx, "sha256:i2")
	must(t, err)
	if !has {
		t.Fatal("HasImage false")
	}
	pk, err := s.ImagePackages(ctx, "sha256:i1")
	must(t, err)
	if len(pk) != 3 || pk[0].Name != "libssl3" || pk[0].Key.Name != "openssl" {
		t.Fatalf("ImagePackages = %+v", pk)
	}
	must(t, s.PutTag(ctx, store.TagEvent{Repository: "r/app", Tag: "1", Digest: "sha256:i1", At: t0}))
	must(t, s.PutTag(ctx, store.TagEvent{Repository: "r/app", Tag: "1", Digest: "sha256:i1", At: t0.Add(time.Minute)}))
	must(t, s.PutTag(ctx, store.TagEvent{Repository: "r/app", Tag: "1", Digest: "sha256:i2", At: t0.Add(time.Hour)}))
	must(t, s.PutTag(ctx, store.TagEvent{Repository: "r/app", Tag: "1.0.0", Digest: "sha256:i1", At: t0}))
	tags, err := s.Tags(ctx, "r/app")
	must(t, err)
	if len(tags) != 2 || tags[0].Tag != "1" || tags[0].Digest != "sha256:i2" {
		t.Fatalf("Tags = %+v", tags)
	}
	hist, err := s.TagHistory(ctx, "r/app", "1")
	must(t, err)
	if len(hist) != 2 || hist[0].Digest != "sha256:i2" || hist[1].Digest != "sha256:i1" {
		t.Fatalf("TagHistory = %+v (an unchanged re-tag must not add history)", hist)
	}
	must(t, s.DeleteTag(ctx, "r/app", "1.0.0", t0.Add(2*time.Hour)))
	tags, err = s.Tags(ctx, "")
	must(t, err)
	if len(tags) != 1 {
		t.Fatalf("after delete, Tags = %+v", tags)
	}
	sums, err := s.Images(ctx, store.ImageFilter{})
	must(t, err)
	if len(sums) != 2 || sums[0].Digest != "sha256:i2" || sums[0].Packages != 2 || !reflect.DeepEqual(sums[0].Tags, []string{"1"}) {
		t.Fatalf("Images = %+v", sums)
	}
	n, err := s.ImageCount(ctx)
	must(t, err)
	if n != 2 {
		t.Fatalf("ImageCount = %d", n)
	}
}

// must2 records an empty match set, marking a package as matched.
func must2(t *testing.T, set func(context.Context, int64, []store.PackageMatch, map[string]string, time.Time) (store.FindingChanges, error), id int64) {
	t.Helper()
	if _, err := set(ctx, id, nil, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func seedFindings(t *testing.T, s store.Store, t0 time.Time) (opensslID int64) {
	t.Helper()
	_, err := s.UpsertAdvisories(ctx, []store.Advisory{
		advisory("CVE-2024-1", t0, []string{"DSA-1"}, store.Affected{Ecosystem: "Debian:12", Name: "openssl", Spec: []byte("x")}),
		advisory("CVE-2024-2", t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "openssl", Spec: []byte("y")}),
	})
	must(t, err)
	fresh, err := s.PutImage(ctx, image("sha256:a", "r/a", t0), []store.ImagePackage{pkg("Debian:12", "openssl", "3.0.1", "libssl3"), pkg("Debian:12", "zlib", "1.2", "zlib1g")})
	must(t, err)
	_, err = s.PutImage(ctx, image("sha256:b", "r/b", t0), []store.ImagePackage{pkg("Debian:12", "openssl", "3.0.1", "openssl")})
	must(t, err)
	for _, p := range fresh {
		if p.Name == "openssl" {
			opensslID = p.ID
		}
	}
	if opensslID == 0 {
		t.Fatal("openssl key not returned as unmatched")
	}
	return opensslID
}

func testMatches(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)
	id := seedFindings(t, s, t0)
	ch, err := s.SetPackageMatches(ctx, id, []store.PackageMatch{{AdvisoryID: "CVE-2024-1", FixedVersion: "3.0.2"}, {AdvisoryID: "CVE-2024-2"}}, nil, t0.Add(time.Hour))
	must(t, err)
	// Two images, two advisories: four findings, two with a fix.
	if ch.Opened != 4 || ch.OpenedFixable != 2 || ch.Closed != 0 || !reflect.DeepEqual(ch.Images, []string{"sha256:a", "sha256:b"}) {
		t.Fatalf("first match: %+v", ch)
	}
	fs, err := s.ImageFindings(ctx, "sha256:a")
	must(t, err)
	if len(fs) != 2 || fs[0].AdvisoryID != "CVE-2024-1" || fs[0].FixedVersion != "3.0.2" || fs[0].Package.Name != "libssl3" ||
		!reflect.DeepEqual(fs[0].Aliases, []string{"DSA-1"}) || !fs[0].OpenedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("ImageFindings = %+v", fs)
	}
	// An advisory revised upstream shows its new text and aliases at once
	// (what findings show of an advisory may be cached, never stale).
	revised := advisory("CVE-2024-1", t0.Add(30*time.Minute), []string{"DSA-1", "DSA-1b"},
		store.Affected{Ecosystem: "Debian:12", Name: "openssl", Spec: []byte("x")})
	revised.Summary = "revised summary"
	_, err = s.UpsertAdvisories(ctx, []store.Advisory{revised})
	must(t, err)
	fs, err = s.ImageFindings(ctx, "sha256:a")
	must(t, err)
	if len(fs) != 2 || fs[0].Summary != "revised summary" || !reflect.DeepEqual(fs[0].Aliases, []string{"DSA-1", "DSA-1b"}) {
		t.Fatalf("ImageFindings after a revision = %+v", fs)
	}
	// Same matches again: nothing changes.
	ch, err = s.SetPackageMatches(ctx, id, []store.PackageMatch{{AdvisoryID: "CVE-2024-1", FixedVersion: "3.0.2"}, {AdvisoryID: "CVE-2024-2"}}, nil, t0.Add(2*time.Hour))
	must(t, err)
	if ch.Opened != 0 || ch.Closed != 0 {
		t.Fatalf("idempotent match changed findings: %+v", ch)
	}
	// CVE-2024-2 is withdrawn: closed with that reason.
	ch, err = s.SetPackageMatches(ctx, id, []store.PackageMatch{{AdvisoryID: "CVE-2024-1", FixedVersion: "3.0.2"}},
		map[string]string{"CVE-2024-2": "advisory withdrawn"}, t0.Add(3*time.Hour))
	must(t, err)
	if ch.Closed != 2 || ch.Opened != 0 {
		t.Fatalf("withdrawal: %+v", ch)
	}
	pm, err := s.PackageMatches(ctx, id)
	must(t, err)
	if len(pm) != 1 || pm[0].AdvisoryID != "CVE-2024-1" {
		t.Fatalf("PackageMatches = %+v", pm)
	}
	// A new image holding the package gets the current findings at once.
	_, err = s.PutImage(ctx, image("sha256:c", "r/c", t0.Add(4*time.Hour)), []store.ImagePackage{pkg("Debian:12", "openssl", "3.0.1", "libssl3")})
	must(t, err)
	fs, err = s.ImageFindings(ctx, "sha256:c")
	must(t, err)
	if len(fs) != 1 || fs[0].AdvisoryID != "CVE-2024-1" {
		t.Fatalf("new image findings = %+v", fs)
	}
	// Rescanning an image without the package closes its findings.
	_, err = s.PutImage(ctx, image("sha256:c", "r/c", t0.Add(5*time.Hour)), []store.ImagePackage{pkg("Debian:12", "zlib", "1.2", "zlib1g")})
	must(t, err)
	fs, err = s.ImageFindings(ctx, "sha256:c")
	must(t, err)
	if len(fs) != 0 {
		t.Fatalf("findings of removed package still open: %+v", fs)
	}
	sums, err := s.Images(ctx, store.ImageFilter{Repository: "r/a"})
	must(t, err)
	if len(sums) != 1 || sums[0].Open["HIGH"] != 1 || sums[0].Fixable["HIGH"] != 1 {
		t.Fatalf("summary counts = %+v", sums)
	}
	rows, err := s.PackagesNamed(ctx, "Debian", "openssl")
	must(t, err)
	if len(rows) != 1 || rows[0].ID != id {
		t.Fatalf("PackagesNamed(Debian) = %+v", rows)
	}
	rows, err = s.PackagesNamed(ctx, "Debian:11", "openssl")
	must(t, err)
	if len(rows) != 0 {
		t.Fatalf("PackagesNamed(Debian:11) = %+v", rows)
	}
	// Two binaries at many paths, interleaved: the findings are sorted by
	// binary and keep the image's order for the rows they tie on (an
	// answer does not change from call to call).
	var copies []store.ImagePackage
	for i := range 20 {
		for _, bin := range []string{"libssl3", "aaa"} {
			p := pkg("Debian:12", "openssl", "3.0.1", bin)
			p.Path = fmt.Sprintf("opt/copy-%02d/status", 19-i)
			copies = append(copies, p)
		}
	}
	_, err = s.PutImage(ctx, image("sha256:copies", "r/copies", t0.Add(6*time.Hour)), copies)
	must(t, err)
	fs, err = s.ImageFindings(ctx, "sha256:copies")
	must(t, err)
	want := slices.Clone(copies)
	slices.SortStableFunc(want, func(a, b store.ImagePackage) int { return strings.Compare(a.Name, b.Name) })
	if len(fs) != len(want) {
		t.Fatalf("findings of copies = %d, want %d", len(fs), len(want))
	}
	for i, f := range fs {
		if f.Package.Name != want[i].Name || f.Package.Path != want[i].Path || f.AdvisoryID != "CVE-2024-1" {
			t.Fatalf("finding %d of copies: %s in %s at %s, want %s at %s", i, f.AdvisoryID, f.Package.Name, f.Package.Path, want[i].Name, want[i].Path)
		}
	}
}

func testAffectedImages(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	id := seedFindings(t, s, t0)
	_, err := s.SetPackageMatches(ctx, id, []store.PackageMatch{{AdvisoryID: "CVE-2024-1", FixedVersion: "3.0.2"}}, nil, t0)
	must(t, err)
	must(t, s.PutTag(ctx, store.TagEvent{Repository: "r/a", Tag: "prod", Digest: "sha256:a", At: t0}))
	must(t, s.PutDeployment(ctx, store.Deployment{Environment: "prod", Repository: "r/a", Digest: "sha256:a", Since: t0, By: "suite"}))
	for _, q := range []string{"CVE-2024-1", "DSA-1"} {
		got, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: q})
		must(t, err)
		r := got.Rows
		if got.Images != 2 || got.Total != 2 || len(r) != 2 || r[0].Digest != "sha256:a" || r[0].Repository != "r/a" || r[0].FixedVersion != "3.0.2" ||
			!reflect.DeepEqual(r[0].Environments, []string{"prod"}) || !reflect.DeepEqual(r[0].Tags, []string{"prod"}) || r[1].Digest != "sha256:b" ||
			r[0].Package.Key.Name != "openssl" {
			t.Fatalf("AffectedImages(%s) = %+v", q, got)
		}
	}
	// Tags and deployments made after a first answer show in the next.
	must(t, s.PutTag(ctx, store.TagEvent{Repository: "r/b", Tag: "1.0", Digest: "sha256:b", At: t0}))
	must(t, s.PutDeployment(ctx, store.Deployment{Environment: "staging", Repository: "r/b", Digest: "sha256:b", Since: t0, By: "suite"}))
	got, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: "CVE-2024-1"})
	must(t, err)
	if !reflect.DeepEqual(got.Rows[1].Tags, []string{"1.0"}) || !reflect.DeepEqual(got.Rows[1].Environments, []string{"staging"}) {
		t.Fatalf("stale names: %+v", got.Rows[1])
	}
	page, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: "CVE-2024-1", Limit: 1, Offset: 1})
	must(t, err)
	if page.Total != 2 || page.Images != 2 || len(page.Rows) != 1 || page.Rows[0].Digest != "sha256:b" {
		t.Fatalf("page = %+v", page)
	}
	got, err = s.AffectedImages(ctx, store.AffectedQuery{Advisory: "CVE-0000-0"})
	must(t, err)
	if got.Total != 0 {
		t.Fatalf("unknown advisory matched %+v", got)
	}
	got, err = s.AffectedImages(ctx, store.AffectedQuery{Package: "zlib1g"})
	must(t, err)
	if got.Images != 1 || got.Rows[0].Digest != "sha256:a" || got.Rows[0].Package.Name != "zlib1g" {
		t.Fatalf("AffectedImages(package zlib1g) = %+v", got)
	}
	got, err = s.AffectedImages(ctx, store.AffectedQuery{Package: "openssl", Ecosystem: "Debian", Version: "3.0.1"})
	must(t, err)
	if got.Images != 2 {
		t.Fatalf("AffectedImages(openssl 3.0.1) = %+v", got)
	}
	got, err = s.AffectedImages(ctx, store.AffectedQuery{Package: "openssl", Version: "9.9"})
	must(t, err)
	if got.Images != 0 {
		t.Fatalf("AffectedImages(openssl 9.9) = %+v", got)
	}
}

func testFindingTrend(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	id := seedFindings(t, s, t0)
	must(t, s.PutTag(ctx, store.TagEvent{Repository: "r/a", Tag: "latest", Digest: "sha256:a", At: t0}))
	_, err := s.SetPackageMatches(ctx, id, []store.PackageMatch{{AdvisoryID: "CVE-2024-1", FixedVersion: "3.0.2"}, {AdvisoryID: "CVE-2024-2"}}, nil, t0.Add(24*time.Hour))
	must(t, err)
	_, err = s.SetPackageMatches(ctx, id, []store.PackageMatch{{AdvisoryID: "CVE-2024-1", FixedVersion: "3.0.2"}}, nil, t0.Add(72*time.Hour))
	must(t, err)
	pts, err := s.FindingTrend(ctx, t0, t0.Add(96*time.Hour), 24*time.Hour)
	must(t, err)
	var open, fixable []int
	for _, p := range pts {
		open, fixable = append(open, p.Open), append(fixable, p.Fixable)
	}
	// Only the tagged image (sha256:a) counts; sha256:b is untagged.
	if !reflect.DeepEqual(open, []int{0, 2, 2, 1, 1}) || !reflect.DeepEqual(fixable, []int{0, 1, 1, 1, 1}) {
		t.Fatalf("trend open=%v fixable=%v", open, fixable)
	}
}

func testJobs(t *testing.T, s store.Store) {
	id, added, err := s.EnqueueJob(ctx, "scan", "scan:sha256:a", []byte(`{"d":1}`))
	must(t, err)
	if !added {
		t.Fatal("first enqueue not added")
	}
	id2, added, err := s.EnqueueJob(ctx, "scan", "scan:sha256:a", nil)
	must(t, err)
	if added || id2 != id {
		t.Fatalf("duplicate enqueue: added=%v id=%d want %d", added, id2, id)
	}
	j, err := s.ClaimJob(ctx, "w1", []string{"sync"}, time.Minute)
	must(t, err)
	if j != nil {
		t.Fatalf("claimed a job of another kind: %+v", j)
	}
	j, err = s.ClaimJob(ctx, "w1", []string{"scan", "sync"}, time.Minute)
	must(t, err)
	if j == nil || j.ID != id || j.State != store.JobRunning || j.Owner != "w1" || string(j.Payload) != `{"d":1}` || j.Attempts != 1 {
		t.Fatalf("claimed %+v", j)
	}
	// While it runs, the same key is still deduplicated.
	if _, added, _ := s.EnqueueJob(ctx, "scan", "scan:sha256:a", nil); added {
		t.Fatal("enqueue of a running key was added")
	}
	if err := s.ExtendJob(ctx, id, "w2", time.Minute, 1, 2, "x"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("extend by non-owner: %v", err)
	}
	must(t, s.ExtendJob(ctx, id, "w1", time.Minute, 1, 2, "half"))
	// A retry waits its backoff: not claimed before it ends.
	must(t, s.FinishJob(ctx, id, "w1", "transient", true, 2*time.Second))
	if j, err := s.ClaimJob(ctx, "w1", []string{"scan"}, time.Minute); err != nil || j != nil {
		t.Fatalf("a job was claimed during its backoff: %+v %v", j, err)
	}
	got, err := s.JobByID(ctx, id)
	must(t, err)
	if got.State != store.JobPending || got.Error != "transient" || got.Done != 1 || got.Total != 2 {
		t.Fatalf("after retryable failure: %+v", got)
	}
	// Once the backoff is over, it is claimed again.
	for j = nil; j == nil; {
		j, err = s.ClaimJob(ctx, "w1", []string{"scan"}, time.Minute)
		must(t, err)
		time.Sleep(50 * time.Millisecond)
	}
	must(t, s.FinishJob(ctx, j.ID, "w1", "", false, 0))
	got, _ = s.JobByID(ctx, id)
	if got.State != store.JobDone || got.Attempts != 2 {
		t.Fatalf("after success: %+v", got)
	}
	// Done: the key may be enqueued again.
	_, added, err = s.EnqueueJob(ctx, "scan", "scan:sha256:a", nil)
	must(t, err)
	if !added {
		t.Fatal("re-enqueue after completion refused")
	}
	jobs, err := s.Jobs(ctx, 10)
	must(t, err)
	if len(jobs) != 2 || jobs[0].ID <= jobs[1].ID {
		t.Fatalf("Jobs = %+v", jobs)
	}
	if _, err := s.JobByID(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

// testJobsClaimOrder: a job whose runner's lease ran out is claimed
// first, then pending jobs oldest first, each of the kinds asked only;
// a finished job is not claimed again.
func testJobsClaimOrder(t *testing.T, s store.Store) {
	var ids []int64
	for i, kind := range []string{"scan", "sync", "scan", "scan", "sync"} {
		id, _, err := s.EnqueueJob(ctx, kind, fmt.Sprint("order-", i), nil)
		must(t, err)
		ids = append(ids, id)
	}
	claim := func(kinds ...string) int64 {
		t.Helper()
		j, err := s.ClaimJob(ctx, "w", kinds, time.Minute)
		must(t, err)
		if j == nil {
			return 0
		}
		return j.ID
	}
	// The first scan job's runner holds it for no time: its lease has run
	// out when the next claim comes.
	j, err := s.ClaimJob(ctx, "gone", []string{"scan"}, -time.Second)
	must(t, err)
	if j == nil || j.ID != ids[0] {
		t.Fatalf("first claim %+v, want job %d", j, ids[0])
	}
	var got []int64
	for id := claim("scan"); id != 0; id = claim("scan") {
		got = append(got, id)
		if len(got) == 1 {
			must(t, s.FinishJob(ctx, id, "w", "", false, 0))
		}
	}
	if want := []int64{ids[0], ids[2], ids[3]}; !slices.Equal(got, want) {
		t.Fatalf("scan jobs claimed %v, want %v", got, want)
	}
	if got := []int64{claim("sync", "scan"), claim("sync"), claim("sync")}; !slices.Equal(got, []int64{ids[1], ids[4], 0}) {
		t.Fatalf("sync jobs claimed %v, want %v", got, []int64{ids[1], ids[4], 0})
	}
}

func testJobsConcurrentClaim(t *testing.T, s store.Store) {
	const n = 40
	for i := 0; i < n; i++ {
		if _, _, err := s.EnqueueJob(ctx, "scan", fmt.Sprintf("k%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[int64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(owner string) {
			defer wg.Done()
			for {
				j, err := s.ClaimJob(ctx, owner, []string{"scan"}, time.Minute)
				if err != nil {
					errs <- err
					return
				}
				if j == nil {
					return
				}
				mu.Lock()
				if prev, dup := claimed[j.ID]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("job %d claimed by %s and %s", j.ID, prev, owner)
					return
				}
				claimed[j.ID] = owner
				mu.Unlock()
				if err := s.FinishJob(ctx, j.ID, owner, "", false, 0); err != nil {
					errs <- err
					return
				}
			}
		}(fmt.Sprintf("w%d", w))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(claimed) != n {
		t.Fatalf("claimed %d jobs, want %d", len(claimed), n)
	}
}

func testJobLeaseExpiry(t *testing.T, s store.Store) {
	id, _, err := s.EnqueueJob(ctx, "scan", "lease", nil)
	must(t, err)
	j, err := s.ClaimJob(ctx, "dead", []string{"scan"}, -time.Second)
	must(t, err)
	if j == nil || j.ID != id {
		t.Fatalf("claim = %+v", j)
	}
	j, err = s.ClaimJob(ctx, "alive", []string{"scan"}, time.Minute)
	must(t, err)
	if j == nil || j.ID != id || j.Owner != "alive" || j.Attempts != 2 {
		t.Fatalf("expired lease not reclaimed: %+v", j)
	}
	if err := s.FinishJob(ctx, id, "dead", "", false, 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the dead owner finished a job it lost: %v", err)
	}
	must(t, s.FinishJob(ctx, id, "alive", "fatal", false, 0))
	got, _ := s.JobByID(ctx, id)
	if got.State != store.JobFailed {
		t.Fatalf("state = %s", got.State)
	}
}

func testTokens(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	tok := store.Token{ID: "t1", Name: "ci", Role: store.RoleDeveloper, Hash: []byte{1, 2, 3}, CreatedAt: t0}
	must(t, s.CreateToken(ctx, tok))
	if err := s.CreateToken(ctx, tok); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate token: %v", err)
	}
	got, err := s.TokenByHash(ctx, []byte{1, 2, 3})
	must(t, err)
	if got.ID != "t1" || got.Role != store.RoleDeveloper || !got.CreatedAt.Equal(t0) {
		t.Fatalf("TokenByHash = %+v", got)
	}
	if _, err := s.TokenByHash(ctx, []byte{9}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	must(t, s.TouchToken(ctx, "t1", t0.Add(time.Hour)))
	must(t, s.RevokeToken(ctx, "t1", t0.Add(2*time.Hour)))
	if err := s.RevokeToken(ctx, "t1", t0.Add(3*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	list, err := s.ListTokens(ctx)
	must(t, err)
	if len(list) != 1 || !list[0].RevokedAt.Equal(t0.Add(2*time.Hour)) || !list[0].LastUsed.Equal(t0.Add(time.Hour)) {
		t.Fatalf("ListTokens = %+v", list)
	}
}

func testAudit(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		ev, err := s.AppendAudit(ctx, store.AuditEvent{At: t0.Add(time.Duration(i) * time.Minute), Actor: "alice", Action: "promote", Subject: fmt.Sprintf("img%d", i), Details: []byte(`{"env":"prod"}`)})
		must(t, err)
		if ev.Seq != int64(i+1) || ev.Hash == "" {
			t.Fatalf("append %d: %+v", i, ev)
		}
	}
	evs, err := s.AuditEvents(ctx, 0, 100)
	must(t, err)
	if len(evs) != 5 {
		t.Fatalf("AuditEvents = %d", len(evs))
	}
	if _, _, err := store.VerifyAuditChain("", 0, evs); err != nil {
		t.Fatalf("fresh chain does not verify: %v", err)
	}
	tail, err := s.AuditEvents(ctx, 3, 100)
	must(t, err)
	if len(tail) != 2 || tail[0].Seq != 4 {
		t.Fatalf("AuditEvents(after 3) = %+v", tail)
	}
	tampered := append([]store.AuditEvent(nil), evs...)
	tampered[2].Actor = "mallory"
	var cb *store.ChainBreak
	if _, _, err := store.VerifyAuditChain("", 0, tampered); !errors.As(err, &cb) || cb.Seq != 3 {
		t.Fatalf("edited event not detected: %v", err)
	}
	// The database itself refuses edits.
	if err := tamperAudit(s); err == nil {
		t.Fatal("the store let the audit log be edited")
	}
}

// tamperAudit tries to edit the audit log with SQL, as someone with
// database access would.
func tamperAudit(s store.Store) error {
	db, ok := s.(interface{ SQL() *sql.DB })
	if !ok {
		return errors.New("store has no SQL handle")
	}
	_, err := db.SQL().ExecContext(ctx, `UPDATE audit_log SET actor = 'mallory' WHERE seq = 1`)
	return err
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if _, err := s.AppendAudit(ctx, store.AuditEvent{Actor: "a", Action: "x", Subject: fmt.Sprint(i)}); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs, err := s.AuditEvents(ctx, 0, 100)
	must(t, err)
	if len(evs) != 40 {
		t.Fatalf("%d events, want 40", len(evs))
	}
	if _, _, err := store.VerifyAuditChain("", 0, evs); err != nil {
		t.Fatalf("concurrent appends broke the chain: %v", err)
	}
}

func testDeployments(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC)
	for i, d := range []store.Deployment{
		{Environment: "prod", Repository: "r/a", Digest: "sha256:1", Since: t0, By: "x"},
		{Environment: "prod", Repository: "r/a", Digest: "sha256:2", Since: t0.Add(time.Hour), By: "y"},
		{Environment: "dev", Repository: "r/a", Digest: "sha256:3", Since: t0, By: "z"},
	} {
		if err := s.PutDeployment(ctx, d); err != nil {
			t.Fatalf("deployment %d: %v", i, err)
		}
	}
	cur, err := s.CurrentDeployments(ctx, "")
	must(t, err)
	sort.Slice(cur, func(i, j int) bool { return cur[i].Environment < cur[j].Environment })
	if len(cur) != 2 || cur[0].Digest != "sha256:3" || cur[1].Digest != "sha256:2" || cur[1].By != "y" {
		t.Fatalf("CurrentDeployments = %+v", cur)
	}
	cur, err = s.CurrentDeployments(ctx, "prod")
	must(t, err)
	if len(cur) != 1 || cur[0].Digest != "sha256:2" {
		t.Fatalf("CurrentDeployments(prod) = %+v", cur)
	}
	hist, err := s.DeploymentHistory(ctx, "prod", "r/a")
	must(t, err)
	if len(hist) != 2 || hist[0].Digest != "sha256:2" || !hist[1].Since.Equal(t0) {
		t.Fatalf("DeploymentHistory = %+v", hist)
	}
	// One digest's: its record, and where a cluster runs it.
	_, _, err = s.SyncRunning(ctx, "c1", []store.Running{{Namespace: "qa", Workload: "Deployment/a", Container: "a",
		Environment: "qa", Repository: "r/a", Digest: "sha256:2", Pods: 1}}, t0.Add(2*time.Hour))
	must(t, err)
	of, err := s.CurrentDeploymentsOf(ctx, "sha256:2")
	must(t, err)
	if len(of) != 2 || of[0].Environment != "prod" || of[1].Environment != "qa" || of[1].By != "cluster:c1" {
		t.Fatalf("CurrentDeploymentsOf(sha256:2) = %+v", of)
	}
	// The same rows as every current deployment has for it.
	all, err := s.CurrentDeployments(ctx, "")
	must(t, err)
	var want []store.Deployment
	for _, d := range all {
		if d.Digest == "sha256:2" {
			want = append(want, d)
		}
	}
	if !reflect.DeepEqual(of, want) {
		t.Fatalf("CurrentDeploymentsOf(sha256:2) = %+v, among all %+v", of, want)
	}
	if of, err = s.CurrentDeploymentsOf(ctx, "sha256:1"); err != nil || len(of) != 0 {
		t.Fatalf("CurrentDeploymentsOf a replaced digest = %+v, %v", of, err)
	}
}

func testInventory(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC)
	shop := store.Running{Namespace: "shop-prod", Workload: "Deployment/shop", Container: "app", Environment: "prod", Repository: "r/shop", Digest: "sha256:1"}
	side := store.Running{Namespace: "shop-prod", Workload: "Deployment/shop", Container: "proxy", Environment: "prod", Repository: "r/proxy", Digest: "sha256:2"}
	gen := func() string {
		g, err := s.DataGeneration(ctx)
		must(t, err)
		return g
	}
	g0 := gen()
	// Two pods of shop, one of them with its sidecar.
	started, stopped, err := s.SyncRunning(ctx, "main", []store.Running{shop, shop, side}, t0)
	must(t, err)
	if started != 2 || stopped != 0 || gen() == g0 {
		t.Fatalf("first sync: %d started, %d stopped", started, stopped)
	}
	rows, err := s.RunningImages(ctx, store.RunningQuery{Environment: "prod"})
	must(t, err)
	if len(rows) != 2 || rows[0].Pods+rows[1].Pods != 3 || !rows[0].Since.Equal(t0) || rows[0].Cluster != "main" {
		t.Fatalf("running: %+v", rows)
	}
	// Seen again, unchanged: nothing starts, the generation stays.
	g1 := gen()
	started, stopped, err = s.SyncRunning(ctx, "main", []store.Running{shop, side}, t0.Add(time.Minute))
	must(t, err)
	if started != 0 || stopped != 0 || gen() != g1 {
		t.Fatalf("same sync: %d started, %d stopped", started, stopped)
	}
	// A new digest of shop replaces the old; another cluster is apart.
	shop2 := shop
	shop2.Digest = "sha256:3"
	_, _, err = s.SyncRunning(ctx, "other", []store.Running{shop}, t0)
	must(t, err)
	started, stopped, err = s.SyncRunning(ctx, "main", []store.Running{shop2, side}, t0.Add(time.Hour))
	must(t, err)
	if started != 1 || stopped != 1 {
		t.Fatalf("new digest: %d started, %d stopped", started, stopped)
	}
	all, err := s.RunningImages(ctx, store.RunningQuery{Cluster: "main", Stopped: true})
	must(t, err)
	var old store.Running
	for _, r := range all {
		if r.Digest == "sha256:1" {
			old = r
		}
	}
	if len(all) != 3 || !old.StoppedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("after the new digest: %+v", all)
	}
	// The inventory is part of the deployments, once per digest.
	cur, err := s.CurrentDeployments(ctx, "prod")
	must(t, err)
	got := map[string]string{}
	for _, d := range cur {
		got[d.Digest] = d.By
	}
	if got["sha256:3"] != "cluster:main" || got["sha256:1"] != "cluster:other" || got["sha256:2"] != "cluster:main" || len(cur) != 3 {
		t.Fatalf("deployments with the inventory: %+v", cur)
	}
	// Everything stops; a digest that comes back starts again.
	_, stopped, err = s.SyncRunning(ctx, "main", nil, t0.Add(2*time.Hour))
	must(t, err)
	if stopped != 2 {
		t.Fatalf("empty sync stopped %d", stopped)
	}
	started, _, err = s.SyncRunning(ctx, "main", []store.Running{shop2}, t0.Add(3*time.Hour))
	must(t, err)
	back, err := s.RunningImages(ctx, store.RunningQuery{Cluster: "main", Digest: "sha256:3"})
	must(t, err)
	if started != 1 || len(back) != 1 || !back[0].Since.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("back: %d started, %+v", started, back)
	}
}

func testMeta(t *testing.T, s store.Store) {
	v, err := s.GetMeta(ctx, "k")
	must(t, err)
	if v != "" {
		t.Fatalf("unset meta = %q", v)
	}
	must(t, s.SetMeta(ctx, "k", "1"))
	must(t, s.SetMeta(ctx, "k", "2"))
	v, err = s.GetMeta(ctx, "k")
	must(t, err)
	if v != "2" {
		t.Fatalf("meta = %q", v)
	}
}

func testSetMatchesBatch(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 5, 2, 0, 0, 0, 0, time.UTC)
	fresh, err := s.PutImage(ctx, image("sha256:m", "r/m", t0), []store.ImagePackage{
		pkg("Debian:12", "openssl", "3.0.1", "libssl3"), pkg("Debian:12", "zlib", "1.2", "zlib1g"), pkg("Debian:12", "glibc", "2.36", "libc6"),
	})
	must(t, err)
	_, err = s.UpsertAdvisories(ctx, []store.Advisory{
		advisory("CVE-2024-10", t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "openssl", Spec: []byte("x")}),
		advisory("CVE-2024-11", t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "zlib", Spec: []byte("x")}),
		advisory("CVE-2024-12", t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "zlib", Spec: []byte("x")}),
	})
	must(t, err)
	ids := map[string]int64{}
	for _, p := range fresh {
		ids[p.Name] = p.ID
	}
	ch, err := s.SetMatches(ctx, []store.MatchUpdate{
		{PackageID: ids["openssl"], Matches: []store.PackageMatch{{AdvisoryID: "CVE-2024-10", FixedVersion: "3.0.2"}}},
		{PackageID: ids["zlib"], Matches: []store.PackageMatch{{AdvisoryID: "CVE-2024-11"}, {AdvisoryID: "CVE-2024-12", FixedVersion: "1.3"}}},
		{PackageID: ids["glibc"]},
	}, t0)
	must(t, err)
	if ch.Opened != 3 || !reflect.DeepEqual(ch.Images, []string{"sha256:m"}) {
		t.Fatalf("batch: %+v", ch)
	}
	// Every package is now matched: a second image holding them brings
	// no "never matched" rows.
	again, err := s.PutImage(ctx, image("sha256:n", "r/n", t0), []store.ImagePackage{pkg("Debian:12", "glibc", "2.36", "libc6")})
	must(t, err)
	if len(again) != 0 {
		t.Fatalf("matched packages reported fresh: %+v", again)
	}
	ch, err = s.SetMatches(ctx, []store.MatchUpdate{
		{PackageID: ids["zlib"], Matches: []store.PackageMatch{{AdvisoryID: "CVE-2024-12", FixedVersion: "1.3"}}, CloseReasons: map[string]string{"CVE-2024-11": "advisory withdrawn"}},
	}, t0.Add(time.Hour))
	must(t, err)
	if ch.Opened != 0 || ch.Closed != 1 {
		t.Fatalf("second batch: %+v", ch)
	}
	fs, err := s.ImageFindings(ctx, "sha256:m")
	must(t, err)
	if len(fs) != 2 {
		t.Fatalf("findings after the batches: %+v", fs)
	}
}

func testAdvisoryGeneration(t *testing.T, s store.Store) {
	g0, err := s.AdvisoryGeneration(ctx)
	must(t, err)
	t0 := time.Date(2024, 5, 3, 0, 0, 0, 0, time.UTC)
	a := advisory("GHSA-gen", t0, nil, store.Affected{Ecosystem: "npm", Name: "x", Spec: []byte("1")})
	_, err = s.UpsertAdvisories(ctx, []store.Advisory{a})
	must(t, err)
	g1, err := s.AdvisoryGeneration(ctx)
	must(t, err)
	if g1 == g0 {
		t.Fatal("generation unchanged by a new advisory")
	}
	_, err = s.UpsertAdvisories(ctx, []store.Advisory{a})
	must(t, err)
	g2, _ := s.AdvisoryGeneration(ctx)
	if g2 != g1 {
		t.Fatal("generation changed by an unchanged advisory")
	}
}

func testChainIDs(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	a, b := image("sha256:base", "r/base", t0), image("sha256:other", "r/other", t0)
	a.ChainID, b.ChainID = "sha256:chain-a", "sha256:chain-b"
	_, err := s.PutImage(ctx, a, nil)
	must(t, err)
	_, err = s.PutImage(ctx, b, nil)
	must(t, err)
	got, err := s.ImagesByChainID(ctx, "sha256:chain-a")
	must(t, err)
	if len(got) != 1 || got[0].Digest != "sha256:base" || got[0].ChainID != "sha256:chain-a" || got[0].Inventory != nil {
		t.Fatalf("ImagesByChainID = %+v", got)
	}
	none, err := s.ImagesByChainID(ctx, "sha256:nothing")
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("unknown chain: %+v", none)
	}
}

func testBuilds(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.LastBuild(ctx, "java"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LastBuild before any = %v", err)
	}
	ok := store.Build{Name: "java", Repository: "platform/java", Digest: "sha256:j1", Tag: "17-debian12", Tags: []string{"17-debian12", "17"},
		Parent: "debian", ParentDigest: "sha256:d1", Inputs: "h1", Packages: map[string]string{"a": "1"}, Reasons: []string{"never built"},
		Status: store.BuildSucceeded, StartedAt: t0, FinishedAt: t0.Add(time.Second), By: "cli"}
	id1, err := s.RecordBuild(ctx, ok)
	must(t, err)
	failed := ok
	failed.Digest, failed.Status, failed.Error = "", store.BuildFailed, "boom"
	id2, err := s.RecordBuild(ctx, failed)
	must(t, err)
	if id2 <= id1 {
		t.Fatalf("build IDs %d then %d", id1, id2)
	}
	last, err := s.LastBuild(ctx, "java")
	must(t, err)
	if last.ID != id1 || last.Digest != "sha256:j1" || !reflect.DeepEqual(last.Tags, ok.Tags) || last.Packages["a"] != "1" ||
		!last.FinishedAt.Equal(ok.FinishedAt) || last.Reasons[0] != "never built" {
		t.Fatalf("LastBuild skipped the failure wrongly: %+v", last)
	}
	hist, err := s.BuildHistory(ctx, "java", 0)
	must(t, err)
	if len(hist) != 2 || hist[0].Status != store.BuildFailed || hist[0].Error != "boom" {
		t.Fatalf("BuildHistory = %+v", hist)
	}
	all, err := s.BuildHistory(ctx, "", 1)
	must(t, err)
	if len(all) != 1 || all[0].ID != id2 {
		t.Fatalf("BuildHistory all, limit 1 = %+v", all)
	}
}

func testPromotions(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC)
	p := store.Promotion{Repository: "reg/app", Target: "reg/app", Digest: "sha256:" + strings.Repeat("a", 64), Environment: "prod",
		From: "staging", Tag: "prod", State: store.PromotionAwaitingApproval, Kind: "promote", By: "dev", Role: "developer",
		Evidence: []byte(`{"gates":[]}`), CreatedAt: t0}
	id, err := s.CreatePromotion(ctx, p, store.AuditEvent{At: t0, Actor: "dev", Action: "promotion.requested", Subject: p.Repository + "@" + p.Digest})
	must(t, err)
	// Approvals: once per approver, each audited.
	for _, who := range []string{"ann", "ann", "bob"} {
		_, err := s.AddApproval(ctx, store.Approval{PromotionID: id, Approver: who, Role: "approver", At: t0.Add(time.Minute)},
			store.AuditEvent{Actor: who, Action: "promotion.approved", Subject: p.Repository})
		must(t, err)
	}
	as, err := s.Approvals(ctx, id)
	must(t, err)
	if len(as) != 2 {
		t.Fatalf("approvals %+v", as)
	}
	// A transition from the wrong state is refused and changes nothing.
	err = s.TransitionPromotion(ctx, id, store.PromotionMoving, store.PromotionDone, nil, "", t0, store.AuditEvent{Actor: "x", Action: "y"})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("transition from the wrong state: %v", err)
	}
	must(t, s.TransitionPromotion(ctx, id, store.PromotionAwaitingApproval, store.PromotionMoving, []byte(`{"gates":["ok"]}`), "", t0.Add(2*time.Minute),
		store.AuditEvent{Actor: "bob", Action: "promotion.moving", Subject: p.Repository}))
	// One promotion at a time moves a tag.
	second := p
	second.State, second.Digest = store.PromotionMoving, "sha256:"+strings.Repeat("b", 64)
	if _, err := s.CreatePromotion(ctx, second, store.AuditEvent{Actor: "dev", Action: "promotion.moving"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second promotion moving the same tag: %v", err)
	}
	other := second
	other.Environment = "qa"
	must2id(t)(s.CreatePromotion(ctx, other, store.AuditEvent{Actor: "dev", Action: "promotion.moving"}))
	must(t, s.TransitionPromotion(ctx, id, store.PromotionMoving, store.PromotionDone, nil, "tag moved", t0.Add(3*time.Minute),
		store.AuditEvent{Actor: "bob", Action: "promotion.done", Subject: p.Repository}))
	got, err := s.Promotion(ctx, id)
	must(t, err)
	if got.State != store.PromotionDone || string(got.Evidence) != `{"gates":["ok"]}` || got.Note != "tag moved" || !got.UpdatedAt.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("promotion %+v", got)
	}
	// Done records the deployment.
	deps, err := s.CurrentDeployments(ctx, "prod")
	must(t, err)
	if len(deps) != 1 || deps[0].Digest != p.Digest || deps[0].Repository != "reg/app" {
		t.Fatalf("deployments %+v", deps)
	}
	if _, err := s.Promotion(ctx, id+100); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing promotion: %v", err)
	}
	list, err := s.ListPromotions(ctx, store.PromotionQuery{Repository: "reg/app", States: []string{store.PromotionDone}})
	must(t, err)
	if len(list) != 1 || list[0].ID != id {
		t.Fatalf("list %+v", list)
	}
	// Only done promotions are promoted digests; the qa one still moves.
	promoted, err := s.PromotedDigests(ctx)
	must(t, err)
	if len(promoted) != 1 || promoted[0].Digest != p.Digest || promoted[0].Environment != "prod" || promoted[0].Target != "reg/app" ||
		promoted[0].Tag != "prod" || !promoted[0].At.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("promoted digests %+v", promoted)
	}
	if list, _ := s.ListPromotions(ctx, store.PromotionQuery{Environment: "qa", States: []string{store.PromotionMoving}}); len(list) != 1 {
		t.Fatalf("qa list %+v", list)
	}
	if list, _ := s.ListPromotions(ctx, store.PromotionQuery{Environment: "staging"}); len(list) != 0 {
		t.Fatalf("staging list %+v", list)
	}
	// Every step is in the chained audit log, naming the promotion.
	evs, err := s.AuditEvents(ctx, 0, 100)
	must(t, err)
	if len(evs) != 6 {
		t.Fatalf("%d audit events", len(evs))
	}
	if _, _, err := store.VerifyAuditChain("", 0, evs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(evs[5].Details), fmt.Sprintf(`"promotion":%d`, id)) {
		t.Fatalf("audit details %s", evs[5].Details)
	}
}

func must2id(t *testing.T) func(int64, error) {
	return func(_ int64, err error) {
		t.Helper()
		must(t, err)
	}
}

func testStickyClosures(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 10, 1, 0, 0, 0, 0, time.UTC)
	id := seedFindings(t, s, t0)
	match := []store.PackageMatch{{AdvisoryID: "CVE-2024-1", FixedVersion: "3.0.2"}}
	_, err := s.SetPackageMatches(ctx, id, match, nil, t0)
	must(t, err)
	fs, err := s.ImageFindings(ctx, "sha256:a")
	must(t, err)
	if len(fs) != 1 {
		t.Fatalf("seeded findings %+v", fs)
	}
	f := fs[0]
	n, err := s.CloseFindings(ctx, "sha256:a", []store.FindingKey{{AdvisoryID: f.AdvisoryID, Package: f.Package.Name}}, store.CloseVEX+": not_affected (vulnerable_code_not_in_execute_path)", t0.Add(time.Hour))
	must(t, err)
	if n != 1 {
		t.Fatalf("closed %d", n)
	}
	closed, err := s.FindingsClosedAs(ctx, "sha256:a", store.CloseVEX)
	must(t, err)
	if len(closed) != 1 || closed[0].AdvisoryID != f.AdvisoryID || !strings.HasPrefix(closed[0].CloseReason, "vex: not_affected") {
		t.Fatalf("closed %+v", closed)
	}
	// The other image keeps its finding.
	if other, _ := s.ImageFindings(ctx, "sha256:b"); len(other) != 1 {
		t.Fatalf("sha256:b findings %+v", other)
	}
	// Matching the package again does not reopen a VEX closure; a plain
	// closure (the advisory no longer matching) does reopen.
	_, err = s.SetPackageMatches(ctx, id, nil, nil, t0.Add(2*time.Hour))
	must(t, err)
	_, err = s.SetPackageMatches(ctx, id, match, nil, t0.Add(3*time.Hour))
	must(t, err)
	if after, _ := s.ImageFindings(ctx, "sha256:a"); len(after) != 0 {
		t.Fatalf("a re-match reopened a VEX closure: %+v", after)
	}
	if other, _ := s.ImageFindings(ctx, "sha256:b"); len(other) != 1 {
		t.Fatalf("sha256:b after the re-match: %+v", other)
	}
}

// testDataGeneration: every write a cached answer depends on moves the
// generation.
func testDataGeneration(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 11, 1, 0, 0, 0, 0, time.UTC)
	gens := map[string]bool{}
	step := func(what string) {
		t.Helper()
		g, err := s.DataGeneration(ctx)
		must(t, err)
		if gens[g] {
			t.Fatalf("%s did not change the data generation (%s)", what, g)
		}
		gens[g] = true
	}
	step("start")
	id := seedFindings(t, s, t0)
	step("images and advisories")
	_, err := s.SetPackageMatches(ctx, id, []store.PackageMatch{{AdvisoryID: "CVE-2024-1", FixedVersion: "3.0.2"}}, nil, t0)
	must(t, err)
	step("matches")
	_, err = s.CloseFindings(ctx, "sha256:a", []store.FindingKey{{AdvisoryID: "CVE-2024-1", Package: "libssl3"}}, store.CloseVEX+": test", t0)
	must(t, err)
	step("a closed finding")
	must(t, s.PutDeployment(ctx, store.Deployment{Environment: "prod", Repository: "r/a", Digest: "sha256:a", Since: t0}))
	step("a deployment")
	_, err = s.UpsertAdvisories(ctx, []store.Advisory{advisory("CVE-2024-9", t0, nil, store.Affected{Ecosystem: "Debian:12", Name: "zlib", Spec: []byte("z")})})
	must(t, err)
	step("an advisory")
	_, err = s.PutImage(ctx, image("sha256:c", "r/c", t0), []store.ImagePackage{pkg("Debian:12", "zlib", "1.2", "zlib1g")})
	must(t, err)
	step("an image")
}

// testSessions: a session is found by its secret's hash, touched,
// listed by user, revoked once.
func testSessions(t *testing.T, s store.Store) {
	t0 := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for i, u := range []string{"alice", "bob", "alice"} {
		must(t, s.CreateSession(ctx, store.Session{ID: fmt.Sprintf("s%d", i), Hash: []byte{byte(i), 1}, User: u, Role: store.RoleApprover,
			Source: "oidc:test", CSRF: "c", CreatedAt: t0.Add(time.Duration(i) * time.Minute), LastSeen: t0, ExpiresAt: t0.Add(time.Hour)}))
	}
	if err := s.CreateSession(ctx, store.Session{ID: "s0", Hash: []byte{9}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a second session with one ID: %v", err)
	}
	got, err := s.SessionByHash(ctx, []byte{2, 1})
	must(t, err)
	if got.ID != "s2" || got.User != "alice" || got.Source != "oidc:test" || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("by hash: %+v", got)
	}
	if _, err := s.SessionByHash(ctx, []byte{7}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	must(t, s.TouchSession(ctx, "s2", t0.Add(10*time.Minute)))
	must(t, s.RevokeSession(ctx, "s2", t0.Add(11*time.Minute)))
	if err := s.RevokeSession(ctx, "s2", t0.Add(12*time.Minute)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
	alice, err := s.ListSessions(ctx, "alice", 0)
	must(t, err)
	if len(alice) != 2 || alice[0].ID != "s2" || !alice[0].LastSeen.Equal(t0.Add(10*time.Minute)) || alice[0].RevokedAt.IsZero() {
		t.Fatalf("alice's sessions: %+v", alice)
	}
	if all, _ := s.ListSessions(ctx, "", 0); len(all) != 3 {
		t.Fatalf("all sessions: %d", len(all))
	}
}

// testRatings: an advisory's rating inputs are the ratings of its ID and
// aliases; the known-exploited and EPSS facts follow its aliases, and a
// new catalog replaces the old one.
func testRatings(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	a := advisory("GO-2024-1", t0, []string{"CVE-2024-1", "GHSA-aaaa"}, store.Affected{Ecosystem: "Go", Name: "stdlib", Spec: []byte("{}")})
	a.Ratings = []store.Rating{{ID: "GO-2024-1", Source: "ecosystem", Severity: "LOW"}}
	_, err := s.UpsertAdvisories(ctx, []store.Advisory{a})
	must(t, err)
	must(t, s.PutRatings(ctx, []store.Rating{{ID: "CVE-2024-1", Source: "nvd", Severity: "HIGH", Score: 7.5, Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"},
		{ID: "CVE-2099-9", Source: "nvd", Severity: "LOW", Score: 2}}))
	named, err := s.AdvisoriesNaming(ctx, []string{"CVE-2024-1", "CVE-2099-9"})
	must(t, err)
	if !reflect.DeepEqual(named, []string{"GO-2024-1"}) {
		t.Fatalf("advisories naming: %v", named)
	}
	in, err := s.RatingInputs(ctx, named)
	must(t, err)
	if len(in["GO-2024-1"]) != 2 {
		t.Fatalf("rating inputs: %+v", in)
	}
	must(t, s.SetRatings(ctx, []store.AdvisoryRating{{AdvisoryID: "GO-2024-1", Severity: "HIGH", Score: 7.5, Source: "nvd", Ratings: in["GO-2024-1"]}}))
	must(t, s.PutKEV(ctx, []store.Exploit{{ID: "CVE-2024-1", KEVAdded: t0}}))
	must(t, s.PutEPSS(ctx, []store.Exploit{{ID: "CVE-2024-1", EPSS: 0.25, Percentile: 0.9}, {ID: "GHSA-aaaa", EPSS: 0.5, Percentile: 0.95}}))
	must(t, s.RefreshExploits(ctx, nil))
	rows, err := s.AffectedFor(ctx, "Go", "stdlib")
	must(t, err)
	if len(rows) != 1 || rows[0].Severity != "HIGH" || rows[0].SeveritySource != "nvd" || len(rows[0].Ratings) != 2 ||
		!rows[0].KEV.Equal(t0) || rows[0].EPSS != 0.5 {
		t.Fatalf("affected row: %+v", rows)
	}
	// A new catalog without the CVE unlists it.
	must(t, s.PutKEV(ctx, []store.Exploit{{ID: "CVE-2099-9", KEVAdded: t0}}))
	must(t, s.RefreshExploits(ctx, []string{"GO-2024-1"}))
	rows, err = s.AffectedFor(ctx, "Go", "stdlib")
	must(t, err)
	if !rows[0].KEV.IsZero() {
		t.Fatalf("still known exploited: %+v", rows[0])
	}
	ex, err := s.Exploits(ctx, []string{"CVE-2024-1", "CVE-2099-9"})
	must(t, err)
	if !ex["CVE-2024-1"].KEVAdded.IsZero() || ex["CVE-2024-1"].EPSS != 0.25 || !ex["CVE-2099-9"].KEVAdded.Equal(t0) {
		t.Fatalf("exploits: %+v", ex)
	}
}

func testVEXDocuments(t *testing.T, s store.Store) {
	d := store.VEXDocument{Digest: "sha256:" + strings.Repeat("a", 64), Name: "a.json", Format: "csaf", Data: []byte("{}"), AddedAt: time.Now().UTC(), By: "t"}
	added, err := s.PutVEXDocument(ctx, d)
	must(t, err)
	again, err := s.PutVEXDocument(ctx, d)
	must(t, err)
	docs, err := s.VEXDocuments(ctx)
	must(t, err)
	if !added || again || len(docs) != 1 || string(docs[0].Data) != "{}" || docs[0].Format != "csaf" {
		t.Fatalf("added %v again %v docs %+v", added, again, docs)
	}
}

// testImageChecks: checks are kept by indexed image; a digest socle has
// not indexed keeps none; a newer check replaces the older one, and only
// images without a check of the current rules are listed to check.
func testImageChecks(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	c := store.ImageCheck{Digest: "sha256:c1", Repository: "r/app", RulesVersion: "v1", CheckedAt: t0, Result: []byte(`{"hand":"made"}`)}
	if err := s.PutImageCheck(ctx, c); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the check of an image not indexed: %v", err)
	}
	if _, err := s.ImageCheck(ctx, "sha256:c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a check was kept for an image not indexed: %v", err)
	}
	for _, d := range []string{"sha256:c1", "sha256:c2"} {
		_, err := s.PutImage(ctx, image(d, "r/app", t0), nil)
		must(t, err)
	}
	must(t, s.PutImageCheck(ctx, c))
	got, err := s.ImageCheck(ctx, "sha256:c1")
	must(t, err)
	if got.Digest != c.Digest || got.Repository != "r/app" || got.RulesVersion != "v1" || !got.CheckedAt.Equal(t0) || string(got.Result) != string(c.Result) {
		t.Fatalf("kept check %+v, want %+v", got, c)
	}
	todo, err := s.ImagesToCheck(ctx, "v1", 10)
	must(t, err)
	if len(todo) != 1 || todo[0].Digest != "sha256:c2" {
		t.Fatalf("images to check with v1: %+v", todo)
	}
	c.RulesVersion, c.Repository, c.Result = "v2", "r/other", []byte(`{"hand":"made again"}`)
	must(t, s.PutImageCheck(ctx, c))
	if got, err = s.ImageCheck(ctx, "sha256:c1"); err != nil || got.RulesVersion != "v2" || got.Repository != "r/other" || string(got.Result) != string(c.Result) {
		t.Fatalf("replaced check %+v %v", got, err)
	}
	if todo, err = s.ImagesToCheck(ctx, "v2", 10); err != nil || len(todo) != 1 || todo[0].Digest != "sha256:c2" {
		t.Fatalf("images to check with v2: %+v %v", todo, err)
	}
}

// testLayerLists: an image's layer digests come back as written, whatever
// their spelling (sha256 in lowercase hexadecimal is kept as bytes, any
// other as text), with its packages' layers.
func testLayerLists(t *testing.T, s store.Store) {
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	layers := []string{
		"sha256:" + strings.Repeat("0123456789abcdef", 4),
		"sha256:" + strings.Repeat("0123456789ABCDEF", 4),
		"sha512:" + strings.Repeat("ab", 64),
		"sha256:short",
		"",
	}
	img := image("sha256:layers", "r/app", t0)
	img.Layers = layers
	p := pkg("Debian:12", "zlib", "1.2", "zlib1g")
	p.Layer, p.LayerIndex = layers[2], 2
	_, err := s.PutImage(ctx, img, []store.ImagePackage{p})
	must(t, err)
	got, err := s.Image(ctx, "sha256:layers")
	must(t, err)
	if !reflect.DeepEqual(got.Layers, layers) {
		t.Fatalf("layers %q, want %q", got.Layers, layers)
	}
	pk, err := s.ImagePackages(ctx, "sha256:layers")
	must(t, err)
	if len(pk) != 1 || pk[0].Layer != layers[2] || pk[0].LayerIndex != 2 {
		t.Fatalf("packages %+v", pk)
	}
	img = image("sha256:nolayers", "r/app", t0)
	img.Layers = nil
	_, err = s.PutImage(ctx, img, nil)
	must(t, err)
	if got, err = s.Image(ctx, "sha256:nolayers"); err != nil || got.Layers == nil || len(got.Layers) != 0 {
		t.Fatalf("no layers: %q %v", got.Layers, err)
	}
}
