package sign_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/testenv"
)

var ctx = context.Background()

// pushed pushes a hand-made image (the real bookworm dpkg status in one
// layer) and returns its digest reference.
func pushed(t *testing.T, host, repo string) name.Digest {
	t.Helper()
	img := testenv.Image(t, testenv.Layer(t, testenv.DebianBaseFiles(t)))
	tag, err := name.NewTag(host + "/" + repo + ":1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return tag.Context().Digest(d.String())
}

func keys(t *testing.T) (*sign.Signer, *sign.Verifier, sign.KeyPair) {
	t.Helper()
	kp, err := sign.GenerateKeyPair([]byte("test password"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := sign.LoadSigner(kp.Private, []byte("test password"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := sign.LoadVerifier("test.pub", kp.Public)
	if err != nil {
		t.Fatal(err)
	}
	return s, v, kp
}

func TestSignVerifyAttest(t *testing.T) {
	reg := registrytest.Start(t, registry.Options{})
	ref := pushed(t, reg.Host, "team/app")
	s, v, kp := keys(t)
	if _, err := sign.LoadSigner(kp.Private, []byte("wrong")); err == nil {
		t.Fatal("a wrong password decrypted the key")
	}
	_, other, _ := keys(t)
	if _, err := sign.VerifySignature(ctx, ref, []*sign.Verifier{v}); !errors.Is(err, sign.ErrNoSignature) {
		t.Fatalf("unsigned image: %v", err)
	}
	if err := s.Sign(ctx, ref, map[string]any{"by": "test"}); err != nil {
		t.Fatal(err)
	}
	// Signing again adds nothing.
	if err := s.Sign(ctx, ref, map[string]any{"by": "test"}); err != nil {
		t.Fatal(err)
	}
	key, err := sign.VerifySignature(ctx, ref, []*sign.Verifier{other, v})
	if err != nil || key != "test.pub" {
		t.Fatalf("verify: %q %v", key, err)
	}
	if _, err := sign.VerifySignature(ctx, ref, []*sign.Verifier{other}); !errors.Is(err, sign.ErrNoSignature) {
		t.Fatalf("another key verified: %v", err)
	}
	sigTag, _ := name.NewTag(reg.Host + "/team/app:" + strings.Replace(ref.DigestStr(), ":", "-", 1) + ".sig")
	sigImg, err := remote.Image(sigTag)
	if err != nil {
		t.Fatal(err)
	}
	if ls, _ := sigImg.Layers(); len(ls) != 1 {
		t.Fatalf("signing twice left %d signature layers", len(ls))
	}

	// An SBOM attestation, and a custom one.
	sbom := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}`)
	if err := s.Attest(ctx, ref, "cyclonedx", sbom, time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Attest(ctx, ref, sign.PredicatePromotion, []byte(`{"environment":"qa"}`), time.Unix(1700000000, 0)); err != nil {
		t.Fatal(err)
	}
	sts, err := sign.VerifyAttestations(ctx, ref, []*sign.Verifier{v}, sign.PredicateCycloneDX)
	if err != nil || len(sts) != 1 || !strings.Contains(string(sts[0].Predicate), "CycloneDX") {
		t.Fatalf("attestations: %+v %v", sts, err)
	}
	all, err := sign.VerifyAttestations(ctx, ref, []*sign.Verifier{v}, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("all attestations: %d %v", len(all), err)
	}
	if sts, err := sign.VerifyAttestations(ctx, ref, []*sign.Verifier{other}, ""); err != nil || len(sts) != 0 {
		t.Fatalf("another key verified attestations: %d %v", len(sts), err)
	}
}

func cosignCLI(t *testing.T) string { return testenv.Cosign(t) }

func runCosign(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := testenv.RunCosign(t, bin, args...)
	if err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestCosignInterop: socle's signatures and attestations verify with the
// cosign CLI, and the CLI's verify in socle.
func TestCosignInterop(t *testing.T) {
	bin := cosignCLI(t)
	reg := registrytest.Start(t, registry.Options{})
	s, v, kp := keys(t)
	dir := t.TempDir()
	pub := filepath.Join(dir, "socle.pub")
	priv := filepath.Join(dir, "socle.key")
	os.WriteFile(pub, kp.Public, 0o644)
	os.WriteFile(priv, kp.Private, 0o600)

	// socle signs and attests; cosign verifies.
	ref := pushed(t, reg.Host, "interop/socle-signed")
	if err := s.Sign(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Attest(ctx, ref, "cyclonedx", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	runCosign(t, bin, "verify", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", ref.String())
	runCosign(t, bin, "verify-attestation", "--type", "cyclonedx", "--key", pub, "--insecure-ignore-tlog", "--allow-insecure-registry", ref.String())

	// cosign makes its own keys, signs and attests; socle verifies.
	runCosign(t, bin, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign"))
	ref2 := pushed(t, reg.Host, "interop/cosign-signed")
	runCosign(t, bin, "sign", "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--allow-insecure-registry", ref2.String())
	pred := filepath.Join(dir, "bom.json")
	os.WriteFile(pred, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), 0o644)
	runCosign(t, bin, "attest", "--type", "cyclonedx", "--predicate", pred, "--key", filepath.Join(dir, "cosign.key"), "--tlog-upload=false", "--allow-insecure-registry", ref2.String())
	cv, err := sign.LoadVerifierFile(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := sign.VerifySignature(ctx, ref2, []*sign.Verifier{v, cv}); err != nil || !strings.HasSuffix(k, "cosign.pub") {
		t.Fatalf("cosign's signature: %q %v", k, err)
	}
	if _, err := sign.VerifySignature(ctx, ref2, []*sign.Verifier{v}); err == nil {
		t.Fatal("cosign's signature verified with socle's key")
	}
	sts, err := sign.VerifyAttestations(ctx, ref2, []*sign.Verifier{cv}, sign.PredicateCycloneDX)
	if err != nil || len(sts) != 1 {
		t.Fatalf("cosign's attestation: %d %v", len(sts), err)
	}
	// cosign's encrypted private key loads in socle, and signs.
	cs, err := sign.LoadSignerFile(filepath.Join(dir, "cosign.key"))
	if err == nil {
		t.Fatal("loaded without COSIGN_PASSWORD")
	}
	t.Setenv("COSIGN_PASSWORD", "test password")
	if cs, err = sign.LoadSignerFile(filepath.Join(dir, "cosign.key")); err != nil {
		t.Fatal(err)
	}
	ref3 := pushed(t, reg.Host, "interop/third")
	if err := cs.Sign(ctx, ref3, nil); err != nil {
		t.Fatal(err)
	}
	runCosign(t, bin, "verify", "--key", filepath.Join(dir, "cosign.pub"), "--insecure-ignore-tlog", "--allow-insecure-registry", ref3.String())
}

// TestCosignReferrers: cosign signs and attaches an SBOM (hand-made)
// through the OCI
// 1.1 referrers API of socle's registry, and finds them again that way;
// the tag scheme of TestCosignInterop works beside it.
func TestCosignReferrers(t *testing.T) {
	bin := cosignCLI(t)
	reg := registrytest.Start(t, registry.Options{})
	dir := t.TempDir()
	runCosign(t, bin, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign"))
	ref := pushed(t, reg.Host, "referrers/app")
	key := filepath.Join(dir, "cosign.key")
	t.Setenv("COSIGN_EXPERIMENTAL", "1")
	runCosign(t, bin, "sign", "--key", key, "--tlog-upload=false", "--allow-http-registry", "--registry-referrers-mode=oci-1-1", ref.String())
	runCosign(t, bin, "verify", "--key", filepath.Join(dir, "cosign.pub"), "--insecure-ignore-tlog", "--allow-http-registry", "--experimental-oci11", ref.String())
	pred := filepath.Join(dir, "bom.json")
	os.WriteFile(pred, []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), 0o644)
	runCosign(t, bin, "attach", "sbom", "--type", "cyclonedx", "--sbom", pred, "--allow-http-registry", "--registry-referrers-mode=oci-1-1", ref.String())
	// The registry lists what cosign attached, by the referrers API.
	resp, err := http.Get("http://" + reg.Host + "/v2/referrers/app/referrers/" + ref.DigestStr())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var idx struct {
		Manifests []struct{ ArtifactType string }
	}
	json.NewDecoder(resp.Body).Decode(&idx)
	if len(idx.Manifests) < 2 {
		t.Fatalf("the referrers API lists %d artifacts after cosign sign and attest", len(idx.Manifests))
	}
	tree := runCosign(t, bin, "tree", "--allow-http-registry", "--experimental-oci11", ref.String())
	if !strings.Contains(tree, "sha256:") {
		t.Fatalf("cosign tree found nothing:\n%s", tree)
	}
}

// TestOrasAttach: the oras CLI attaches an artifact (hand-made) to an
// image in socle's registry and discovers it, through the referrers API.
func TestOrasAttach(t *testing.T) {
	bin := os.Getenv("SOCLE_ORAS")
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(t), ".ci", "cache", "bin", "oras")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("oras is not built: run .ci/run, or set SOCLE_ORAS: %v", err)
	}
	reg := registrytest.Start(t, registry.Options{})
	ref := pushed(t, reg.Host, "oras/app")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sbom.json"), []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`), 0o644)
	oras := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("oras %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	oras("attach", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--artifact-type", "application/vnd.cyclonedx+json", ref.String(), "sbom.json")
	out := oras("discover", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--artifact-type", "application/vnd.cyclonedx+json", ref.String())
	if !strings.Contains(out, "application/vnd.cyclonedx+json") || !strings.Contains(out, "sha256:") {
		t.Fatalf("oras discover:\n%s", out)
	}
}
