package scan_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

// alpineStore is a SQLite store with the real Alpine 3.10 secdb.
func alpineStore(t *testing.T) (store.Store, *scan.Scanner) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	im := vuln.NewImporter(st, "alpine")
	if err := im.ImportPath(ctx, testenv.SharedData(t, "alpine", "vuln-list-alpine-3.10")); err != nil {
		t.Fatal(err)
	}
	if _, err := im.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	an, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	return st, scan.New(st, an)
}

// TestImportedSyftSBOMAgainstScan imports syft's SPDX SBOM of Alpine 3.10
// (shared data: a trimmed fixture of three packages of 3.10.9) and scans
// the shared Alpine 3.10.4 image: for the packages both list, the
// findings agree except where the versions differ, and the difference
// is the one the versions explain (3.10.9 carries fixes 3.10.4 lacks).
func TestImportedSyftSBOMAgainstScan(t *testing.T) {
	ctx := context.Background()
	st, sc := alpineStore(t)
	doc, err := os.ReadFile(testenv.SharedData(t, "sbom-interop", "producers", "syft", "alpine-3.10.syft.spdx-2.2.json"))
	if err != nil {
		t.Fatal(err)
	}
	syftDigest := "sha256:" + strings.Repeat("5b", 32) // hand-made: the fixture names no digest
	imp, err := sc.ImportSBOM(ctx, st, doc, "registry.test.invalid/alpine:3.10.9@"+syftDigest, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz"))
	img, err := source.Open(ctx, ref, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	res, err := sc.Scan(ctx, img, scan.Options{Index: true})
	if err != nil {
		t.Fatal(err)
	}
	versions := map[string]string{}
	for _, p := range res.Inventory.Packages {
		versions[p.Name] = p.Version
	}
	byPkg := func(fs []vuln.Finding) map[string][]string {
		out := map[string][]string{}
		for _, f := range fs {
			out[f.Package.Name] = append(out[f.Package.Name], f.ID)
		}
		for k := range out {
			sort.Strings(out[k])
		}
		return out
	}
	syft, socle := byPkg(imp.Findings), byPkg(res.Findings)
	compared := 0
	for _, p := range imp.Inventory.Packages {
		v, scanned := versions[p.Name]
		if !scanned {
			t.Errorf("syft lists %s, which socle's scan does not", p.Name)
			continue
		}
		compared++
		if v == p.Version {
			if strings.Join(syft[p.Name], " ") != strings.Join(socle[p.Name], " ") {
				t.Errorf("%s %s: syft's SBOM gives %v, socle's scan %v", p.Name, v, syft[p.Name], socle[p.Name])
			}
			continue
		}
		// Different versions: every finding of the newer one is one of the
		// older's (fixes only remove findings here).
		for _, id := range syft[p.Name] {
			if !strings.Contains(strings.Join(socle[p.Name], " "), id) {
				t.Errorf("%s: %s at %s (syft) but not at %s (scan)", p.Name, id, p.Version, v)
			}
		}
		t.Logf("%s: %s in the syft fixture, %s in the image: %d findings against %d", p.Name, p.Version, v, len(syft[p.Name]), len(socle[p.Name]))
	}
	if compared != 3 {
		t.Fatalf("compared %d packages", compared)
	}
	// socle's own SBOM of the image, imported as another image, matches
	// exactly as the scan did: the import path loses nothing matching
	// needs.
	var buf bytes.Buffer
	if err := sbom.WriteCycloneDX(&buf, sbom.CycloneDX(res.Inventory, sbom.ImageName{Repository: "alpine"})); err != nil {
		t.Fatal(err)
	}
	// (into another store: this one knows the image, and would only keep
	// the SBOM to compare with).
	st2, sc2 := alpineStore(t)
	own, err := sc2.ImportSBOM(ctx, st2, buf.Bytes(), "registry.test.invalid/copy@"+res.Inventory.Digest, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if a, b := byPkg(own.Findings), socle; own.Compared || len(res.Findings) == 0 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("imported %v, scanned %v", a, b)
	}
	// Into this store, the same SBOM is kept for comparison only.
	again, err := sc.ImportSBOM(ctx, st, buf.Bytes(), "registry.test.invalid/copy@"+res.Inventory.Digest, time.Now())
	if err != nil || !again.Compared {
		t.Fatalf("import of a known image: %v %+v", err, again)
	}
	kept, err := st.ImportedSBOMs(ctx, res.Inventory.Digest)
	if err != nil || len(kept) != 1 || len(kept[0].Packages) != len(res.Inventory.Packages) {
		t.Fatalf("kept SBOMs: %v %+v", err, kept)
	}
}

// TestImportAttestation: the real cosign attestation of the shared data
// (syft's CycloneDX of alpine, signed) opens with its key; the tampered
// copy and another key are refused.
func TestImportAttestation(t *testing.T) {
	dir := testenv.SharedData(t, "sbom-interop", "producers", "cosign-attestation")
	key, err := sign.LoadVerifierFile(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(dir, "alpine.syft-0.43.2.cdx-1.4.dsse.json"))
	doc, image, by, err := scan.AttestedSBOM(good, []*sign.Verifier{key}, "registry.test.invalid/alpine:latest")
	if err != nil {
		t.Fatal(err)
	}
	if by != key.Name || !strings.HasPrefix(image, "registry.test.invalid/alpine:latest@sha256:4edbd2be") {
		t.Fatalf("verified by %q, image %q", by, image)
	}
	im, err := sbom.Import(doc)
	if err != nil || len(im.Inventory.Packages) == 0 || im.Ecosystems["Alpine:v3.15"] == 0 {
		t.Fatalf("the attested SBOM: %v %+v", err, im)
	}
	tampered, _ := os.ReadFile(filepath.Join(dir, "alpine-tampered.cdx.dsse.json"))
	if _, _, _, err := scan.AttestedSBOM(tampered, []*sign.Verifier{key}, "registry.test.invalid/alpine"); err == nil {
		t.Fatal("the tampered attestation was accepted")
	}
	kp, _ := sign.GenerateKeyPair(nil)
	other, _ := sign.LoadVerifier("other.pub", kp.Public)
	if _, _, _, err := scan.AttestedSBOM(good, []*sign.Verifier{other}, "registry.test.invalid/alpine"); err == nil {
		t.Fatal("another key verified the attestation")
	}
	if _, _, _, err := scan.AttestedSBOM(good, []*sign.Verifier{key}, "registry.test.invalid/alpine@sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Fatal("an attestation about another digest was accepted")
	}
}
