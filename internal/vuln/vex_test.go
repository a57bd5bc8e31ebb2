package vuln_test

import (
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/vuln"
)

const digest = "sha256:4cb92e906f52a8c76c6caa12097dc28be9ac9045e7c64c17abc1c740710ca071"

func finding(id string, aliases []string, purl string) vuln.Finding {
	return vuln.Finding{ID: id, Aliases: aliases, Advisories: []string{id}, Package: sbom.Package{Name: "musl", Version: "1.1.22-r3", PURL: purl}}
}

// The OpenVEX documents below are hand-made for these tests.
func TestVEX(t *testing.T) {
	musl := "pkg:apk/alpine/musl@1.1.22-r3?arch=x86_64&distro=3.10.4"
	fs := []vuln.Finding{
		finding("CVE-2020-28928", []string{"ALPINE-v3.10-CVE-2020-28928"}, musl),
		finding("CVE-2019-14697", nil, musl),
		finding("CVE-2021-0001", nil, "pkg:apk/alpine/busybox@1.30.1-r3"),
	}
	doc := `{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.invalid/vex/1",
  "author": "test",
  "timestamp": "2024-01-01T00:00:00Z",
  "version": 1,
  "statements": [
    {"vulnerability": {"name": "ALPINE-v3.10-CVE-2020-28928"},
     "products": [{"@id": "pkg:oci/alpine@sha256%3A4cb92e906f52a8c76c6caa12097dc28be9ac9045e7c64c17abc1c740710ca071",
                   "subcomponents": [{"@id": "pkg:apk/alpine/musl"}]}],
     "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"},
    {"vulnerability": {"name": "CVE-2019-14697"}, "products": [{"@id": "pkg:apk/alpine/musl@1.1.22-r3"}],
     "status": "not_affected", "justification": "component_not_present", "timestamp": "2024-01-01T00:00:00Z"},
    {"vulnerability": {"name": "CVE-2019-14697"}, "products": [{"@id": "pkg:apk/alpine/musl@1.1.22-r3"}],
     "status": "affected", "timestamp": "2024-02-01T00:00:00Z"},
    {"vulnerability": {"name": "CVE-2021-0001"}, "products": [{"@id": "pkg:apk/alpine/busybox@9.9"}],
     "status": "not_affected", "justification": "component_not_present"}
  ]
}`
	v := &vuln.VEX{}
	if err := v.ParseOpenVEX([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	kept, suppressed := v.Apply(digest, fs)
	if len(suppressed) != 1 || suppressed[0].ID != "CVE-2020-28928" || !strings.Contains(suppressed[0].Suppressed, "vulnerable_code_not_in_execute_path") {
		t.Fatalf("suppressed = %+v", suppressed)
	}
	// The later "affected" statement wins for CVE-2019-14697, and a
	// statement about another busybox version does not apply.
	if len(kept) != 2 {
		t.Fatalf("kept = %+v", kept)
	}
	// Another image digest is not covered by the image statement.
	_, suppressed = v.Apply("sha256:0000000000000000000000000000000000000000000000000000000000000000", fs)
	if len(suppressed) != 0 {
		t.Fatalf("statement about another image applied: %+v", suppressed)
	}
}

func TestVEXErrors(t *testing.T) {
	for _, doc := range []string{
		`{`,
		`{"@context":"https://cyclonedx.org"}`,
		`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"X"},"products":[{"@id":"a"}],"status":"maybe"}]}`,
		`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"products":[{"@id":"a"}],"status":"fixed"}]}`,
		`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"X"},"status":"fixed"}]}`,
	} {
		if err := (&vuln.VEX{}).ParseOpenVEX([]byte(doc)); err == nil {
			t.Errorf("accepted %s", doc)
		}
	}
}
