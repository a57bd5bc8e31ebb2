package promote_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/provenance"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

var ctx = context.Background()

// The environments of the pipeline test. prod keeps its tags in a
// repository of its own.
const environments = `environments:
  - name: dev
  - name: qa
    gates:
      signed_by: [release.pub]
  - name: staging
    gates:
      signed_by: [release.pub]
      soak: 24h
      max_severity: high
      sbom_attestation: true
  - name: prod
    repository: "{{.Registry}}/prod/{{.Path}}"
    roles: [approver, admin]
    gates:
      signed_by: [release.pub]
      approvals: 2
      policy: prod.rego
      policies: [builtin:no-critical-fixable]
`

// prod.rego is a hand-made policy over the promotion document.
const prodPolicy = `package socle

deny contains msg if {
	not input.image.config.config.Labels["org.opencontainers.image.source"]
	msg := "prod images must name their source (org.opencontainers.image.source)"
}

deny contains msg if {
	some f in input.findings
	f.severity == "CRITICAL"
	msg := sprintf("critical finding %s", [f.id])
}

deny contains msg if {
	count([h | some h in input.history; h.environment == "staging"; h.state == "done"]) == 0
	msg := "never reached staging"
}
`

type fixture struct {
	t       testing.TB
	reg     *registrytest.Server
	st      store.Store
	p       *promote.Promoter
	signer  *sign.Signer
	release *sign.Verifier
	clock   time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	// The real GHSA advisory for minimist (CVE-2021-44906, critical).
	im := vuln.NewImporter(st, "ghsa")
	if err := im.ImportPath(ctx, testenv.SharedData(t, "osv", "ghsa", "GHSA-xvch-5gv4-984h.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := im.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	kp, err := sign.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "release.pub"), kp.Public, 0o644)
	os.WriteFile(filepath.Join(dir, "prod.rego"), []byte(prodPolicy), 0o644)
	os.WriteFile(filepath.Join(dir, "socle.yaml"), []byte(environments), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "socle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := sign.LoadSigner(kp.Private, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	release, _ := sign.LoadVerifier("release.pub", kp.Public)
	an, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	sc := scan.New(st, an)
	f := &fixture{t: t, reg: registrytest.Start(t, registry.Options{}), st: st, signer: signer, release: release,
		clock: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)}
	f.p = &promote.Promoter{
		Store: st, Envs: cfg.Environments, Dir: dir, Signer: signer,
		Now: func() time.Time { return f.clock },
		Ensure: func(ctx context.Context, ref name.Digest) error {
			return sc.EnsureIndexed(ctx, st, ref, source.Options{})
		},
	}
	return f
}

// image pushes a hand-made image: the real bookworm package database and
// a minimist package.json at version, with or without a source label.
func (f *fixture) image(tag, minimist string, labelled bool) name.Digest {
	f.t.Helper()
	img := testenv.Image(f.t, testenv.Layer(f.t, testenv.DebianBaseFiles(f.t)), testenv.Layer(f.t, []testenv.File{
		{Path: "app/node_modules/minimist/package.json", Content: []byte(`{"name":"minimist","version":"` + minimist + `"}`)},
		{Path: "app/VERSION", Content: []byte(tag + "\n")},
	}))
	if labelled {
		cfg, _ := img.ConfigFile()
		cfg = cfg.DeepCopy()
		cfg.Config.Labels = map[string]string{"org.opencontainers.image.source": "https://example.invalid/web"}
		var err error
		if img, err = mutate.ConfigFile(img, cfg); err != nil {
			f.t.Fatal(err)
		}
	}
	ref, _ := name.NewTag(f.reg.Host + "/apps/web:" + tag)
	if err := remote.Write(ref, img); err != nil {
		f.t.Fatal(err)
	}
	d, _ := img.Digest()
	return ref.Context().Digest(d.String())
}

func (f *fixture) promote(ref name.Digest, to string, who promote.Actor) (*promote.Result, error) {
	f.t.Helper()
	return f.p.Promote(ctx, promote.Request{Image: ref.String(), To: to, Actor: who})
}

// mustPass promotes and fails the test unless the tag moved.
func (f *fixture) mustPass(ref name.Digest, to string, who promote.Actor) *promote.Result {
	f.t.Helper()
	res, err := f.promote(ref, to, who)
	if err != nil {
		f.t.Fatalf("promote %s to %s: %v (%+v)", short(ref), to, err, gates(res))
	}
	if res.Promotion.State != store.PromotionDone {
		f.t.Fatalf("promote %s to %s: %s (%+v)", short(ref), to, res.Promotion.State, gates(res))
	}
	return res
}

// mustBlock promotes and checks that exactly the named gates (comma
// separated) blocked.
func (f *fixture) mustBlock(ref name.Digest, to string, who promote.Actor, gate, detail string) {
	f.t.Helper()
	res, err := f.promote(ref, to, who)
	if !errors.Is(err, promote.ErrBlocked) {
		f.t.Fatalf("promote %s to %s: want blocked by %s, got %v", short(ref), to, gate, err)
	}
	var failed []string
	for _, g := range res.Gates {
		if !g.Passed && !g.Pending {
			failed = append(failed, g.Gate)
			if strings.Contains(gate, g.Gate) && !strings.Contains(g.Detail, detail) && !strings.Contains(gate, ",") {
				f.t.Errorf("%s gate says %q, want %q", gate, g.Detail, detail)
			}
		}
	}
	if strings.Join(failed, ",") != gate {
		f.t.Fatalf("promote %s to %s: blocked by %v, want %s", short(ref), to, failed, gate)
	}
}

func (f *fixture) tag(repo, tag string) string {
	f.t.Helper()
	t, _ := name.NewTag(f.reg.Host + "/" + repo + ":" + tag)
	desc, err := remote.Head(t)
	if err != nil {
		return ""
	}
	return desc.Digest.String()
}

func gates(r *promote.Result) []promote.Gate {
	if r == nil {
		return nil
	}
	return r.Gates
}

func short(ref name.Digest) string { return ref.DigestStr()[:19] }

var (
	dev   = promote.Actor{Name: "dave", Role: store.RoleDeveloper}
	carol = promote.Actor{Name: "carol", Role: store.RoleApprover}
	ann   = promote.Actor{Name: "ann", Role: store.RoleApprover}
	bob   = promote.Actor{Name: "bob", Role: store.RoleApprover}
	root  = promote.Actor{Name: "root", Role: store.RoleAdmin}
)

// toStaging takes ref through dev, qa and staging, signing and attesting
// it, with the soak time passing.
func (f *fixture) toStaging(ref name.Digest) {
	f.t.Helper()
	f.mustPass(ref, "dev", dev)
	if err := f.signer.Sign(ctx, ref, nil); err != nil {
		f.t.Fatal(err)
	}
	if err := f.signer.Attest(ctx, ref, "cyclonedx", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), f.clock); err != nil {
		f.t.Fatal(err)
	}
	f.mustPass(ref, "qa", dev)
	f.clock = f.clock.Add(25 * time.Hour)
	f.mustPass(ref, "staging", dev)
}

// TestPipeline takes images dev → qa → staging → prod in the embedded
// registry and shows each gate blocking when its condition fails and
// passing when it holds. Each step is a subtest that rebinds the
// fixture to its own t.
func TestPipeline(t *testing.T) {
	p := &pipeline{f: newFixture(t)}
	step := func(name string, run func(p *pipeline, t *testing.T)) testenv.Step {
		return testenv.Step{Name: name, Run: func(t *testing.T) { p.f.t = t; run(p, t) }}
	}
	testenv.RunSteps(t, []testenv.Step{
		step("dev and qa: path and signature", (*pipeline).devAndQA),
		step("staging: soak and SBOM attestation", (*pipeline).staging),
		step("vulnerability gate blocks a critical finding", (*pipeline).vulnerabilityGate),
		step("prod waits for two approvers", (*pipeline).prodApprovals),
		step("the copy to prod moves no layer", (*pipeline).prodCopy),
		step("signature and attestations travel", (*pipeline).provenanceTravels),
		step("policy denies an unlabelled image", (*pipeline).policyGate),
		step("rollback with an override", (*pipeline).rollback),
		step("history and drift", (*pipeline).historyAndDrift),
		step("the audit log holds every step", (*pipeline).auditLog),
	})
}

// pipeline is the state TestPipeline's steps share.
type pipeline struct {
	f *fixture
	// good is the image that reaches prod; next the second one, rolled
	// back; prodID the prod request; prodRef good in prod's repository.
	good, next name.Digest
	prodID     int64
	prodRef    name.Digest
}

// devAndQA: dev has no gates; qa wants a signature; the path is
// enforced.
func (p *pipeline) devAndQA(t *testing.T) {
	f := p.f
	p.good = f.image("1.0.0", "1.2.6", true)
	good := p.good
	f.mustBlock(good, "qa", dev, promote.GatePath+","+promote.GateSignature, "")
	f.mustPass(good, "dev", dev)
	if f.tag("apps/web", "dev") != good.DigestStr() {
		t.Fatal("the dev tag did not move")
	}
	if res, err := f.promote(good, "dev", dev); err != nil || !res.Unchanged {
		t.Fatalf("promoting again: %v %+v", err, res)
	}
	f.mustBlock(good, "qa", dev, promote.GateSignature, "no valid signature")
	if err := f.signer.Sign(ctx, good, nil); err != nil {
		t.Fatal(err)
	}
	f.mustPass(good, "qa", dev)
}

// staging: soak, then the SBOM attestation; the vulnerability gate
// passes (minimist 1.2.6 is fixed).
func (p *pipeline) staging(t *testing.T) {
	f, good := p.f, p.good
	f.mustBlock(good, "staging", dev, promote.GateSoak+","+promote.GateSBOM, "")
	f.clock = f.clock.Add(25 * time.Hour)
	f.mustBlock(good, "staging", dev, promote.GateSBOM, "no CycloneDX or SPDX attestation")
	if err := f.signer.Attest(ctx, good, "cyclonedx", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), f.clock); err != nil {
		t.Fatal(err)
	}
	res := f.mustPass(good, "staging", dev)
	if g := res.Gates; len(g) != 5 || g[3].Gate != promote.GateVulnerabilities || !g[3].Passed {
		t.Fatalf("staging gates %+v", g)
	}
}

