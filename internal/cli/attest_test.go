package cli_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/testenv"
)

// TestSPDXAttestations: socle attest --type spdx attaches socle's SPDX
// SBOM of an image, which the real cosign verifies as spdxjson; and an
// SBOM someone else made (syft's SPDX of Alpine in the shared data),
// attested by cosign attest --type spdxjson and fetched with cosign
// download attestation, is imported by socle sbom import when its
// signature verifies, and refused once its payload is altered.
func TestSPDXAttestations(t *testing.T) {
	bin := testenv.Cosign(t)
	reg := registrytest.Start(t, registry.Options{})
	dir := t.TempDir()
	if out, err := testenv.RunCosign(t, bin, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign")); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Setenv("COSIGN_PASSWORD", "test password")
	key, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	push := func(repo string) string {
		img := testenv.Image(t, testenv.Layer(t, testenv.DebianBaseFiles(t)))
		ref, _ := name.NewTag(reg.Host + "/" + repo + ":12")
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return ref.Context().Digest(d.String()).String()
	}

	// socle's SPDX, attested by socle, verified by cosign.
	mine := push("apps/attested")
	if out, errOut, code := run(t, dir, "attest", mine, "--type", "spdx", "--key", key, "--local"); code != 0 || !strings.Contains(out, "attested") {
		t.Fatalf("socle attest: %d %s %s", code, out, errOut)
	}
	out, err := testenv.RunCosign(t, bin, "verify-attestation", "--type", "spdxjson", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", mine)
	if err != nil {
		t.Fatalf("cosign verify-attestation: %v\n%s", err, out)
	}
	stmt := decodeStatement(t, lastJSONLine(out))
	if stmt.PredicateType != "https://spdx.dev/Document" || !strings.Contains(string(stmt.Predicate), `"SPDX-2.3"`) || !strings.Contains(string(stmt.Predicate), "GENERATED_FROM") {
		t.Fatalf("the attested SBOM is not socle's SPDX: %s %.300s", stmt.PredicateType, stmt.Predicate)
	}

	// syft's SPDX, attested by cosign, imported by socle.
	theirs := push("apps/vendor")
	syft := testenv.SharedData(t, "sbom-interop", "producers", "syft", "alpine-3.10.syft.spdx-2.2.json")
	if out, err := testenv.RunCosign(t, bin, "attest", "--type", "spdxjson", "--predicate", syft, "--key", key, "--tlog-upload=false", "--allow-insecure-registry", theirs); err != nil {
		t.Fatalf("cosign attest: %v\n%s", err, out)
	}
	env, err := testenv.RunCosign(t, bin, "download", "attestation", "--allow-insecure-registry", theirs)
	if err != nil {
		t.Fatalf("cosign download attestation: %v\n%s", err, env)
	}
	envelope := filepath.Join(dir, "vendor.dsse.json")
	writeFile(t, envelope, lastJSONLine(env), 0o644)
	raw, _ := os.ReadFile(syft)
	want, err := sbom.Import(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, dir, "sbom", "import", envelope, "--attestation-key", pub, "--image", theirs, "--local")
	if code != 0 || !strings.Contains(out, "attestation verified with "+pub) || !strings.Contains(out, fmt.Sprintf("%d packages", len(want.Inventory.Packages))) {
		t.Fatalf("import of the attested SBOM: %d\n%s\n%s", code, out, errOut)
	}

	// The same envelope with a package renamed in its payload.
	var e map[string]any
	json.Unmarshal([]byte(lastJSONLine(env)), &e)
	payload, _ := base64.StdEncoding.DecodeString(e["payload"].(string))
	e["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(payload), "busybox", "busybax", 1)))
	forged, _ := json.Marshal(e)
	writeFile(t, envelope, string(forged), 0o644)
	if _, errOut, code := run(t, dir, "sbom", "import", envelope, "--attestation-key", pub, "--image", theirs, "--local"); code == 0 || !strings.Contains(errOut, "signature") {
		t.Fatalf("a tampered attestation was imported: %d %s", code, errOut)
	}
}

type statement struct {
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// decodeStatement reads the in-toto statement of a DSSE envelope.
func decodeStatement(t *testing.T, envelope string) statement {
	t.Helper()
	var e struct {
		Payload string `json:"payload"`
	}
	if err := json.Unmarshal([]byte(envelope), &e); err != nil {
		t.Fatalf("%v: %.200s", err, envelope)
	}
	b, _ := base64.StdEncoding.DecodeString(e.Payload)
	var st statement
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// lastJSONLine is the last line of cosign's output that is a JSON object
// (it writes its notices to the same stream).
func lastJSONLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "{") {
			return lines[i]
		}
	}
	return ""
}
