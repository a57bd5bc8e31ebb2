package catalog_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/provenance"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
)

// needBuildah fails the test without buildah (.ci/run installs it from
// Debian's packages), unless SOCLE_SKIP_BUILDAH=1 says so.
func needBuildah(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("buildah"); err != nil {
		if os.Getenv("SOCLE_SKIP_BUILDAH") == "1" {
			t.Skip("SOCLE_SKIP_BUILDAH=1: no buildah here")
		}
		t.Fatal("buildah not found (.ci/run installs Debian's buildah; set SOCLE_SKIP_BUILDAH=1 to skip)")
	}
}

// dockerfileChain is the catalog of the test: an assembled Debian image
// (from the host's mirror), and on it three Dockerfiles with RUN steps
// (hand-made): base, runtime, app.
const dockerfileChain = `images:
  - name: debian
    repository: socle/debian
    version: "12.8"
    build:
      assemble:
        suite: bookworm
        packages: [base-files, dash, coreutils]
        epoch: 1700000000
        config: {user: root}
  - name: base
    repository: socle/base
    parent: debian
    version: "1.0"
    build: {dockerfile: {context: base, builder: BUILDER}}
  - name: runtime
    repository: socle/runtime
    parent: base
    version: "2.0"
    build: {dockerfile: {context: runtime, args: {FLAVOUR: lite}, builder: BUILDER}}
  - name: app
    repository: apps/app
    parent: runtime
    version: "3.0"
    build: {dockerfile: {context: app, builder: BUILDER}}
`

func dockerfile(body string) []byte {
	return []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n" + body)
}

// TestDockerfileCascadeBuildah runs the chain with buildah.
func TestDockerfileCascadeBuildah(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Debian packages and builds with buildah")
	}
	needBuildah(t)
	testDockerfileCascade(t, "buildah")
}

// TestDockerfileCascadeBuildKit runs the chain with BuildKit: a
// buildkitd of its own (built by .ci/buildkit.sh), reached by buildctl.
func TestDockerfileCascadeBuildKit(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Debian packages and builds with BuildKit")
	}
	startBuildkitd(t)
	testDockerfileCascade(t, "buildctl")
}

