package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/socle-dev/socle/internal/testenv"
)

// Two attacks on the layer cache, with hand-made images written to OCI
// layouts. Each layer holds one npm package.json written in the test:
// minimist 1.2.6 (clean) or 1.2.5 (affected by the real
// GHSA-xvch-5gv4-984h record of the bundled sample).

// TestScanRefusesDiffIDOfCleanLayer: once a clean layer is cached, an
// image whose config claims the clean layer's DiffID for a vulnerable
// layer is not inventoried from the cache: the scan fails and names the
// layer.
func TestScanRefusesDiffIDOfCleanLayer(t *testing.T) {
	dir := t.TempDir()
	clean := testenv.NPMPackage(t, "minimist", "1.2.6")
	vulnerable := testenv.NPMPackage(t, "minimist", "1.2.5")
	if _, errOut, code := run(t, dir, "scan", "oci:"+writeLayout(t, testenv.Image(t, clean))); code != 0 {
		t.Fatalf("clean image: exit %d: %s", code, errOut)
	}
	forged := testenv.ForgeDiffID(t, testenv.Image(t, vulnerable), 0, testenv.DiffID(t, clean))
	out, errOut, code := run(t, dir, "scan", "-o", "json", "oci:"+writeLayout(t, forged))
	if code != 1 {
		t.Fatalf("the forged image was scanned (exit %d), from the cache of the clean layer:\n%s", code, out)
	}
	d, _ := vulnerable.Digest()
	for _, want := range []string{"layer 0", d.String(), "DiffID"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the error does not name %q: %s", want, errOut)
		}
	}
	// Nothing of the forged layer was cached: the vulnerable layer, in
	// an honest image, shows its finding.
	assertMinimistFinding(t, dir, testenv.Image(t, vulnerable))
}

// TestScanRefusesPoisonLayer: an image whose config claims the DiffID of
// a vulnerable layer not yet seen, holding harmless bytes, fails; and the
// real vulnerable image scanned after it is not inventoried as clean.
func TestScanRefusesPoisonLayer(t *testing.T) {
	dir := t.TempDir()
	clean := testenv.NPMPackage(t, "minimist", "1.2.6")
	vulnerable := testenv.NPMPackage(t, "minimist", "1.2.5")
	poison := testenv.ForgeDiffID(t, testenv.Image(t, clean), 0, testenv.DiffID(t, vulnerable))
	if out, errOut, code := run(t, dir, "scan", "oci:"+writeLayout(t, poison)); code != 1 || !strings.Contains(errOut, "layer 0") {
		t.Fatalf("the poison image was scanned (exit %d): %s\n%s", code, errOut, out)
	}
	assertMinimistFinding(t, dir, testenv.Image(t, vulnerable))
}

// assertMinimistFinding scans img and wants the minimist advisory.
func assertMinimistFinding(t *testing.T, dir string, img v1.Image) {
	t.Helper()
	out, errOut, code := run(t, dir, "scan", "-o", "json", "oci:"+writeLayout(t, img))
	if code != 0 {
		t.Fatalf("the honest vulnerable image: exit %d: %s", code, errOut)
	}
	var res struct {
		Findings []struct {
			ID         string
			Advisories []string
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		if f.ID == "GHSA-xvch-5gv4-984h" || strings.Contains(strings.Join(f.Advisories, " "), "GHSA-xvch-5gv4-984h") {
			return
		}
	}
	t.Fatalf("the vulnerable layer reads as clean: %s", out)
}
