package scan_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

// TestCSAFVEXRealDocuments: Red Hat's real CSAF VEX for CVE-2024-24786
// says cri-tools 1.29.0-3.1.el9 (a component of OpenShift 4.16, matched
// through its purl) is fixed: a finding of that version is closed, one of
// another version is not. OASIS's example names its product only by
// name, which nothing can match: it is counted as skipped.
func TestCSAFVEXRealDocuments(t *testing.T) {
	b, err := os.ReadFile(testenv.SharedData(t, "csaf", "redhat-vex-via-claircore", "cve-2024-24786-simple.json"))
	if err != nil {
		t.Fatal(err)
	}
	v := &vuln.VEX{}
	if format, err := v.ParseVEXDocument(b); err != nil || format != vuln.FormatCSAF || v.Len() == 0 {
		t.Fatalf("format %q, %d statements, %v", format, v.Len(), err)
	}
	// Hand-made findings of two cri-tools versions.
	mk := func(version string) vuln.Finding {
		return vuln.Finding{ID: "CVE-2024-24786", Advisories: []string{"CVE-2024-24786"},
			Package: sbom.Package{Type: "rpm", Name: "cri-tools", Version: version, PURL: "pkg:rpm/redhat/cri-tools@" + version + "?arch=aarch64"}}
	}
	kept, suppressed := v.Apply("", []vuln.Finding{mk("1.29.0-3.1.el9"), mk("1.28.0-1.el9")})
	if len(suppressed) != 1 || suppressed[0].Package.Version != "1.29.0-3.1.el9" || !strings.HasPrefix(suppressed[0].Suppressed, vuln.VEXFixed) {
		t.Fatalf("suppressed %+v", suppressed)
	}
	if len(kept) != 1 || kept[0].Package.Version != "1.28.0-1.el9" {
		t.Fatalf("kept %+v", kept)
	}
	oasis, err := os.ReadFile(testenv.SharedData(t, "csaf", "oasis-csaf-2.0", "vex", "2022-evd-uc-01-na-001.json"))
	if err != nil {
		t.Fatal(err)
	}
	ov := &vuln.VEX{}
	skipped, err := ov.ParseCSAF(oasis)
	if err != nil || skipped != 1 || ov.Len() != 0 {
		t.Fatalf("OASIS example: %d skipped, %d statements, %v", skipped, ov.Len(), err)
	}
	if _, err := (&vuln.VEX{}).ParseCSAF([]byte(`{"document": {"csaf_version": "1.2"}}`)); err == nil {
		t.Fatal("a CSAF 1.x document was accepted")
	}
}

// handMadeCSAF is a hand-made CSAF 2.0 VEX document in the shape of Red
// Hat's: musl 1.1.22-r3 of Alpine is known_not_affected by CVE-2020-28928.
const handMadeCSAF = `{
  "document": {"category": "csaf_vex", "csaf_version": "2.0", "title": "hand-made",
    "publisher": {"category": "vendor", "name": "socle tests", "namespace": "https://socle.invalid"},
    "tracking": {"id": "HAND-MADE-1", "status": "final", "version": "1",
      "initial_release_date": "2026-01-01T00:00:00Z", "current_release_date": "2026-01-01T00:00:00Z",
      "revision_history": [{"date": "2026-01-01T00:00:00Z", "number": "1", "summary": "hand-made"}]}},
  "product_tree": {"branches": [{"category": "product_version", "name": "musl-1.1.22-r3",
    "product": {"name": "musl 1.1.22-r3", "product_id": "musl-1.1.22-r3",
      "product_identification_helper": {"purl": "pkg:apk/alpine/musl@1.1.22-r3"}}}]},
  "vulnerabilities": [{"cve": "CVE-2020-28928",
    "product_status": {"known_not_affected": ["musl-1.1.22-r3"]},
    "flags": [{"label": "vulnerable_code_not_in_execute_path", "product_ids": ["musl-1.1.22-r3"]}]}]
}`

// TestKeptVEXAppliesToLaterImages: a CSAF statement kept before an image
// is stored closes that image's finding when the image is indexed, with
// the VEX reason, and the finding stays closed when advisories are
// matched again.
func TestKeptVEXAppliesToLaterImages(t *testing.T) {
	ctx := context.Background()
	st, _ := alpineStore(t)
	kept := vuln.NewStoredVEX(st)
	if _, err := kept.Keep(ctx, [][]byte{[]byte(handMadeCSAF)}, []string{"hand-made.json"}, "test"); err != nil {
		t.Fatal(err)
	}
	an, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	sc := scan.New(st, an, scan.WithVEX(kept.Hook))
	res := scanAlpine(t, sc)
	open, err := st.ImageFindings(ctx, res.Inventory.Digest)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range open {
		if f.AdvisoryID == "ALPINE-v3.10-CVE-2020-28928" || (f.Package.Name == "musl" && contains(f.Aliases, "CVE-2020-28928")) {
			t.Fatalf("musl's CVE-2020-28928 is still open: %+v", f)
		}
	}
	closed, err := st.FindingsClosedAs(ctx, res.Inventory.Digest, store.CloseVEX)
	if err != nil {
		t.Fatal(err)
	}
	if len(closed) == 0 || !strings.Contains(closed[0].CloseReason, "vulnerable_code_not_in_execute_path") {
		t.Fatalf("closed by VEX: %+v", closed)
	}
	// The statement closes what it names and nothing else. (Findings
	// are kept per source package version: musl-utils, built from musl,
	// shares musl's.)
	for _, f := range closed {
		if f.AdvisoryID != "ALPINE-v3.10-CVE-2020-28928" {
			t.Errorf("VEX closed %s in %s", f.AdvisoryID, f.Package.Name)
		}
	}
	if len(open) == 0 {
		t.Fatal("every finding was closed")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
