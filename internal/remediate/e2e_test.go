package remediate_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/loop"
	"github.com/socle-dev/socle/internal/notify"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/remediate"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

// catalogYAML is a Debian base assembled with libpcre2-8-0 pinned to an
// older version, two append-layer apps whose files are hand-made, and a
// gateway built by buildah from a (hand-made) Dockerfile with a RUN step.
func catalogYAML(pin string) string {
	return `images:
  - name: debian
    repository: socle/debian
    version: "12.8"
    build:
      assemble:
        suite: bookworm
        # pinned: the older version, affected by the derived advisory
        packages: [base-files, dash, coreutils, ` + pin + `]
        epoch: 1700000000
  - name: gateway
    repository: apps/gateway
    parent: debian
    version: 0.9.0
    build:
      dockerfile: {context: gateway, builder: buildah}
  - name: shop
    repository: apps/shop
    parent: debian
    version: 1.0.0
    build:
      append:
        layers: [{from: shop, to: /srv/shop}]
  - name: ledger
    repository: apps/ledger
    parent: debian
    version: 2.1.0
    build:
      append:
        layers: [{from: ledger, to: /srv/ledger}]
`
}

// TestRemediateEndToEnd: a catalog built from an older package version;
// an advisory set derived from real Debian changelogs (labelled derived)
// that affects it and is fixed in the archive's current version; socle
// reports both apps affected, attributes the finding to the base,
// rebuilds the base, rebases both apps and reports zero open findings;
// the run is in the audit log and on the dashboard. Each step is a
// subtest: a failure names its step and stops the ones after it.
func TestRemediateEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Debian packages")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e := newRemediationE2E(ctx, t)
	testenv.RunSteps(t, []testenv.Step{
		{Name: "build the catalog on the old package", Run: e.buildCatalog},
		{Name: "derived advisories open findings", Run: e.importAdvisories},
		{Name: "prod is exposed", Run: e.exposed},
		{Name: "plan attributes the finding to the base", Run: e.plan},
		{Name: "dry run changes nothing", Run: e.dryRun},
		{Name: "apply rebuilds the base and rebases the apps", Run: e.apply},
		{Name: "superseded digests stay exposure until promoted", Run: e.supersededExposure},
		{Name: "the app team fixes its own package", Run: e.appTeamFix},
		{Name: "pins bumped and lineage on the new base", Run: e.pinsAndLineage},
		{Name: "audit log and dashboard show the run", Run: e.auditAndDashboard},
	})
}

// remediationE2E is the state the steps of TestRemediateEndToEnd share.
type remediationE2E struct {
	ctx     context.Context
	st      store.Store
	asm     *assemble.Assembler
	sc      *scan.Scanner
	target  catalog.Target
	dir     string
	cfgPath string
	builder *catalog.Builder
	r       *remediate.Remediator
	// old is the pinned libpcre2-8-0 version; cve the derived advisory.
	old string
	cve string
	// pcre2 are the real changelog pairs the advisories derive from.
	pcre2 []testenv.DebianChangelogPair
	// before holds the first builds' digests, by catalog name.
	before map[string]string
	// applied is the plan the real run carried out; run its fix run.
	applied *remediate.Plan
	run     store.FixRun

	// hook is a real webhook receiver, reached through the notifier
	// socle uses; delivered what it received.
	hook      *httptest.Server
	hookMu    sync.Mutex
	delivered []string
}