// startBuildkitd runs buildkitd (root, runc, native snapshotter) on a
// socket of the test, and puts buildctl on the PATH with BUILDKIT_HOST.
func startBuildkitd(t *testing.T) {
	t.Helper()
	dir := os.Getenv("SOCLE_BUILDKIT")
	if dir == "" {
		if os.Getenv("SOCLE_SKIP_BUILDKIT") == "1" {
			t.Skip("SOCLE_SKIP_BUILDKIT=1: no BuildKit here")
		}
		t.Fatal("no BuildKit: .ci/run builds it with .ci/buildkit.sh and sets SOCLE_BUILDKIT (or set SOCLE_SKIP_BUILDKIT=1)")
	}
	root := t.TempDir()
	sock := "unix://" + filepath.Join(root, "buildkitd.sock")
	logf, _ := os.Create(filepath.Join(root, "buildkitd.log"))
	cmd := exec.Command(filepath.Join(dir, "buildkitd"), "--root", filepath.Join(root, "state"), "--addr", sock,
		"--oci-worker-snapshotter", "native", "--containerd-worker=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("buildkitd log:\n%s", b)
		}
	})
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("BUILDKIT_HOST", sock)
	deadline := time.Now().Add(30 * time.Second)
	for exec.Command(filepath.Join(dir, "buildctl"), "--addr", sock, "debug", "workers").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatal("buildkitd did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testDockerfileCascade builds the chain for real with builder into the
// embedded registry, then changes the base: the plan rebuilds base,
// runtime and app in order, the old immutable tags stay, the floating
// ones move, lineage runs app → runtime → base, and each build carries a
// SLSA provenance that cosign verifies and that is refused once
// tampered with. A failing RUN in the runtime then skips only the app.
func testDockerfileCascade(t *testing.T, builderTool string) {
	catalogYAML := strings.ReplaceAll(dockerfileChain, "BUILDER", builderTool)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	e := newEnv(t)
	e.write(t, "base/Dockerfile", dockerfile("RUN mkdir -p /opt/base && echo base-1 > /opt/base/version\n"), 0o644)
	e.write(t, "runtime/Dockerfile", dockerfile("ARG FLAVOUR\nRUN echo \"runtime $FLAVOUR on $(cat /opt/base/version)\" > /opt/runtime\n"), 0o644)
	e.write(t, "app/Dockerfile", dockerfile("COPY app.conf /etc/app.conf\nRUN cat /opt/runtime /etc/app.conf > /opt/app.txt\n"), 0o644)
	e.write(t, "app/app.conf", []byte("app=on\n"), 0o644)
	asm, err := assemble.New(assemble.Options{Cache: filepath.Join(os.TempDir(), "socle-apt-test-cache")})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := sign.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := sign.LoadSigner(kp.Private, nil)
	verifier, _ := sign.LoadVerifier("socle.pub", kp.Public)
	pubFile := filepath.Join(t.TempDir(), "socle.pub")
	os.WriteFile(pubFile, kp.Public, 0o644)
	buildahRoot := t.TempDir()
	var mu sync.Mutex
	logs := map[string][]string{}
	builder := func(c *catalog.Catalog) *catalog.Builder {
		return &catalog.Builder{Catalog: c, Store: e.st, Target: e.target, Assembler: asm, Indexer: e.index, By: "test",
			Provenance: signer, BuildahRoot: buildahRoot,
			Progress: func(ev catalog.Event) {
				if ev.Phase == catalog.PhaseLog {
					mu.Lock()
					logs[ev.Name] = append(logs[ev.Name], ev.Message)
					mu.Unlock()
				}
			}}
	}
	c := e.catalog(t, catalogYAML)
	out, err := builder(c).Run(ctx, e.plan(t, c, asm))
	if err != nil {
		t.Fatalf("%v: %+v", err, out)
	}
	first := outcomes(out)
	// The RUN steps ran: the app's file holds what each level wrote.
	app := pull(t, e.reg.Host+"/apps/app@"+first["app"].Digest)
	if got := string(testenv.FileContent(t, app, "opt/app.txt")); got != "runtime lite on base-1\napp=on\n" {
		t.Fatalf("the app's RUN output: %q", got)
	}
	if !strings.Contains(strings.Join(logs["runtime"], "\n"), "RUN echo") {
		t.Errorf("the runtime's build log did not stream: %q", logs["runtime"])
	}

	t.Run("provenance", func(t *testing.T) {
		ref, _ := name.NewDigest(e.reg.Host + "/apps/app@" + first["app"].Digest)
		pred, _, err := provenance.Verify(ctx, ref, []*sign.Verifier{verifier})
		if err != nil {
			t.Fatal(err)
		}
		bd := pred.BuildDefinition
		df, _ := provenance.FileDigest(filepath.Join(e.dir, "app/Dockerfile"))
		if bd.BuildType != provenance.BuildTypePrefix+"dockerfile/v1" || bd.InternalParameters["builder"] != builderTool ||
			bd.ExternalParameters["dockerfile"].(map[string]any)["digest"] != df ||
			!strings.HasPrefix(bd.ExternalParameters["context"].(map[string]any)["digest"].(string), "sha256:") ||
			len(bd.ResolvedDependencies) != 1 || "sha256:"+bd.ResolvedDependencies[0].Digest["sha256"] != first["runtime"].Digest ||
			pred.RunDetails.Builder.Version[builderTool] == "" {
			t.Fatalf("provenance %+v", pred)
		}
		cosign := testenv.Cosign(t)
		if out, err := testenv.RunCosign(t, cosign, "verify-attestation", "--type", "slsaprovenance1", "--key", pubFile, "--insecure-ignore-tlog", ref.String()); err != nil {
			t.Fatalf("cosign verify-attestation: %v\n%s", err, out)
		}
		tamperAttestation(t, ref)
		if out, err := testenv.RunCosign(t, cosign, "verify-attestation", "--type", "slsaprovenance1", "--key", pubFile, "--insecure-ignore-tlog", ref.String()); err == nil {
			t.Fatalf("cosign accepted a tampered provenance:\n%s", out)
		}
		if _, _, err := provenance.Verify(ctx, ref, []*sign.Verifier{verifier}); err == nil {
			t.Fatal("socle accepted a tampered provenance")
		}
	})

	// The base changes: base, runtime and app are rebuilt, in order.
	e.write(t, "base/Dockerfile", dockerfile("RUN mkdir -p /opt/base && echo base-2 > /opt/base/version\n"), 0o644)
	c = e.catalog(t, catalogYAML)
	p := e.plan(t, c, asm)
	if got := strings.Join(stepNames(p), " "); got != "base runtime app" {
		t.Fatalf("plan after the base changed: %s", got)
	}
	out, err = builder(c).Run(ctx, p)
	if err != nil {
		t.Fatalf("%v: %+v", err, out)
	}
	second := outcomes(out)
	for _, s := range []struct{ name, repo, immutable, floating string }{
		{"base", "socle/base", "1.0-debian12.8", "1-debian12"},
		{"runtime", "socle/runtime", "2.0-base1.0", "2-base1"},
		{"app", "apps/app", "3.0-runtime2.0", "3-runtime2"},
	} {
		was, now := first[s.name], second[s.name]
		if now.Status != store.BuildSucceeded || now.Digest == was.Digest {
			t.Errorf("%s: %+v (was %s)", s.name, now, was.Digest)
			continue
		}
		if was.Tag != s.immutable || e.tagDigest(t, s.repo, s.immutable) != was.Digest {
			t.Errorf("%s: the old immutable tag %s moved (built as %s)", s.name, s.immutable, was.Tag)
		}
		if now.Tag != s.immutable+"-r1" || e.tagDigest(t, s.repo, s.floating) != now.Digest {
			t.Errorf("%s: new tag %s, floating %s at %s", s.name, now.Tag, s.floating, e.tagDigest(t, s.repo, s.floating))
		}
	}
	app = pull(t, e.reg.Host+"/apps/app@"+second["app"].Digest)
	if got := string(testenv.FileContent(t, app, "opt/app.txt")); !strings.Contains(got, "base-2") {
		t.Fatalf("the rebuilt app does not carry the new base: %q", got)
	}
	links, err := catalog.Lineage(ctx, e.st, second["app"].Digest)
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for _, l := range links {
		chain = append(chain, l.Digest)
	}
	if want := []string{second["app"].Digest, second["runtime"].Digest, second["base"].Digest, first["debian"].Digest}; strings.Join(chain, " ") != strings.Join(want, " ") {
		t.Fatalf("lineage %v, want %v", chain, want)
	}

	// A failing RUN in the runtime: the build names the step and shows
	// its output; the app is skipped; nothing of either is pushed.
	e.write(t, "runtime/Dockerfile", dockerfile("RUN echo about to fail && false\n"), 0o644)
	c = e.catalog(t, catalogYAML)
	out, err = builder(c).Run(ctx, e.plan(t, c, asm))
	if err == nil {
		t.Fatal("a failing RUN built")
	}
	third := outcomes(out)
	if third["runtime"].Status != store.BuildFailed || !strings.Contains(third["runtime"].Error, "failed at ") ||
		!strings.Contains(third["runtime"].Error, "RUN echo about to fail && false") || !strings.Contains(third["runtime"].Error, "about to fail") {
		t.Errorf("runtime: %+v", third["runtime"])
	}
	if third["app"].Status != store.BuildSkipped || third["base"].Status != "" {
		t.Errorf("app %+v, base %+v", third["app"], third["base"])
	}
	if e.tagDigest(t, "apps/app", "3-runtime2") != second["app"].Digest {
		t.Error("the skipped app's floating tag moved")
	}
}

func pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// tamperAttestation rewrites the payload of the provenance attached to
// ref (the base digest it names), keeping the signature: what an
// attacker with push rights to the repository could do.
func tamperAttestation(t *testing.T, ref name.Digest) {
	t.Helper()
	attRef := ref.Context().Tag(strings.Replace(ref.DigestStr(), ":", "-", 1) + ".att")
	img, err := remote.Image(attRef)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	mf, _ := img.Manifest()
	out := empty.Image
	out = mutate.MediaType(out, types.OCIManifestSchema1)
	out = mutate.ConfigMediaType(out, types.OCIConfigJSON)
	for i, l := range layers {
		rc, _ := l.Uncompressed()
		var env map[string]any
		json.NewDecoder(rc).Decode(&env)
		rc.Close()
		payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
		payload = []byte(strings.Replace(string(payload), `"name":"base"`, `"name":"a trusted base"`, 1))
		env["payload"] = base64.StdEncoding.EncodeToString(payload)
		b, _ := json.Marshal(env)
		out, err = mutate.Append(out, mutate.Addendum{Layer: static.NewLayer(b, types.MediaType(mf.Layers[i].MediaType)), Annotations: mf.Layers[i].Annotations})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := remote.Write(attRef, out); err != nil {
		t.Fatal(err)
	}
}
