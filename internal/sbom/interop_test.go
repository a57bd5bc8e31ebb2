package sbom_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/facebookincubator/nvdtools/wfn"
	"github.com/socle-dev/socle/internal/purl"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// sharedImages are the images of the shared data, with their inventories.
func sharedImages(t *testing.T) map[string]*sbom.Inventory {
	t.Helper()
	out := map[string]*sbom.Inventory{}
	for _, f := range []string{"alpine-310.tar.gz", "hello-world-v25.tar"} {
		img := openArchive(t, "images", f)
		out[f] = analyze(t, img, nil)
		out[f+" (debian base-files, hand-made image)"] = analyze(t, debianImage(t), nil)
	}
	return out
}

// TestOutputValidates: socle's CycloneDX and SPDX documents of every
// shared image validate against the official CycloneDX 1.6 and SPDX 2.3
// schemas, and every package URL socle writes is in its canonical form.
func TestOutputValidates(t *testing.T) {
	cdx := testenv.CycloneDXSchema(t, "1.6")
	spdx := testenv.SPDXSchema(t, "spdx-schema-v2.3.json")
	for name, inv := range sharedImages(t) {
		var c, s bytes.Buffer
		if err := sbom.WriteCycloneDX(&c, sbom.CycloneDX(inv, sbom.ImageName{Repository: "registry.test.invalid/shared"})); err != nil {
			t.Fatal(err)
		}
		if err := testenv.Validate(cdx, c.Bytes()); err != nil {
			t.Errorf("%s: CycloneDX: %v", name, err)
		}
		if err := sbom.WriteSPDX(&s, sbom.SPDX(inv, sbom.ImageName{Repository: "registry.test.invalid/shared"})); err != nil {
			t.Fatal(err)
		}
		if err := testenv.Validate(spdx, s.Bytes()); err != nil {
			t.Errorf("%s: SPDX: %v", name, err)
		}
		for _, p := range inv.Packages {
			if p.PURL == "" || strings.HasPrefix(p.PURL, "pkg:golang/stdlib@") {
				continue // the Go standard library: no specified form (see canonicalPURL)
			}
			canon, err := purl.Canonical(p.PURL)
			if err != nil || canon != p.PURL {
				t.Errorf("%s: %s is not canonical (%s, %v)", name, p.PURL, canon, err)
			}
			if strings.Contains(p.PURL, "=UNKNOWN") || strings.Contains(p.PURL, "=&") || strings.HasSuffix(p.PURL, "=") {
				t.Errorf("%s: placeholder qualifier in %s", name, p.PURL)
			}
		}
	}
}