func newRemediationE2E(ctx context.Context, t *testing.T) *remediationE2E {
	t.Helper()
	e := &remediationE2E{ctx: ctx, before: map[string]string{}}
	// The real pair: pcre2, installed in the bookworm point release,
	// fixed in bookworm-security.
	pairs, err := testenv.DebianChangelogPairs(testenv.SharedData(t, "debian", "derived", "bookworm-minbase-changelog-cves.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if p.Source == "pcre2" && p.Status == "affected_fix_available" {
			e.pcre2 = append(e.pcre2, p)
		}
	}
	if len(e.pcre2) == 0 {
		t.Fatal("the derived table has no pcre2 pair")
	}
	if e.asm, err = assemble.New(assemble.Options{Cache: filepath.Join(os.TempDir(), "socle-apt-test-cache")}); err != nil {
		t.Fatal(err)
	}
	main, err := e.asm.Resolve(ctx, assemble.Spec{Suite: "bookworm", Packages: []string{"libpcre2-8-0"}})
	if err != nil {
		t.Fatal(err)
	}
	e.old = main.Versions()["libpcre2-8-0"]
	if e.old != e.pcre2[0].Installed {
		t.Skipf("the archive's bookworm has libpcre2-8-0 %s, the derived pair names %s", e.old, e.pcre2[0].Installed)
	}
	e.cve = "SOCLE-DERIVED-DEBIAN-" + e.pcre2[0].CVE
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	an, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	e.sc = scan.New(st, an)
	reg := registrytest.Start(t, registry.Options{})
	e.target = catalog.Target{Registry: reg.Host}
	e.dir = t.TempDir()
	dir := e.dir
	os.MkdirAll(filepath.Join(dir, "shop"), 0o755)
	os.MkdirAll(filepath.Join(dir, "ledger"), 0o755)
	os.WriteFile(filepath.Join(dir, "shop", "index.html"), []byte("hand-made shop\n"), 0o644)
	// The shop also brings a vulnerable npm package of its own (the real
	// GHSA record affects it): that fix is the shop team's, not socle's.
	os.MkdirAll(filepath.Join(dir, "shop", "node_modules", "minimist"), 0o755)
	os.WriteFile(filepath.Join(dir, "shop", "node_modules", "minimist", "package.json"), []byte(`{"name":"minimist","version":"1.2.5"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "ledger", "ledger.conf"), []byte("hand-made ledger\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "gateway"), 0o755)
	os.WriteFile(filepath.Join(dir, "gateway", "Dockerfile"), []byte("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nUSER root\nRUN mkdir -p /etc/gateway && echo routes=on > /etc/gateway/gateway.conf\n"), 0o644)
	e.cfgPath = filepath.Join(dir, "socle.yaml")
	os.WriteFile(e.cfgPath, []byte(catalogYAML("libpcre2-8-0="+e.old)), 0o644)
	e.hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.hookMu.Lock()
		e.delivered = append(e.delivered, r.Header.Get("X-Socle-Event")+" "+string(b))
		e.hookMu.Unlock()
	}))
	t.Cleanup(e.hook.Close)
	return e
}

// load reads the catalog of socle.yaml as it is now.
func (e *remediationE2E) load(t *testing.T) *catalog.Catalog {
	t.Helper()
	f, err := config.Load(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := catalog.New(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// planCatalog plans the catalog against the last builds.
func (e *remediationE2E) planCatalog(t *testing.T, c *catalog.Catalog) (*catalog.Plan, error) {
	t.Helper()
	return (&catalog.Planner{Catalog: c, Store: e.st, Target: e.target, Packages: e.asm}).Plan(e.ctx, catalog.PlanOptions{})
}

// deploy records the last builds of the apps as running in prod since at.
func (e *remediationE2E) deploy(t *testing.T, at time.Time) {
	t.Helper()
	for _, n := range []string{"shop", "ledger"} {
		b, _ := e.st.LastBuild(e.ctx, n)
		if err := e.st.PutDeployment(e.ctx, store.Deployment{Environment: "prod", Repository: b.Repository, Digest: b.Digest, Since: at, By: "test"}); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *remediationE2E) buildCatalog(t *testing.T) {
	ctx := e.ctx
	c := e.load(t)
	e.builder = &catalog.Builder{Catalog: c, Store: e.st, Target: e.target, Assembler: e.asm, Indexer: catalog.ImageIndexer{Scanner: e.sc, Tags: e.st}, By: "test",
		BuildahRoot: filepath.Join(e.dir, "buildah")} // the whole test's: later steps rebuild with it
	plan, err := e.planCatalog(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.builder.Run(ctx, plan); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"debian", "shop", "ledger", "gateway"} {
		b, err := e.st.LastBuild(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		e.before[n] = b.Digest
	}
	// The apps run in prod.
	e.deploy(t, time.Now().Add(-time.Hour))
}

// importAdvisories: the derived advisories arrive; stored SBOMs are
// matched again.
func (e *remediationE2E) importAdvisories(t *testing.T) {
	advDir := t.TempDir()
	for i, rec := range testenv.DerivedDebianOSV(e.pcre2) {
		os.WriteFile(filepath.Join(advDir, fmt.Sprintf("derived-%d.json", i)), rec, 0o644)
	}
	os.WriteFile(filepath.Join(advDir, "GHSA-xvch-5gv4-984h.json"), testenv.ReadShared(t, "osv", "ghsa", "GHSA-xvch-5gv4-984h.json"), 0o644)
	im := vuln.NewImporter(e.st, "derived-debian")
	if err := im.ImportPath(e.ctx, advDir); err != nil {
		t.Fatal(err)
	}
	stats, err := im.Finish(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	re, err := e.sc.Reevaluate(e.ctx, e.st, stats.Packages)
	if err != nil {
		t.Fatal(err)
	}
	if re.Changes.Opened < 3 {
		t.Fatalf("re-evaluation opened %d findings", re.Changes.Opened)
	}
}

// exposed: prod runs both apps, each with the finding.
func (e *remediationE2E) exposed(t *testing.T) {
	ex, err := remediate.Exposure(e.ctx, e.st, []string{"prod"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 1 || ex[0].Images != 2 || len(ex[0].Open) < 2 || ex[0].Oldest == nil {
		t.Fatalf("exposure %+v", ex)
	}
}

func (e *remediationE2E) plan(t *testing.T) {
	notifier := &notify.Notifier{Hooks: []notify.Webhook{{URL: e.hook.URL, Events: []string{notify.EventRemediationDone}}}}
	e.r = &remediate.Remediator{
		Catalog: e.builder.Catalog, Store: e.st, Target: e.target, Assembler: e.asm, Scanner: e.sc, Builder: e.builder, By: "test", Notify: notifier.Func(),
		Pins: func(image string, pins map[string]string) (*catalog.Catalog, error) {
			if err := config.SetPins(e.cfgPath, image, pins); err != nil {
				return nil, err
			}
			return e.load(t), nil
		},
	}
	rp, err := e.r.Plan(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	acts := map[string]*remediate.Action{}
	for _, a := range rp.Actions {
		acts[a.Image] = a
	}
	if a := acts["debian"]; a == nil || a.Strategy != remediate.StrategyRebuild || len(a.Owned) == 0 || !strings.Contains(strings.Join(a.Upgrades, " "), "libpcre2-8-0 "+e.old+" → ") {
		t.Fatalf("debian: %+v", a)
	}
	// The gateway's Dockerfile may depend on its base: it is rebuilt.
	if a := acts["gateway"]; a == nil || a.Strategy != remediate.StrategyRebuild || len(a.Inherited) == 0 || !strings.Contains(a.Why, "Dockerfile") {
		t.Fatalf("gateway: %+v", a)
	}
	for _, app := range []string{"shop", "ledger"} {
		a := acts[app]
		owned := 0
		if app == "shop" {
			owned = 1 // minimist, the shop's own: rebased all the same
		}
		if a == nil || a.Strategy != remediate.StrategyRebase || len(a.Owned) != owned || len(a.Inherited) == 0 {
			t.Fatalf("%s: %+v", app, a)
		}
		// Attributed to the base, not to the app.
		for _, f := range a.Inherited {
			if f.Owner != "debian" || f.OwnerDigest != e.before["debian"] {
				t.Fatalf("%s: finding %s owned by %q", app, f.AdvisoryID, f.Owner)
			}
		}
	}
}

// dryRun builds and verifies, and changes nothing.
func (e *remediationE2E) dryRun(t *testing.T) {
	rp, err := e.r.Plan(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.r.Apply(e.ctx, rp, true); err != nil {
		t.Fatal(err)
	}
	for _, a := range rp.Actions {
		if a.Image == "gateway" {
			// Its Dockerfile pulls the new base, which a dry run does not push.
			if a.Status != "not built (dry run)" || !strings.Contains(a.Detail, "starts FROM the new debian") {
				t.Fatalf("dry run gateway: %+v", a)
			}
			continue
		}
		if !strings.Contains(a.Status, "dry run") || len(a.Fixed) == 0 || len(a.Added) != 0 {
			t.Fatalf("dry run %s: %+v", a.Image, a)
		}
	}
	if b, _ := e.st.LastBuild(e.ctx, "debian"); b.Digest != e.before["debian"] {
		t.Fatal("a dry run pushed a build")
	}
	if rs, _ := e.st.ListRemediations(e.ctx, "", 10); len(rs) != 0 {
		t.Fatalf("a dry run recorded %d remediations", len(rs))
	}
}

func (e *remediationE2E) apply(t *testing.T) {
	// The remediation runs as a fix run of the loop: after the feed sync,
	// rebuild and rebase, then promotion through dev and staging, and a
	// request for prod's two approvers.
	envs := []config.Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod", Gates: config.Gates{Approvals: 2}}}
	notifier := &notify.Notifier{Hooks: []notify.Webhook{{URL: e.hook.URL, Events: []string{notify.EventAwaitingApproval}}}}
	l := &loop.Loop{Store: e.st, Promoter: &promote.Promoter{Store: e.st, Envs: envs, Dir: e.dir}, Envs: envs, Through: "staging",
		Notify: notifier.Func()}
	started := time.Now()
	var rp *remediate.Plan
	run, err := l.Run(e.ctx, loop.Sync{Feed: "derived-debian", Advisories: []string{e.cve}, Started: started, Seconds: 0.5},
		func(ctx context.Context, h loop.Hooks) (*remediate.Plan, error) {
			e.r.OnAction = h.Done
			defer func() { e.r.OnAction = nil }()
			p, err := e.r.Plan(ctx)
			if err != nil {
				return nil, err
			}
			h.Planned(ctx, p)
			rp = p
			return p, e.r.Apply(ctx, p, false)
		})
	if err != nil {
		t.Fatal(err)
	}
	e.run = run
	e.applied = rp
	for _, a := range rp.Actions {
		if a.Status != store.RemediationApplied || a.To == "" || a.To == a.From {
			t.Fatalf("%s: %+v", a.Image, a)
		}
		fs, err := e.st.ImageFindings(e.ctx, a.To)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.AdvisoryID == e.cve {
				t.Errorf("%s %s still has %s", a.Image, a.To, e.cve)
			}
		}
	}
	// Each applied remediation was announced to the webhook, and each
	// fixed digest waits for prod's approvers.
	e.hookMu.Lock()
	defer e.hookMu.Unlock()
	var done, awaiting int
	for _, d := range e.delivered {
		switch {
		case strings.HasPrefix(d, "remediation.done "):
			done++
		case strings.HasPrefix(d, "remediation.awaiting_approval ") && strings.Contains(d, `"environment":"prod"`) && strings.Contains(d, `"evidence"`) &&
			strings.Contains(d, `"remediation":{"strategy":`) && strings.Contains(d, e.cve):
			awaiting++
		}
	}
	if done != 4 || awaiting != 4 || !strings.Contains(strings.Join(e.delivered, " "), `"image":"ledger"`) {
		t.Fatalf("webhook deliveries: %q", e.delivered)
	}
	e.checkRun(t, envs)
}

// checkRun: the fix run went through every step, in order: sync, match,
// the rebuild and rebases, promotions to dev then staging for each fixed
// image, and prod's requests; pods running the fixed digests in staging
// (from the live inventory) end the timeline and give staging's time to
// remediate; an admin can cancel the run, audited.
func (e *remediationE2E) checkRun(t *testing.T, envs []config.Environment) {
	t.Helper()
	ctx := e.ctx
	run := e.run
	if run.Status != store.FixAwaitingApproval || len(run.Fixed) != 4 {
		t.Fatalf("run %+v", run)
	}
	// prod's requests carry the remediation's evidence for the approvers.
	pending, err := e.st.ListPromotions(ctx, store.PromotionQuery{Environment: "prod", States: []string{store.PromotionAwaitingApproval}})
	if err != nil || len(pending) != 4 {
		t.Fatalf("prod requests: %d, %v", len(pending), err)
	}
	for _, p := range pending {
		if !strings.Contains(p.Note, fmt.Sprintf("fix run %d", run.ID)) || !strings.Contains(p.Note, "adds 0") {
			t.Errorf("request %d note %q", p.ID, p.Note)
		}
	}
	count := map[string]int{}
	var order []string
	for _, s := range run.Steps {
		key := s.Name + " " + s.Environment
		if count[key] == 0 {
			order = append(order, strings.TrimSpace(key))
		}
		count[key]++
	}
	if got := strings.Join(order, ", "); got != "sync, match, attribution, rebuild, verification, rebase, promotion dev, promotion staging, awaiting approval prod" {
		t.Fatalf("steps %s", got)
	}
	if count["promotion dev"] != 4 || count["promotion staging"] != 4 || count["awaiting approval prod"] != 4 {
		t.Fatalf("steps %v", count)
	}
	for i := 1; i < len(run.Steps); i++ {
		if run.Steps[i].At.Before(run.Steps[i-1].At) {
			t.Fatalf("step %d is before step %d", i, i-1)
		}
	}
	// The staging cluster runs the fixed shop (as its pod watch records).
	shop := run.Fixed["shop"]
	repo, digest, _ := strings.Cut(shop, "@")
	podAt := time.Now().UTC()
	if _, _, err := e.st.SyncRunning(ctx, "main", []store.Running{{Cluster: "main", Namespace: "shop-staging", Workload: "Deployment/shop",
		Container: "shop", Digest: digest, Repository: repo, Environment: "staging", Pods: 1, Since: podAt, LastSeen: podAt}}, podAt); err != nil {
		t.Fatal(err)
	}
	steps, err := loop.Timeline(ctx, e.st, run)
	if err != nil {
		t.Fatal(err)
	}
	if last := steps[len(steps)-1]; last.Name != "running" || last.Environment != "staging" || last.Image != "shop" {
		t.Fatalf("timeline ends with %+v", last)
	}
	mttr, err := loop.MTTR(ctx, e.st, []store.FixRun{run})
	if err != nil {
		t.Fatal(err)
	}
	byEnv := map[string]loop.EnvMTTR{}
	for _, m := range mttr {
		byEnv[m.Environment] = m
	}
	if m := byEnv["staging"]; m.Runs != 1 || m.Mean <= 0 || m.Mean != podAt.Sub(run.StartedAt).Truncate(time.Microsecond) && m.Mean != podAt.Sub(run.StartedAt) {
		t.Fatalf("staging MTTR %+v (pod at %s, run from %s)", m, podAt, run.StartedAt)
	}
	if _, ok := byEnv["prod"]; ok {
		t.Fatal("prod has an MTTR before its approvers approved")
	}
	l := &loop.Loop{Store: e.st, Envs: envs}
	cancelled, err := l.Control(ctx, run.ID, "cancel", "admin-user (admin)")
	if err != nil || cancelled.Status != store.FixCancelled {
		t.Fatalf("cancel: %+v %v", cancelled, err)
	}
	if _, err := l.Control(ctx, run.ID, "resume", "admin-user (admin)"); err == nil {
		t.Fatal("a cancelled run resumed")
	}
	evs, err := e.st.AuditEvents(ctx, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.Action] = true
	}
	for _, a := range []string{"fixrun.start", "fixrun.awaiting_approval", "fixrun.cancel"} {
		if !seen[a] {
			t.Errorf("no %s in the audit log", a)
		}
	}
}

// supersededExposure: the superseded digests' findings are closed as
// fixed by rebuild, and prod, which still runs them, is still exposed
// until it runs the new digests.
func (e *remediationE2E) supersededExposure(t *testing.T) {
	ctx := e.ctx
	closed, err := e.st.FindingsClosedAs(ctx, e.before["shop"], store.CloseFixedByRebuild)
	if err != nil || len(closed) == 0 {
		t.Fatalf("closed as fixed by rebuild: %v %+v", err, closed)
	}
	if ex, _ := remediate.Exposure(ctx, e.st, []string{"prod"}, time.Now()); len(ex[0].Open) == 0 {
		t.Fatal("prod runs the old digests, yet shows no exposure")
	}
	e.deploy(t, time.Now())
	ex, _ := remediate.Exposure(ctx, e.st, []string{"prod"}, time.Now())
	// Only the shop's own minimist is left open in prod.
	if len(ex[0].Open) != 1 || ex[0].Open[0].Advisory != "GHSA-xvch-5gv4-984h" || ex[0].Remediated == 0 || ex[0].MTTR <= 0 {
		t.Fatalf("prod after the new digests: %+v", ex[0])
	}
	// Zero open findings from the base: what is left is the shop's own
	// minimist, which the plan leaves to its owners.
	again, err := e.r.Plan(ctx)
	if err != nil || len(again.Actions) != 1 || again.Actions[0].Image != "shop" || again.Actions[0].Strategy != remediate.StrategyNone ||
		len(again.Actions[0].Owned) != 1 || again.Actions[0].Owned[0].AdvisoryID != "GHSA-xvch-5gv4-984h" || len(again.Clean) != 3 {
		t.Fatalf("after remediation: %+v %v", again, err)
	}
}

// appTeamFix: the shop team fixes its own package: the catalog plan
// sees the changed input, rebuilds the shop on the new base, and then
// nothing is left open.
func (e *remediationE2E) appTeamFix(t *testing.T) {
	ctx := e.ctx
	os.WriteFile(filepath.Join(e.dir, "shop", "node_modules", "minimist", "package.json"), []byte(`{"name":"minimist","version":"1.2.6"}`), 0o644)
	c := e.load(t)
	e.builder.Catalog = c
	sp, err := e.planCatalog(t, c)
	if err != nil || len(sp.Steps) != 1 || sp.Steps[0].Name != "shop" || sp.Steps[0].Reasons[0] != catalog.ReasonInputsChanged {
		t.Fatalf("plan after the shop's fix: %v %+v", err, sp)
	}
	if _, err := e.builder.Run(ctx, sp); err != nil {
		t.Fatal(err)
	}
	// The rebuild closed the superseded shop's minimist finding, with the
	// reason.
	var rebasedShop string
	for _, a := range e.applied.Actions {
		if a.Image == "shop" {
			rebasedShop = a.To
		}
	}
	closedByBuild, err := e.st.FindingsClosedAs(ctx, rebasedShop, store.CloseFixedByRebuild)
	if err != nil || len(closedByBuild) != 1 || closedByBuild[0].AdvisoryID != "GHSA-xvch-5gv4-984h" || !strings.Contains(closedByBuild[0].CloseReason, "build → ") {
		t.Fatalf("closed by the rebuild: %v %+v", err, closedByBuild)
	}
	e.r.Catalog = c
	if final, err := e.r.Plan(ctx); err != nil || len(final.Actions) != 0 || len(final.Clean) != 4 {
		t.Fatalf("zero open findings expected: %+v %v", final, err)
	}
	for _, n := range []string{"debian", "shop", "ledger", "gateway"} {
		b, _ := e.st.LastBuild(ctx, n)
		fs, _ := e.st.ImageFindings(ctx, b.Digest)
		for _, f := range fs {
			if f.FixedVersion != "" {
				t.Errorf("%s still has %s open", n, f.AdvisoryID)
			}
		}
	}
}

// pinsAndLineage: the pin was bumped, the catalog plan is up to date,
// and the apps were rebased (their own layer kept) onto the new base.
func (e *remediationE2E) pinsAndLineage(t *testing.T) {
	ctx := e.ctx
	if b, _ := os.ReadFile(e.cfgPath); strings.Contains(string(b), "libpcre2-8-0="+e.old+"]") || !strings.Contains(string(b), "# pinned") {
		t.Fatalf("socle.yaml after the bump:\n%s", b)
	}
	if p, err := e.planCatalog(t, e.load(t)); err != nil || len(p.Steps) != 0 {
		t.Fatalf("catalog plan after remediation: %v %+v", err, p)
	}
	shop, _ := e.st.LastBuild(ctx, "shop")
	base, _ := e.st.LastBuild(ctx, "debian")
	if shop.ParentDigest != base.Digest {
		t.Fatalf("shop's parent %s, new base %s", shop.ParentDigest, base.Digest)
	}
	links, err := catalog.Lineage(ctx, e.st, shop.Digest)
	if err != nil || len(links) != 2 || links[1].Digest != base.Digest {
		t.Fatalf("lineage %+v %v", links, err)
	}
	// The gateway was rebuilt from its Dockerfile on the new base.
	gw, _ := e.st.LastBuild(ctx, "gateway")
	if gw.ParentDigest != base.Digest || gw.Digest == e.before["gateway"] {
		t.Fatalf("gateway build %+v, new base %s", gw, base.Digest)
	}
	if links, err := catalog.Lineage(ctx, e.st, gw.Digest); err != nil || len(links) != 2 || links[1].Digest != base.Digest {
		t.Fatalf("gateway lineage %+v %v", links, err)
	}
}

func (e *remediationE2E) auditAndDashboard(t *testing.T) {
	ctx := e.ctx
	evs, _ := e.st.AuditEvents(ctx, 0, 1000)
	if _, _, err := store.VerifyAuditChain("", 0, evs); err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, ev := range evs {
		if ev.Action == "remediation.applied" {
			applied++
		}
	}
	if applied != 4 {
		t.Fatalf("%d remediation.applied events", applied)
	}
	srv, err := server.NewAPI(server.Deps{Store: e.st, Auth: auth.NewAuthenticator(e.st)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	secret, _, _ := auth.Create(ctx, e.st, auth.Spec{Name: "viewer", Role: store.RoleViewer}, time.Now())
	get := func(path string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", hs.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	// The API attributes the old app's finding to the base.
	ab := get("/api/v1/images/" + e.before["ledger"] + "/attribution")
	if !strings.Contains(ab, `"owner":"debian"`) || !strings.Contains(ab, `"owner_digest":"`+e.before["debian"]+`"`) {
		t.Fatalf("attribution API:\n%s", ab)
	}
	page := get("/exposure")
	for _, want := range []string{`data-env="prod"`, "rebuild", "rebase", "applied", "ledger"} {
		if !strings.Contains(page, want) {
			t.Errorf("the exposure page lacks %q", want)
		}
	}
}
