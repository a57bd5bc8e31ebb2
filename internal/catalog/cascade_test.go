package catalog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/mutate"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

// env is a registry, a SQLite store and a scanner: what `socle build`
// runs against.
type env struct {
	reg    *registrytest.Server
	st     store.Store
	target catalog.Target
	index  catalog.ImageIndexer
	dir    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	an, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	reg := registrytest.Start(t, registry.Options{})
	return &env{
		reg: reg, st: st, dir: t.TempDir(),
		target: catalog.Target{Registry: reg.Host},
		index:  catalog.ImageIndexer{Scanner: scan.New(st, an), Tags: st},
	}
}

// write puts a file under the catalog directory.
func (e *env) write(t *testing.T, rel string, data []byte, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(e.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// catalog writes socle.yaml and loads it.
func (e *env) catalog(t *testing.T, yml string) *catalog.Catalog {
	t.Helper()
	e.write(t, "socle.yaml", []byte(yml), 0o644)
	f, err := config.Load(filepath.Join(e.dir, "socle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.New(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) plan(t *testing.T, c *catalog.Catalog, pkgs catalog.PackageResolver, names ...string) *catalog.Plan {
	t.Helper()
	p, err := (&catalog.Planner{Catalog: c, Store: e.st, Target: e.target, Packages: pkgs}).Plan(context.Background(), catalog.PlanOptions{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tagDigest is where a tag of a catalog repository points ("" if nowhere).
func (e *env) tagDigest(t *testing.T, repo, tag string) string {
	t.Helper()
	r, err := e.target.Repository(repo)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.target.TagDigest(context.Background(), r.Tag(tag))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func stepNames(p *catalog.Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, s.Name)
	}
	return out
}

func outcomes(out []catalog.Outcome) map[string]catalog.Outcome {
	m := map[string]catalog.Outcome{}
	for _, o := range out {
		m[o.Name] = o
	}
	return m
}

// cascadeCatalog is the three-level socle of the issue: an assembled
// bookworm base, a runtime that appends the real Go binary of the shared
// data, and two apps whose files are hand-made here.
func cascadeCatalog(packages string) string {
	return `images:
  - name: debian
    repository: socle/debian
    version: "12.8"
    build:
      assemble:
        suite: bookworm
        packages: [` + packages + `]
        epoch: 1700000000
  - name: tools
    repository: socle/tools
    parent: debian
    version: 1.2.0
    build:
      append:
        layers: [{from: tools/age-keygen, to: /usr/local/bin/age-keygen}]
        config: {entrypoint: [/usr/local/bin/age-keygen]}
  - name: billing
    repository: apps/billing
    parent: tools
    version: 2.4.1
    build:
      append:
        layers: [{from: billing, to: /app}]
  - name: ledger
    repository: apps/ledger
    parent: tools
    version: 1.0.0
    build:
      append:
        layers: [{from: ledger/app.conf, to: /etc/ledger/app.conf}]
`
}

// TestRebuildCascade builds the three-level catalog from the real Debian
// archive into the embedded registry, changes the base's packages, and
// checks that the plan and the build carry the change down in order.
func TestRebuildCascade(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Debian packages")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e := newEnv(t)
	e.write(t, "tools/age-keygen", testenv.ReadShared(t, "gobin", "age-keygen"), 0o755)
	// Hand-made app content.
	e.write(t, "billing/billing.properties", []byte("currency=EUR\n"), 0o644)
	e.write(t, "ledger/app.conf", []byte("ledger=on\n"), 0o644)
	cache := filepath.Join(os.TempDir(), "socle-apt-test-cache")
	asm, err := assemble.New(assemble.Options{Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []catalog.Event
	builder := func(c *catalog.Catalog) *catalog.Builder {
		return &catalog.Builder{Catalog: c, Store: e.st, Target: e.target, Assembler: asm, Indexer: e.index, By: "test",
			Progress: func(ev catalog.Event) { mu.Lock(); events = append(events, ev); mu.Unlock() }}
	}

	c := e.catalog(t, cascadeCatalog("base-files, ca-certificates, libc6, tzdata"))
	p := e.plan(t, c, asm)
	if got := strings.Join(stepNames(p), " "); got != "debian tools billing ledger" && got != "debian tools ledger billing" {
		t.Fatalf("first plan: %s", got)
	}
	for _, s := range p.Steps {
		if len(s.Reasons) == 0 || s.Reasons[0] != catalog.ReasonNeverBuilt {
			t.Errorf("%s: reasons %v", s.Name, s.Reasons)
		}
	}
	out, err := builder(c).Run(ctx, p)
	if err != nil {
		t.Fatalf("%v: %+v", err, out)
	}
	first := outcomes(out)
	checkBuilt(t, e, first)
	// The floating tags of the convention point at the new digests.
	if got := e.tagDigest(t, "socle/tools", "1-debian12"); got != first["tools"].Digest {
		t.Fatalf("tools:1-debian12 = %s, built %s", got, first["tools"].Digest)
	}
	if p := e.plan(t, c, asm); len(p.Steps) != 0 {
		t.Fatalf("nothing changed, yet the plan has %v", stepNames(p))
	}

	// The base gets one more package: all four are planned, base first.
	c = e.catalog(t, cascadeCatalog("base-files, ca-certificates, libc6, tzdata, netbase"))
	p = e.plan(t, c, asm)
	levels := map[string]int{}
	for _, s := range p.Steps {
		levels[s.Name] = s.Level
	}
	if len(p.Steps) != 4 || p.Steps[0].Name != "debian" || p.Steps[1].Name != "tools" || levels["billing"] != 2 || levels["ledger"] != 2 {
		t.Fatalf("second plan: %v %v", stepNames(p), levels)
	}
	if r := p.Step("debian").Reasons; len(r) != 1 || r[0] != catalog.ReasonCatalogChanged {
		t.Errorf("debian reasons %v", r)
	}
	if r := p.Step("billing").Reasons; len(r) != 1 || r[0] != catalog.ReasonParentRebuilt+": tools" {
		t.Errorf("billing reasons %v", r)
	}
	// The plan says which floating tags move, and from where.
	for _, m := range p.Step("tools").Moves {
		if m.From != first["tools"].Digest {
			t.Errorf("tools %s moves from %s, was at %s", m.Tag, m.From, first["tools"].Digest)
		}
	}
	if !p.Step("debian").TagTaken {
		t.Error("the base's immutable tag is taken; the plan must say so")
	}
	events = nil
	out, err = builder(c).Run(ctx, p)
	if err != nil {
		t.Fatalf("%v: %+v", err, out)
	}
	second := outcomes(out)
	for _, s := range []struct{ name, repo, immutable, floating string }{
		{"debian", "socle/debian", "12.8", "12"},
		{"tools", "socle/tools", "1.2.0-debian12.8", "1-debian12"},
		{"billing", "apps/billing", "2.4.1-tools1.2.0", "2-tools1"},
		{"ledger", "apps/ledger", "1.0.0-tools1.2.0", "1-tools1"},
	} {
		was, now := first[s.name], second[s.name]
		if now.Status != store.BuildSucceeded || now.Digest == was.Digest {
			t.Errorf("%s: %+v (was %s)", s.name, now, was.Digest)
			continue
		}
		// The old immutable tag stays; the new build gets a revision.
		if was.Tag != s.immutable || e.tagDigest(t, s.repo, s.immutable) != was.Digest {
			t.Errorf("%s: old immutable tag %s moved", s.name, s.immutable)
		}
		if now.Tag != s.immutable+"-r1" || e.tagDigest(t, s.repo, now.Tag) != now.Digest {
			t.Errorf("%s: new tag %q", s.name, now.Tag)
		}
		if !contains(now.Tags, s.floating) {
			t.Errorf("%s: tags %v lack %s", s.name, now.Tags, s.floating)
		}
		for _, ft := range now.Tags[1:] {
			if got := e.tagDigest(t, s.repo, ft); got != now.Digest {
				t.Errorf("%s: floating %s at %s, built %s", s.name, ft, got, now.Digest)
			}
		}
	}
	if evs := phases(events, "tools"); strings.Join(evs, ",") != "building,pushed" {
		t.Errorf("tools events %v", evs)
	}
	// The SBOM of the new base lists netbase, as the scanner sees it.
	pkgs, err := e.st.ImagePackages(ctx, second["debian"].Digest)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, pk := range pkgs {
		found = found || pk.Name == "netbase"
	}
	if !found {
		t.Error("the rebuilt base's SBOM lacks netbase")
	}

	// Lineage: app → runtime → base.
	links, err := catalog.Lineage(ctx, e.st, second["billing"].Digest)
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for _, l := range links {
		chain = append(chain, l.Digest)
	}
	want := []string{second["billing"].Digest, second["tools"].Digest, second["debian"].Digest}
	if strings.Join(chain, " ") != strings.Join(want, " ") {
		t.Fatalf("lineage %v, want %v", chain, want)
	}
	if links[1].Via == "" || links[2].Via == "" {
		t.Errorf("lineage does not say how each base was found: %+v", links)
	}
}

func phases(evs []catalog.Event, name string) []string {
	var out []string
	for _, e := range evs {
		if e.Name == name {
			out = append(out, e.Phase)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestFailureStopsOnlyDescendants breaks the Dockerfile builder (fault
// injection: no builder is found) and checks that only the images built
// on the broken one are skipped.
func TestFailureStopsOnlyDescendants(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	// A hand-made external parent, pushed first.
	base := testenv.Image(t, testenv.Layer(t, testenv.DebianBaseFiles(t)))
	pushImage(t, base, e.reg.Host+"/ext/debian:12")
	e.write(t, "rt/age-keygen", testenv.ReadShared(t, "gobin", "age-keygen"), 0o755)
	e.write(t, "app/hello.txt", []byte("hand-made\n"), 0o644)
	e.write(t, "web/Dockerfile", []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"), 0o644)
	c := e.catalog(t, `images:
  - name: rt
    repository: ext/rt
    parent: `+e.reg.Host+`/ext/debian:12
    version: "1.0"
    build: {append: {layers: [{from: rt/age-keygen, to: /usr/bin/age-keygen}]}}
  - name: web
    repository: ext/web
    parent: rt
    version: "3.1"
    build: {dockerfile: {context: web}}
  - name: webapp
    repository: ext/webapp
    parent: web
    version: "1.0"
    build: {append: {layers: [{from: app, to: /srv}]}}
  - name: app
    repository: ext/app
    parent: rt
    version: "2.0"
    build: {append: {layers: [{from: app, to: /app}]}}
`)
	p := e.plan(t, c, nil)
	if len(p.Notes) == 0 {
		t.Error("a plan without package checks must say so")
	}
	broken := errors.New("no BuildKit here (injected)")
	b := &catalog.Builder{Catalog: c, Store: e.st, Target: e.target, Indexer: e.index,
		Dockerfile: func(context.Context, string) (*mutate.DockerfileBuilder, error) { return nil, broken }}
	out, err := b.Run(ctx, p)
	if !errors.Is(err, catalog.ErrBuildsFailed) {
		t.Fatalf("err = %v", err)
	}
	got := outcomes(out)
	if got["rt"].Status != store.BuildSucceeded || got["app"].Status != store.BuildSucceeded {
		t.Errorf("independent images: %+v %+v", got["rt"], got["app"])
	}
	if got["web"].Status != store.BuildFailed || !strings.Contains(got["web"].Error, "injected") {
		t.Errorf("web: %+v", got["web"])
	}
	if got["webapp"].Status != store.BuildSkipped {
		t.Errorf("webapp: %+v", got["webapp"])
	}
	if d := e.tagDigest(t, "ext/webapp", "1.0-web3.1"); d != "" {
		t.Errorf("a skipped image was pushed: %s", d)
	}
	// The failure is recorded, and the next plan still wants both.
	hist, err := e.st.BuildHistory(ctx, "web", 10)
	if err != nil || len(hist) != 1 || hist[0].Status != store.BuildFailed {
		t.Fatalf("history %+v %v", hist, err)
	}
	p = e.plan(t, c, nil)
	if got := strings.Join(stepNames(p), " "); got != "web webapp" {
		t.Errorf("after the failure the plan is %q", got)
	}
	// The app was built on the external parent: its lineage reaches it
	// through the annotations and the layers.
	links, err := catalog.Lineage(ctx, e.st, got["app"].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if len(links) < 2 || links[1].Digest != got["rt"].Digest {
		t.Fatalf("lineage %+v", links)
	}
}

func pushImage(t *testing.T, img v1.Image, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

// checkBuilt runs socle check's image rules on the images a build made,
// as socle serve does when it scans them: every image checks, and what
// is found in the layers of its base (named by the annotations the build
// writes) is attributed to the base.
func checkBuilt(t *testing.T, e *env, built map[string]catalog.Outcome) {
	t.Helper()
	ctx := context.Background()
	k := check.Keeper{St: e.st}
	for step, o := range built {
		rec, err := e.st.Image(ctx, o.Digest)
		if err != nil {
			t.Fatal(err)
		}
		repo := rec.Repository
		if !strings.HasPrefix(repo, e.reg.Host+"/") {
			repo = e.reg.Host + "/" + repo
		}
		ref, err := name.NewDigest(repo + "@" + o.Digest)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if err := k.Check(ctx, rec.Repository, o.Digest, img); err != nil {
			t.Fatalf("checking %s: %v", step, err)
		}
		kept, err := e.st.ImageCheck(ctx, o.Digest)
		if err != nil {
			t.Fatal(err)
		}
		res, err := check.DecodeResult(kept)
		if err != nil {
			t.Fatal(err)
		}
		baseLayers := map[string]bool{}
		if rec.BaseDigest != "" {
			base, err := e.st.Image(ctx, rec.BaseDigest)
			if err != nil {
				t.Fatalf("%s's base: %v", step, err)
			}
			ls, _ := img.Layers()
			for i := range base.Layers {
				if i < len(ls) {
					d, _ := ls[i].DiffID()
					baseLayers[d.String()] = true
				}
			}
		}
		fromBase := 0
		for _, f := range res.Findings {
			if f.Layer != "" && baseLayers[f.Layer] != (f.Base != "") {
				t.Errorf("%s: %s %s in layer %s attributed to %q", step, f.Rule, f.Object, f.Layer, f.Base)
			}
			if f.Base != "" {
				fromBase++
			}
		}
		t.Logf("%s: %d check findings, %d attributed to its base", step, len(res.Findings), fromBase)
		if res.Layers.Total == 0 {
			t.Errorf("%s: empty layer report", step)
		}
	}
}
