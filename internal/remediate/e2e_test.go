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
	"github.com/socle-dev/socle/internal/notify"
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
// older version, and two append-layer apps whose files are hand-made.
func catalogYAML(pin string) string {
	return `images:
  - name: debian
    repository: socle/debian
    version: "12.8"
    build:
      assemble:
        suite: bookworm
        # pinned: the older version, affected by the derived advisory
        packages: [base-files, ` + pin + `]
        epoch: 1700000000
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
// the run is in the audit log and on the dashboard.
func TestRemediateEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads Debian packages")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// The real pair: pcre2, installed in the bookworm point release,
	// fixed in bookworm-security.
	pairs, err := testenv.DebianChangelogPairs(testenv.SharedData(t, "debian", "derived", "bookworm-minbase-changelog-cves.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	var pcre2 []testenv.DebianChangelogPair
	for _, p := range pairs {
		if p.Source == "pcre2" && p.Status == "affected_fix_available" {
			pcre2 = append(pcre2, p)
		}
	}
	if len(pcre2) == 0 {
		t.Fatal("the derived table has no pcre2 pair")
	}
	asm, err := assemble.New(assemble.Options{Cache: filepath.Join(os.TempDir(), "socle-apt-test-cache")})
	if err != nil {
		t.Fatal(err)
	}
	main, err := asm.Resolve(ctx, assemble.Spec{Suite: "bookworm", Packages: []string{"libpcre2-8-0"}})
	if err != nil {
		t.Fatal(err)
	}
	old := main.Versions()["libpcre2-8-0"]
	if old != pcre2[0].Installed {
		t.Skipf("the archive's bookworm has libpcre2-8-0 %s, the derived pair names %s", old, pcre2[0].Installed)
	}

	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	an, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	sc := scan.New(st, an)
	reg := registrytest.Start(t, registry.Options{})
	target := catalog.Target{Registry: reg.Host}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "shop"), 0o755)
	os.MkdirAll(filepath.Join(dir, "ledger"), 0o755)
	os.WriteFile(filepath.Join(dir, "shop", "index.html"), []byte("hand-made shop\n"), 0o644)
	// The shop also brings a vulnerable npm package of its own (the real
	// GHSA record affects it): that fix is the shop team's, not socle's.
	os.MkdirAll(filepath.Join(dir, "shop", "node_modules", "minimist"), 0o755)
	os.WriteFile(filepath.Join(dir, "shop", "node_modules", "minimist", "package.json"), []byte(`{"name":"minimist","version":"1.2.5"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "ledger", "ledger.conf"), []byte("hand-made ledger\n"), 0o644)
	cfgPath := filepath.Join(dir, "socle.yaml")
	os.WriteFile(cfgPath, []byte(catalogYAML("libpcre2-8-0="+old)), 0o644)
	load := func() *catalog.Catalog {
		f, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		c, err := catalog.New(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := load()
	builder := &catalog.Builder{Catalog: c, Store: st, Target: target, Assembler: asm, Indexer: catalog.ImageIndexer{Scanner: sc, Tags: st}, By: "test"}
	plan, err := (&catalog.Planner{Catalog: c, Store: st, Target: target, Packages: asm}).Plan(ctx, catalog.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := builder.Run(ctx, plan); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, n := range []string{"debian", "shop", "ledger"} {
		b, err := st.LastBuild(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		before[n] = b.Digest
	}
	// The apps run in prod.
	for _, n := range []string{"shop", "ledger"} {
		b, _ := st.LastBuild(ctx, n)
		if err := st.PutDeployment(ctx, store.Deployment{Environment: "prod", Repository: b.Repository, Digest: b.Digest, Since: time.Now().Add(-time.Hour), By: "test"}); err != nil {
			t.Fatal(err)
		}
	}

	// The derived advisories arrive; stored SBOMs are matched again.
	advDir := t.TempDir()
	for i, rec := range testenv.DerivedDebianOSV(pcre2) {
		os.WriteFile(filepath.Join(advDir, fmt.Sprintf("derived-%d.json", i)), rec, 0o644)
	}
	os.WriteFile(filepath.Join(advDir, "GHSA-xvch-5gv4-984h.json"), testenv.ReadShared(t, "osv", "ghsa", "GHSA-xvch-5gv4-984h.json"), 0o644)
	im := vuln.NewImporter(st, "derived-debian")
	if err := im.ImportPath(ctx, advDir); err != nil {
		t.Fatal(err)
	}
	stats, err := im.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	re, err := sc.Reevaluate(ctx, st, stats.Packages)
	if err != nil {
		t.Fatal(err)
	}
	if re.Changes.Opened < 3 {
		t.Fatalf("re-evaluation opened %d findings", re.Changes.Opened)
	}
	cve := "SOCLE-DERIVED-DEBIAN-" + pcre2[0].CVE

	// Exposure: prod runs both apps, each with the finding.
	ex, err := remediate.Exposure(ctx, st, []string{"prod"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 1 || ex[0].Images != 2 || len(ex[0].Open) < 2 || ex[0].Oldest == nil {
		t.Fatalf("exposure %+v", ex)
	}

	// A real webhook receiver, through the notifier socle uses.
	var hookMu sync.Mutex
	var delivered []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		delivered = append(delivered, r.Header.Get("X-Socle-Event")+" "+string(b))
		hookMu.Unlock()
	}))
	defer hook.Close()
	notifier := &notify.Notifier{Hooks: []notify.Webhook{{URL: hook.URL, Events: []string{notify.EventRemediationDone}}}}
	r := &remediate.Remediator{
		Catalog: c, Store: st, Target: target, Assembler: asm, Scanner: sc, Builder: builder, By: "test", Notify: notifier.Func(),
		Pins: func(image string, pins map[string]string) (*catalog.Catalog, error) {
			if err := config.SetPins(cfgPath, image, pins); err != nil {
				return nil, err
			}
			return load(), nil
		},
	}
	rp, err := r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acts := map[string]*remediate.Action{}
	for _, a := range rp.Actions {
		acts[a.Image] = a
	}
	if a := acts["debian"]; a == nil || a.Strategy != remediate.StrategyRebuild || len(a.Owned) == 0 || !strings.Contains(strings.Join(a.Upgrades, " "), "libpcre2-8-0 "+old+" → ") {
		t.Fatalf("debian: %+v", a)
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
			if f.Owner != "debian" || f.OwnerDigest != before["debian"] {
				t.Fatalf("%s: finding %s owned by %q", app, f.AdvisoryID, f.Owner)
			}
		}
	}

	// A dry run builds and verifies, and changes nothing.
	if err := r.Apply(ctx, rp, true); err != nil {
		t.Fatal(err)
	}
	for _, a := range rp.Actions {
		if !strings.Contains(a.Status, "dry run") || len(a.Fixed) == 0 || len(a.Added) != 0 {
			t.Fatalf("dry run %s: %+v", a.Image, a)
		}
	}
	if b, _ := st.LastBuild(ctx, "debian"); b.Digest != before["debian"] {
		t.Fatal("a dry run pushed a build")
	}
	if rs, _ := st.ListRemediations(ctx, "", 10); len(rs) != 0 {
		t.Fatalf("a dry run recorded %d remediations", len(rs))
	}

	// The real run.
	rp, err = r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Apply(ctx, rp, false); err != nil {
		t.Fatal(err)
	}
	for _, a := range rp.Actions {
		if a.Status != store.RemediationApplied || a.To == "" || a.To == a.From {
			t.Fatalf("%s: %+v", a.Image, a)
		}
		fs, err := st.ImageFindings(ctx, a.To)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if f.AdvisoryID == cve {
				t.Errorf("%s %s still has %s", a.Image, a.To, cve)
			}
		}
	}
	// Each applied remediation was announced to the webhook.
	hookMu.Lock()
	if len(delivered) != 3 || !strings.HasPrefix(delivered[0], "remediation.done ") || !strings.Contains(strings.Join(delivered, " "), `"image":"ledger"`) {
		t.Fatalf("webhook deliveries: %q", delivered)
	}
	hookMu.Unlock()
	// The superseded digests' findings are closed as fixed by rebuild, and
	// prod, which still runs them, is still exposed until it is promoted.
	closed, err := st.FindingsClosedAs(ctx, before["shop"], store.CloseFixedByRebuild)
	if err != nil || len(closed) == 0 {
		t.Fatalf("closed as fixed by rebuild: %v %+v", err, closed)
	}
	if ex, _ := remediate.Exposure(ctx, st, []string{"prod"}, time.Now()); len(ex[0].Open) == 0 {
		t.Fatal("prod runs the old digests, yet shows no exposure")
	}
	for _, n := range []string{"shop", "ledger"} {
		b, _ := st.LastBuild(ctx, n)
		st.PutDeployment(ctx, store.Deployment{Environment: "prod", Repository: b.Repository, Digest: b.Digest, Since: time.Now(), By: "test"})
	}
	ex, _ = remediate.Exposure(ctx, st, []string{"prod"}, time.Now())
	// Only the shop's own minimist is left open in prod.
	if len(ex[0].Open) != 1 || ex[0].Open[0].Advisory != "GHSA-xvch-5gv4-984h" || ex[0].Remediated == 0 || ex[0].MTTR <= 0 {
		t.Fatalf("prod after the new digests: %+v", ex[0])
	}
	// Zero open findings from the base: what is left is the shop's own
	// minimist, which the plan leaves to its owners.
	again, err := r.Plan(ctx)
	if err != nil || len(again.Actions) != 1 || again.Actions[0].Image != "shop" || again.Actions[0].Strategy != remediate.StrategyNone ||
		len(again.Actions[0].Owned) != 1 || again.Actions[0].Owned[0].AdvisoryID != "GHSA-xvch-5gv4-984h" || len(again.Clean) != 2 {
		t.Fatalf("after remediation: %+v %v", again, err)
	}
	// The shop team fixes its own package: the catalog plan sees the
	// changed input, rebuilds the shop on the new base, and then nothing
	// is left open.
	os.WriteFile(filepath.Join(dir, "shop", "node_modules", "minimist", "package.json"), []byte(`{"name":"minimist","version":"1.2.6"}`), 0o644)
	c = load()
	builder.Catalog = c
	sp, err := (&catalog.Planner{Catalog: c, Store: st, Target: target, Packages: asm}).Plan(ctx, catalog.PlanOptions{})
	if err != nil || len(sp.Steps) != 1 || sp.Steps[0].Name != "shop" || sp.Steps[0].Reasons[0] != catalog.ReasonInputsChanged {
		t.Fatalf("plan after the shop's fix: %v %+v", err, sp)
	}
	if _, err := builder.Run(ctx, sp); err != nil {
		t.Fatal(err)
	}
	// The rebuild closed the superseded shop's minimist finding, with the
	// reason.
	var rebasedShop string
	for _, a := range rp.Actions {
		if a.Image == "shop" {
			rebasedShop = a.To
		}
	}
	closedByBuild, err := st.FindingsClosedAs(ctx, rebasedShop, store.CloseFixedByRebuild)
	if err != nil || len(closedByBuild) != 1 || closedByBuild[0].AdvisoryID != "GHSA-xvch-5gv4-984h" || !strings.Contains(closedByBuild[0].CloseReason, "build → ") {
		t.Fatalf("closed by the rebuild: %v %+v", err, closedByBuild)
	}
	r.Catalog = c
	if final, err := r.Plan(ctx); err != nil || len(final.Actions) != 0 || len(final.Clean) != 3 {
		t.Fatalf("zero open findings expected: %+v %v", final, err)
	}
	for _, n := range []string{"debian", "shop", "ledger"} {
		b, _ := st.LastBuild(ctx, n)
		fs, _ := st.ImageFindings(ctx, b.Digest)
		for _, f := range fs {
			if f.FixedVersion != "" {
				t.Errorf("%s still has %s open", n, f.AdvisoryID)
			}
		}
	}
	// The pin was bumped, and the catalog plan is up to date.
	if b, _ := os.ReadFile(cfgPath); strings.Contains(string(b), "libpcre2-8-0="+old+"]") || !strings.Contains(string(b), "# pinned") {
		t.Fatalf("socle.yaml after the bump:\n%s", b)
	}
	if p, err := (&catalog.Planner{Catalog: load(), Store: st, Target: target, Packages: asm}).Plan(ctx, catalog.PlanOptions{}); err != nil || len(p.Steps) != 0 {
		t.Fatalf("catalog plan after remediation: %v %+v", err, p)
	}
	// The apps were rebased (their own layer kept), onto the new base.
	shop, _ := st.LastBuild(ctx, "shop")
	base, _ := st.LastBuild(ctx, "debian")
	if shop.ParentDigest != base.Digest {
		t.Fatalf("shop's parent %s, new base %s", shop.ParentDigest, base.Digest)
	}
	links, err := catalog.Lineage(ctx, st, shop.Digest)
	if err != nil || len(links) != 2 || links[1].Digest != base.Digest {
		t.Fatalf("lineage %+v %v", links, err)
	}

	// The audit log and the dashboard show the run.
	evs, _ := st.AuditEvents(ctx, 0, 1000)
	if _, _, err := store.VerifyAuditChain("", 0, evs); err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, e := range evs {
		if e.Action == "remediation.applied" {
			applied++
		}
	}
	if applied != 3 {
		t.Fatalf("%d remediation.applied events", applied)
	}
	srv, err := server.NewAPI(server.Deps{Store: st, Auth: auth.NewAuthenticator(st)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	secret, _, _ := auth.Create(ctx, st, "viewer", store.RoleViewer, 0, time.Now())
	// The API attributes the old app's finding to the base.
	areq, _ := http.NewRequest("GET", hs.URL+"/api/v1/images/"+before["ledger"]+"/attribution", nil)
	areq.Header.Set("Authorization", "Bearer "+secret)
	aresp, err := http.DefaultClient.Do(areq)
	if err != nil {
		t.Fatal(err)
	}
	ab, _ := io.ReadAll(aresp.Body)
	aresp.Body.Close()
	if !strings.Contains(string(ab), `"owner": "debian"`) || !strings.Contains(string(ab), `"owner_digest": "`+before["debian"]+`"`) {
		t.Fatalf("attribution API:\n%s", ab)
	}
	req, _ := http.NewRequest("GET", hs.URL+"/exposure", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`data-env="prod"`, "rebuild", "rebase", "applied", "ledger"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the exposure page lacks %q", want)
		}
	}
}