// vulnerabilityGate blocks minimist 1.2.5 (real GHSA, critical).
func (p *pipeline) vulnerabilityGate(t *testing.T) {
	f := p.f
	bad := f.image("0.9.0", "1.2.5", true)
	f.mustPass(bad, "dev", dev)
	f.signer.Sign(ctx, bad, nil)
	f.signer.Attest(ctx, bad, "cyclonedx", []byte(`{"bomFormat":"CycloneDX"}`), f.clock)
	f.mustPass(bad, "qa", dev)
	f.clock = f.clock.Add(25 * time.Hour)
	f.mustBlock(bad, "staging", dev, promote.GateVulnerabilities, "GHSA-xvch-5gv4-984h")
}

// prodApprovals: developers may not request prod; approvals come from
// two approvers other than the requester.
func (p *pipeline) prodApprovals(t *testing.T) {
	f, good := p.f, p.good
	if _, err := f.promote(good, "prod", dev); !errors.Is(err, promote.ErrForbidden) {
		t.Fatalf("a developer promoted to prod: %v", err)
	}
	res, err := f.promote(good, "prod", carol)
	if err != nil || res.Promotion.State != store.PromotionAwaitingApproval {
		t.Fatalf("prod request: %v %+v", err, res)
	}
	p.prodID = res.Promotion.ID
	if _, err := f.p.Approve(ctx, p.prodID, carol); !errors.Is(err, promote.ErrForbidden) {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := f.p.Approve(ctx, p.prodID, dev); !errors.Is(err, promote.ErrForbidden) {
		t.Fatalf("a developer approved: %v", err)
	}
	for _, a := range []promote.Actor{ann, ann} {
		res, err := f.p.Approve(ctx, p.prodID, a)
		if err != nil || res.Promotion.State != store.PromotionAwaitingApproval {
			t.Fatalf("first approval: %v %+v", err, res)
		}
	}
	if f.tag("prod/apps/web", "prod") != "" {
		t.Fatal("prod moved with one approval")
	}
}

// prodCopy: the second approval copies to prod's repository, moving
// manifests only (the counting transport observes, it does not answer).
func (p *pipeline) prodCopy(t *testing.T) {
	f, good := p.f, p.good
	counter := &blobCounter{next: http.DefaultTransport}
	f.p.Remote = []remote.Option{remote.WithTransport(counter)}
	res, err := f.p.Approve(ctx, p.prodID, bob)
	f.p.Remote = nil
	if err != nil || res.Promotion.State != store.PromotionDone {
		t.Fatalf("second approval: %v %+v", err, res)
	}
	// The blobs it does move are the small ones of signatures and
	// attestations (and the config the policy reads); never a layer.
	goodImg, err := remote.Image(good)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := goodImg.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		if counter.transferred(d.String()) {
			t.Errorf("the promotion moved layer %s", d)
		}
	}
	if counter.manifests() == 0 || counter.blobTransfers() == 0 {
		t.Fatalf("the counter saw %d manifest and %d blob requests", counter.manifests(), counter.blobTransfers())
	}
	if f.tag("prod/apps/web", "prod") != good.DigestStr() {
		t.Fatal("the prod tag is not on the promoted digest")
	}
	if f.tag("apps/web", "prod") != "" {
		t.Fatal("prod was tagged in the source repository")
	}
}