// TestExamplesValidate: the real example documents of the shared data
// validate under the same code, which shows the validator is right: the
// CycloneDX examples against their own version's schema, the SPDX ones
// against the 2.3.1 schema, which accepts both spellings of the
// package-manager category.
func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testenv.SharedData(t, "sbom-interop", "cyclonedx", "examples"), "*.json"))
	for _, f := range files {
		v := strings.TrimSuffix(f[strings.LastIndex(f, ".cdx-")+5:], ".json")
		b, _ := os.ReadFile(f)
		if err := testenv.Validate(testenv.CycloneDXSchema(t, v), b); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
	spdx := testenv.SPDXSchema(t, "spdx-schema-support-2.3.1.json")
	files, _ = filepath.Glob(filepath.Join(testenv.SharedData(t, "sbom-interop", "spdx", "examples"), "*.json"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if err := testenv.Validate(spdx, b); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
	if len(files) == 0 {
		t.Fatal("no SPDX examples")
	}
}

// TestImportEverySBOM imports every example and producer SBOM of the
// shared data. Each one's format, package count, recognised ecosystems
// and problems are in a golden file (go test -update rewrites it), and
// nothing is dropped: every package is either matched by ecosystem or
// listed as unmapped.
func TestImportEverySBOM(t *testing.T) {
	root := testenv.SharedData(t, "sbom-interop")
	var files []string
	for _, pattern := range []string{"cyclonedx/examples/*.json", "spdx/examples/*.json", "producers/*/*.cdx-*.json", "producers/*/*.spdx-*.json"} {
		m, _ := filepath.Glob(filepath.Join(root, pattern))
		files = append(files, m...)
	}
	var b strings.Builder
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		if strings.HasSuffix(f, ".dsse.json") {
			continue // attestations: TestImportAttestation
		}
		data, _ := os.ReadFile(f)
		im, err := sbom.Import(data)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		matched := 0
		var ecos []string
		for e, n := range im.Ecosystems {
			matched += n
			ecos = append(ecos, fmt.Sprintf("%s=%d", e, n))
		}
		sort.Strings(ecos)
		if matched+len(im.Unmapped) != len(im.Inventory.Packages) {
			t.Errorf("%s: %d packages, %d matched and %d unmapped", rel, len(im.Inventory.Packages), matched, len(im.Unmapped))
		}
		fmt.Fprintf(&b, "%s\n  %s; %d packages; ecosystems: %s; unmapped: %d; os: %s; subject: %s\n", rel, im.Format, len(im.Inventory.Packages),
			strings.Join(ecos, " "), len(im.Unmapped), im.Inventory.OS, im.Subject)
		for _, p := range im.Problems {
			fmt.Fprintf(&b, "  problem: %s\n", p)
		}
	}
	golden := filepath.Join("testdata", "import.golden")
	if *update {
		os.WriteFile(golden, []byte(b.String()), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Fatalf("the import report differs from %s (go test -update to accept):\n%s", golden, b.String())
	}
}

// TestImportRoundTrip: socle's own CycloneDX and SPDX of the Alpine
// image import back to the same packages, ecosystems, layers and source
// names (the source names through the pedigree and the GENERATED_FROM
// relationships).
func TestImportRoundTrip(t *testing.T) {
	inv := analyze(t, openArchive(t, "images", "alpine-310.tar.gz"), nil)
	name := sbom.ImageName{Repository: "alpine", Tag: "3.10"}
	for format, write := range map[string]func(*bytes.Buffer) error{
		"CycloneDX": func(b *bytes.Buffer) error { return sbom.WriteCycloneDX(b, sbom.CycloneDX(inv, name)) },
		"SPDX":      func(b *bytes.Buffer) error { return sbom.WriteSPDX(b, sbom.SPDX(inv, name)) },
	} {
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		im, err := sbom.Import(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		key := func(p sbom.Package) string {
			return strings.Join([]string{p.Name, p.Version, p.Ecosystem, p.SourceName, p.SourceVersion, p.Layer, p.Path, p.PURL}, " ")
		}
		var want, got []string
		for _, p := range inv.Packages {
			want = append(want, key(p))
		}
		for _, p := range im.Inventory.Packages {
			got = append(got, key(p))
		}
		sort.Strings(want)
		sort.Strings(got)
		if strings.Join(want, "\n") != strings.Join(got, "\n") || im.Subject != inv.Digest || len(im.Unmapped) != 0 || im.Inventory.OS.ID != inv.OS.ID {
			t.Fatalf("%s round trip:\n%s\nwant\n%s\nproblems %v", format, strings.Join(got, "\n"), strings.Join(want, "\n"), im.Problems)
		}
	}
}

// TestCPEsAndSources: in socle's documents of the shared images every
// OS package has a CPE 2.3 name that the CPE library reads back to its
// source package and upstream version, the OS has its CPE, and each
// package built from a source package says so: a pedigree ancestor in
// CycloneDX, a GENERATED_FROM relationship to a SOURCE package in SPDX.
func TestCPEsAndSources(t *testing.T) {
	for name, inv := range sharedImages(t) {
		bom := sbom.CycloneDX(inv, sbom.ImageName{Repository: "shared"})
		doc := sbom.SPDX(inv, sbom.ImageName{Repository: "shared"})
		generated := map[string]bool{}
		for _, r := range doc.Relationships {
			if r.Relationship == "GENERATED_FROM" {
				generated[string(r.RefA.ElementRefID)] = true
			}
		}
		withSource := 0
		for _, c := range *bom.Components {
			if c.Type == "operating-system" {
				if !strings.HasPrefix(c.CPE, "cpe:2.3:o:") {
					t.Errorf("%s: the OS has CPE %q", name, c.CPE)
				}
				continue
			}
			var p sbom.Package
			for _, q := range inv.Packages {
				if q.PURL == c.PackageURL {
					p = q
				}
			}
			if !p.IsOS() {
				if c.CPE != "" {
					t.Errorf("%s: %s is not an OS package but has CPE %s", name, c.PackageURL, c.CPE)
				}
				continue
			}
			a, err := wfn.Parse(c.CPE)
			src := p.SourceName
			if src == "" {
				src = p.Name
			}
			if err != nil || unquoteWFN(a.Product) != strings.ToLower(src) || a.Part != "a" || !strings.HasPrefix(p.Version, unquoteWFN(a.Version)) && !strings.Contains(p.Version, ":"+unquoteWFN(a.Version)) {
				t.Errorf("%s: %s has CPE %q (%v)", name, c.PackageURL, c.CPE, err)
			}
			if p.SourceName == "" {
				continue
			}
			withSource++
			if c.Pedigree == nil || c.Pedigree.Ancestors == nil || (*c.Pedigree.Ancestors)[0].Name != p.SourceName {
				t.Errorf("%s: %s has no pedigree ancestor %s", name, c.PackageURL, p.SourceName)
			}
		}
		if withSource > 0 && len(generated) == 0 {
			t.Errorf("%s: %d packages built from a source package, no GENERATED_FROM", name, withSource)
		}
	}
}

// unquoteWFN drops the quoting of a WFN attribute value ("12\\.4\\+deb").
func unquoteWFN(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TestImportRejectsNonSBOMs: JSON that is not an SBOM gets a clear error.
func TestImportRejectsNonSBOMs(t *testing.T) {
	for _, doc := range []string{`{"hello":"world"}`, `[1,2]`, `nope`, `{"bomFormat":"CycloneDX","specVersion":"1.6","components":{"a":1}}`} {
		if _, err := sbom.Import([]byte(doc)); err == nil {
			t.Errorf("%s was imported", doc)
		}
	}
	b, _ := json.Marshal(map[string]any{"spdxVersion": "SPDX-9.9"})
	if _, err := sbom.Import(b); err == nil {
		t.Error("an unknown SPDX version was imported")
	}
}