// provenanceTravels: the signature travelled with the copy, and every
// environment's promotion attestation is there: dev, qa and staging's
// travelled with the copy, prod's was added to it.
func (p *pipeline) provenanceTravels(t *testing.T) {
	f := p.f
	p.prodRef, _ = name.NewDigest(f.reg.Host + "/prod/apps/web@" + p.good.DigestStr())
	if _, err := sign.VerifySignature(ctx, p.prodRef, []*sign.Verifier{f.release}); err != nil {
		t.Fatalf("signature in prod: %v", err)
	}
	sts, err := sign.VerifyAttestations(ctx, p.prodRef, []*sign.Verifier{f.release}, sign.PredicatePromotion)
	var envs []string
	for _, s := range sts {
		for _, e := range []string{"dev", "qa", "staging", "prod"} {
			if strings.Contains(string(s.Predicate), `"environment":"`+e+`"`) {
				envs = append(envs, e)
			}
		}
	}
	if err != nil || strings.Join(envs, " ") != "dev qa staging prod" {
		t.Fatalf("promotion attestations: %v %v", err, envs)
	}
}

// policyGate: an image without a source label is denied in prod, at
// once: approvers are not asked about a promotion a gate blocks.
func (p *pipeline) policyGate(t *testing.T) {
	f := p.f
	unlabelled := f.image("1.0.1", "1.2.6", false)
	f.toStaging(unlabelled)
	res, err := f.promote(unlabelled, "prod", carol)
	if !errors.Is(err, promote.ErrBlocked) || res.Promotion.State != store.PromotionBlocked {
		t.Fatalf("policy: %v %+v", err, res)
	}
	var pol promote.Gate
	for _, g := range res.Gates {
		if g.Gate == promote.GatePolicy {
			pol = g
		}
	}
	if pol.Passed || !strings.Contains(pol.Detail, "must name their source") {
		t.Fatalf("policy gate %+v", pol)
	}
}

// rollback: a second good digest goes to prod, then an admin rolls back
// with an override, which the record keeps.
func (p *pipeline) rollback(t *testing.T) {
	f, good := p.f, p.good
	p.next = f.image("1.1.0", "1.2.6", true)
	f.toStaging(p.next)
	res, _ := f.promote(p.next, "prod", carol)
	f.p.Approve(ctx, res.Promotion.ID, ann)
	res, err := f.p.Approve(ctx, res.Promotion.ID, bob)
	if err != nil {
		t.Fatalf("%v: %+v", err, res.Gates)
	}
	if f.tag("prod/apps/web", "prod") != p.next.DigestStr() {
		t.Fatal("prod is not on the second digest")
	}
	if _, err := f.p.Rollback(ctx, good.Context().Name(), "prod", carol, true, ""); !errors.Is(err, promote.ErrForbidden) {
		t.Fatalf("an approver overrode: %v", err)
	}
	rb, err := f.p.Rollback(ctx, good.Context().Name(), "prod", root, true, "bad release")
	if err != nil || rb.Promotion.Kind != promote.KindRollback || !rb.Promotion.Override {
		t.Fatalf("rollback: %v %+v", err, rb)
	}
	if f.tag("prod/apps/web", "prod") != good.DigestStr() {
		t.Fatal("rollback did not return prod to the first digest")
	}
}

func (p *pipeline) historyAndDrift(t *testing.T) {
	f, good, next := p.f, p.good, p.next
	hist, err := f.p.History(ctx, good.Context().Name(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var done int
	for _, h := range hist {
		if h.State == store.PromotionDone && h.Environment == "prod" {
			done++
		}
	}
	if done != 3 {
		t.Errorf("%d prod promotions in the history", done)
	}
	if d, err := f.p.Drifts(ctx); err != nil || len(d) != 0 {
		t.Fatalf("drift before an edit: %v %+v", err, d)
	}
	moved, _ := name.NewTag(f.reg.Host + "/prod/apps/web:prod")
	desc, _ := remote.Get(p.prodRef.Context().Digest(next.DigestStr()))
	if err := remote.Tag(moved, desc); err != nil {
		t.Fatal(err)
	}
	d, err := f.p.Drifts(ctx)
	if err != nil || len(d) != 1 || d[0].Recorded != good.DigestStr() || d[0].Actual != next.DigestStr() {
		t.Fatalf("drift: %v %+v", err, d)
	}
}

// auditLog: the audit log holds every step and its chain verifies.
func (p *pipeline) auditLog(t *testing.T) {
	evs, err := p.f.st.AuditEvents(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.VerifyAuditChain("", 0, evs); err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, e := range evs {
		actions[e.Action]++
	}
	if actions["promotion.blocked"] < 6 || actions["promotion.approved"] != 4 || actions["promotion.done"] == 0 {
		t.Fatalf("audit actions %v", actions)
	}
}

// TestReconcile settles promotions a crash left moving: done when the
// tag had moved, aborted when it had not.
func TestReconcile(t *testing.T) {
	f := newFixture(t)
	a := f.image("1", "1.2.6", true)
	b := f.image("2", "1.2.6", false)
	for env, ref := range map[string]name.Digest{"dev": a, "qa": b} {
		_, err := f.st.CreatePromotion(ctx, store.Promotion{Repository: ref.Context().Name(), Target: ref.Context().Name(),
			Digest: ref.DigestStr(), Environment: env, Tag: env, State: store.PromotionMoving, Kind: "promote", By: "dave",
			CreatedAt: f.clock}, store.AuditEvent{At: f.clock, Actor: "dave", Action: "promotion.moving"})
		if err != nil {
			t.Fatal(err)
		}
	}
	// a's tag moved before the "crash"; b's did not.
	tag, _ := name.NewTag(a.Context().String() + ":dev")
	desc, _ := remote.Get(a)
	remote.Tag(tag, desc)
	if done, aborted, err := f.p.Reconcile(ctx, time.Minute); err != nil || done+aborted != 0 {
		t.Fatalf("fresh records were settled: %d %d %v", done, aborted, err)
	}
	f.clock = f.clock.Add(2 * time.Minute)
	done, aborted, err := f.p.Reconcile(ctx, time.Minute)
	if err != nil || done != 1 || aborted != 1 {
		t.Fatalf("reconcile: %d done, %d aborted, %v", done, aborted, err)
	}
	deps, _ := f.st.CurrentDeployments(ctx, "dev")
	if len(deps) != 1 || deps[0].Digest != a.DigestStr() {
		t.Fatalf("deployments %+v", deps)
	}
}

// BenchmarkPromote is one promotion to dev with no gates: a tag read,
// a manifest read, the records and the tag move, against the in-process
// registry and a SQLite file.
func BenchmarkPromote(b *testing.B) {
	f := newFixture(b)
	refs := make([]name.Digest, b.N)
	for i := range refs {
		refs[i] = f.image(fmt.Sprintf("b%d", i), "1.2.6", true)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := f.p.Promote(ctx, promote.Request{Image: refs[i].String(), To: "dev", Actor: dev}); err != nil {
			b.Fatal(err)
		}
	}
}

// blobCounter counts registry requests by kind.
type blobCounter struct {
	next                   http.RoundTripper
	mu                     sync.Mutex
	blobGetsOrPuts, manifs int
	paths                  []string
}

// transferred says whether a blob was read or written (not just checked).
func (c *blobCounter) transferred(digest string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.paths {
		if strings.Contains(p, digest) || strings.Contains(p, strings.Replace(digest, ":", "%3A", 1)) {
			return true
		}
	}
	return false
}

func (c *blobCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	switch {
	case strings.Contains(r.URL.Path, "/blobs/") && r.Method != http.MethodHead:
		c.blobGetsOrPuts++
		c.paths = append(c.paths, r.URL.Path+"?"+r.URL.RawQuery)
	case strings.Contains(r.URL.Path, "/manifests/"):
		c.manifs++
	}
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *blobCounter) blobTransfers() int { c.mu.Lock(); defer c.mu.Unlock(); return c.blobGetsOrPuts }
func (c *blobCounter) manifests() int     { c.mu.Lock(); defer c.mu.Unlock(); return c.manifs }

// TestProvenanceGate: an environment requiring provenance blocks an image
// without a SLSA provenance by the release key, and one whose provenance
// another key signed; it passes once the release key's is attached.
func TestProvenanceGate(t *testing.T) {
	f := newFixture(t)
	f.p.Envs = []config.Environment{{Name: "dev", Gates: config.Gates{SignedBy: []string{"release.pub"}, Provenance: true}}}
	ref := f.image("1", "1.2.6", true)
	if err := f.signer.Sign(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	f.mustBlock(ref, "dev", dev, promote.GateProvenance, "no SLSA provenance verified with release.pub")
	// Hand-made provenance, as socle build writes it.
	pred := provenance.Predicate{
		BuildDefinition: provenance.BuildDefinition{BuildType: provenance.BuildTypePrefix + "dockerfile/v1", ExternalParameters: map[string]any{"target": ""}},
		RunDetails:      provenance.RunDetails{Builder: provenance.Builder{ID: "https://socle.dev/builder/dockerfile"}},
	}
	otherKey, _ := sign.GenerateKeyPair(nil)
	other, _ := sign.LoadSigner(otherKey.Private, nil)
	if err := provenance.Attest(ctx, other, ref, pred, f.clock); err != nil {
		t.Fatal(err)
	}
	f.mustBlock(ref, "dev", dev, promote.GateProvenance, "no SLSA provenance verified")
	if err := provenance.Attest(ctx, f.signer, ref, pred, f.clock); err != nil {
		t.Fatal(err)
	}
	res := f.mustPass(ref, "dev", dev)
	var passed bool
	for _, g := range res.Gates {
		passed = passed || (g.Gate == promote.GateProvenance && g.Passed && strings.Contains(g.Detail, "dockerfile/v1"))
	}
	if !passed {
		t.Fatalf("gates %+v", res.Gates)
	}
}

// TestChecksGate: a checks gate with the restricted rule set blocks an
// image that runs as root (the test images set no USER), and a
// conftest-style policy file on the gate's document blocks what it denies
// and lets the rest through.
func TestChecksGate(t *testing.T) {
	f := newFixture(t)
	f.p.Envs = []config.Environment{{Name: "dev", Gates: config.Gates{Checks: []string{"restricted"}}}}
	ref := f.image("1", "1.2.6", true)
	f.mustBlock(ref, "dev", dev, promote.GateChecks, "img-root-user")
	kept, err := f.st.ImageCheck(ctx, ref.DigestStr())
	if err != nil || kept.RulesVersion != check.RulesVersion() {
		t.Fatalf("the gate's check was not kept: %+v %v", kept, err)
	}
	// Hand-made policy in conftest's form, on the promotion document:
	// the labelled image passes, an unlabelled one is denied.
	os.WriteFile(filepath.Join(f.p.Dir, "checks.rego"), []byte(`package main
import rego.v1
deny contains msg if {
	input.environment == "dev"
	not input.image.config.config.Labels["org.opencontainers.image.source"]
	msg := "dev images name their source"
}
`), 0o644)
	f.p.Envs = []config.Environment{{Name: "dev", Gates: config.Gates{Checks: []string{"checks.rego"}}}}
	f.mustPass(ref, "dev", dev)
	f.mustBlock(f.image("2", "1.2.6", false), "dev", dev, promote.GateChecks, "dev images name their source")
}
