package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/cli"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/kube/kubetest"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

// loopSize is the chain of the closed loop: one assembled base, runtimes
// on it, apps spread over the runtimes (SOCLE_LOOP_RUNTIMES and
// SOCLE_LOOP_APPS; bench/loop.sh runs 2 and 10).
func loopSize() (runtimes, apps int) {
	runtimes, apps = 1, 3
	if n, err := strconv.Atoi(os.Getenv("SOCLE_LOOP_RUNTIMES")); err == nil && n > 0 {
		runtimes = n
	}
	if n, err := strconv.Atoi(os.Getenv("SOCLE_LOOP_APPS")); err == nil && n > 0 {
		apps = n
	}
	return runtimes, apps
}

// loopConfig is socle.yaml of the closed loop.
func loopConfig(api, registry, kubeconfig, feed, gitDir, pin string, runtimes, apps int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  addr: %s
  registry_addr: %s
environments:
  - name: dev
  - name: staging
  - name: prod
    gates: {approvals: 2}
clusters:
  - name: main
    kubeconfig: %s
    namespaces:
      - {names: [loop-dev], environment: dev}
      - {names: [loop-staging], environment: staging}
feeds:
  - name: derived-debian
    url: %s
    interval: 24h
remediation:
  auto: true
  promote: {through: staging}
  git:
    - repo: %s
      paths: [deploy/]
images:
  - name: debian
    repository: socle/debian
    version: "12.8"
    build:
      assemble:
        suite: bookworm
        packages: [base-files, dash, coreutils, %s]
        epoch: 1700000000
        config: {user: root}
`, api, registry, kubeconfig, feed, gitDir, pin)
	for r := 0; r < runtimes; r++ {
		fmt.Fprintf(&b, `  - name: runtime%d
    repository: socle/runtime%d
    parent: debian
    version: "1.0"
    build: {dockerfile: {context: runtime%d, builder: buildah}}
`, r, r, r)
	}
	for a := 0; a < apps; a++ {
		fmt.Fprintf(&b, `  - name: app%d
    repository: apps/app%d
    parent: runtime%d
    version: "2.0"
    build: {dockerfile: {context: app%d, builder: buildah}}
`, a, a, a%runtimes, a)
	}
	return b.String()
}

// TestClosedLoopOnARealControlPlane is the loop unattended up to the
// approvers, on socle serve and a real kube-apiserver with kwok's node:
// a catalog (an assembled Debian base pinned to an older libpcre2, a
// Dockerfile runtime, Dockerfile apps) built and promoted to dev and
// staging, where Deployments run it; a derived advisory (labelled so)
// arrives by a feed sync and, with no other command, the base is
// rebuilt, the runtime and the apps follow, the new digests are promoted
// to dev and staging, and prod waits for two approvers. socle's Git bump
// applied to the manifests by the test stands in for a GitOps
// controller; the pods then run the fixed digests, which the fix run's
// timeline shows. The steps' times are logged (bench/loop.sh reads them).
func TestClosedLoopOnARealControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("builds with buildah on a real control plane")
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Skip("buildah not found (.ci/run installs it)")
	}
	runtimes, apps := loopSize()
	ctx := context.Background()
	// The real pcre2 pair of the shared changelogs, and the archive's
	// bookworm version the catalog pins.
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
	asm, err := assemble.New(assemble.Options{Cache: filepath.Join(os.TempDir(), "socle-apt-test-cache")})
	if err != nil {
		t.Fatal(err)
	}
	main, err := asm.Resolve(ctx, assemble.Spec{Suite: "bookworm", Packages: []string{"libpcre2-8-0"}})
	if err != nil {
		t.Fatal(err)
	}
	old := main.Versions()["libpcre2-8-0"]
	if len(pcre2) == 0 || old != pcre2[0].Installed {
		t.Skipf("the archive's bookworm has libpcre2-8-0 %s, the derived pair names another", old)
	}

	cp := kubetest.Start(t)
	dataDir := t.TempDir()
	feed := filepath.Join(dataDir, "feed")
	gitDir := filepath.Join(dataDir, "gitops")
	os.MkdirAll(feed, 0o755)
	write := func(rel, body string) {
		p := filepath.Join(dataDir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Hand-made Dockerfiles with RUN steps.
	for r := 0; r < runtimes; r++ {
		write(fmt.Sprintf("runtime%d/Dockerfile", r), fmt.Sprintf("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN mkdir -p /opt/runtime && echo runtime%d > /opt/runtime/flavour\n", r))
	}
	for a := 0; a < apps; a++ {
		write(fmt.Sprintf("app%d/Dockerfile", a), fmt.Sprintf("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN mkdir -p /srv/app && echo app%d > /srv/app/name\nUSER 1000\n", a))
	}
	api, registry := freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dataDir, "socle.yaml")
	write("socle.yaml", loopConfig(api, registry, cp.Kubeconfig, feed, gitDir, "libpcre2-8-0="+old, runtimes, apps))
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dataDir, "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var banner bytes.Buffer
	app, err := server.New(ctx, server.Config{File: cfg, Store: st, StoreLocation: "socle.db", DataDir: dataDir,
		Addr: api, RegistryAddr: registry, Out: &banner, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- app.Run(ctx) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		app.Shutdown(sctx)
		<-stopped
	}()
	socle := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		root := cli.NewRoot(&out, &errOut)
		root.SetArgs(append([]string{"--data-dir", dataDir}, args...))
		if err := root.ExecuteContext(ctx); err != nil {
			t.Fatalf("socle %s: %v (%#v)\n%s%s", strings.Join(args, " "), err, err, out.String(), errOut.String())
		}
		return out.String()
	}
	timed := map[string]time.Duration{}
	step := func(name string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		timed[name] = time.Since(start)
		t.Logf("LOOP-STEP %s %.1fs", name, timed[name].Seconds())
	}

	// Build the catalog, promote it to dev and staging, and run it there.
	step("initial build", func() { socle("build") })
	names := []string{"debian"}
	for r := 0; r < runtimes; r++ {
		names = append(names, fmt.Sprintf("runtime%d", r))
	}
	var appNames []string
	for a := 0; a < apps; a++ {
		appNames = append(appNames, fmt.Sprintf("app%d", a))
	}
	names = append(names, appNames...)
	first := map[string]string{} // name -> repository@digest
	for _, n := range names {
		b, err := st.LastBuild(ctx, n)
		if err != nil || b.Digest == "" {
			t.Fatalf("%s was not built: %+v %v", n, b, err)
		}
		first[n] = b.Repository + "@" + b.Digest
	}
	step("initial promotions", func() {
		for _, n := range names {
			for _, env := range []string{"dev", "staging"} {
				socle("promote", first[n], "--to", env, "--token", readToken(t, dataDir))
			}
		}
	})
	repo, err := git.PlainInit(gitDir, false)
	if err != nil {
		t.Fatal(err)
	}
	manifests := func(images map[string]string) map[string]string {
		out := map[string]string{}
		for _, env := range []string{"dev", "staging"} {
			var docs []string
			for _, n := range appNames {
				docs = append(docs, deploymentYAML("loop-"+env, n, registry+"/"+strings.TrimPrefix(images[n], registry+"/")))
			}
			out["deploy/"+env+".yaml"] = strings.Join(docs, "---\n")
		}
		return out
	}
	wt, _ := repo.Worktree()
	for f, body := range manifests(first) {
		write(filepath.Join("gitops", f), body)
		wt.Add(f)
	}
	sig := &object.Signature{Name: "test", Email: "test@socle.invalid", When: time.Now()}
	base, err := wt.Commit("the apps, deployed", &git.CommitOptions{Author: sig})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"loop-dev", "loop-staging"} {
		if out, err := cp.Kubectl("apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n", "apply", "-f", "-"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	apply := func(files map[string]string) {
		for _, body := range files {
			if out, err := cp.Kubectl(body, "apply", "-f", "-"); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
		}
	}
	apply(manifests(first))
	running := func(digests map[string]string, env string) (bool, string) {
		rows, err := st.RunningImages(ctx, store.RunningQuery{Environment: env})
		if err != nil {
			return false, err.Error()
		}
		have := map[string]bool{}
		for _, r := range rows {
			have[r.Digest] = true
		}
		for _, n := range appNames {
			_, d, _ := strings.Cut(digests[n], "@")
			if !have[d] {
				return false, n + " not running in " + env
			}
		}
		return true, ""
	}
	eventually(t, "the apps running in dev and staging", func() (bool, string) {
		if ok, why := running(first, "dev"); !ok {
			return ok, why
		}
		return running(first, "staging")
	})

	// The advisory arrives by the feed; nothing else is asked of socle.
	for i, rec := range testenv.DerivedDebianOSV(pcre2) {
		os.WriteFile(filepath.Join(feed, fmt.Sprintf("derived-%d.json", i)), rec, 0o644)
	}
	loopStart := time.Now()
	// The server syncs, as on its interval (a job): its sync starts the
	// fix run.
	req, _ := http.NewRequest("POST", "http://"+api+"/api/v1/feeds/sync", strings.NewReader(`{"feeds": ["derived-debian"]}`))
	req.Header.Set("Authorization", "Bearer "+readToken(t, dataDir))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("feed sync: %s", resp.Status)
	}
	var run store.FixRun
	step("sync to the fixed digests in staging", func() {
		deadline := time.Now().Add(8 * time.Minute)
		for {
			runs, err := st.FixRuns(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) > 0 && runs[0].Status != store.FixRunning {
				run = runs[0]
				break
			}
			if time.Now().After(deadline) {
				jobs, _ := st.Jobs(ctx, 20)
				t.Fatalf("the fix run never finished: %+v\njobs: %+v", runs, jobs)
			}
			time.Sleep(time.Second)
		}
	})
	if run.Status != store.FixAwaitingApproval || len(run.Fixed) != len(names) {
		t.Fatalf("fix run %s (%s): fixed %v\nsteps %+v", run.Status, run.Detail, run.Fixed, run.Steps)
	}
	// prod waits for two approvers.
	pending, err := st.ListPromotions(ctx, store.PromotionQuery{Environment: "prod", States: []string{store.PromotionAwaitingApproval}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != len(names) {
		t.Fatalf("%d promotions await approval, want %d", len(pending), len(names))
	}

	// The GitOps controller's part: merge socle's bump branches, apply.
	step("git bump applied, pods running the fix", func() {
		merged := mergeBumps(t, repo, base.String(), manifests(first))
		apply(merged)
		eventually(t, "the fixed apps running in dev and staging", func() (bool, string) {
			if ok, why := running(run.Fixed, "dev"); !ok {
				return ok, why
			}
			return running(run.Fixed, "staging")
		})
	})
	total := time.Since(loopStart)
	t.Logf("LOOP-TOTAL %.1fs from the sync to the last staging pod running the fix", total.Seconds())

	// The run's steps, each timed, the slowest named.
	var fr struct {
		Timeline []store.FixStep `json:"timeline"`
	}
	getJSONWith(t, api, readToken(t, dataDir), fmt.Sprintf("/api/v1/fixruns/%d", run.ID), &fr)
	running0 := 0
	prev := run.StartedAt
	type gap struct {
		what string
		d    time.Duration
	}
	var gaps []gap
	for _, s := range fr.Timeline {
		if s.Name == "running" {
			running0++
		}
		gaps = append(gaps, gap{s.Name + " " + s.Environment + " " + s.Image, s.At.Sub(prev)})
		prev = s.At
	}
	if running0 < 2*apps {
		t.Fatalf("the timeline has %d running steps, want %d", running0, 2*apps)
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i].d > gaps[j].d })
	t.Logf("LOOP-SLOWEST %s %.1fs", strings.TrimSpace(gaps[0].what), gaps[0].d.Seconds())
}

// mergeBumps reads every branch socle's remediation committed (one per
// bumped image), takes from each the lines it changed against base, and
// returns the merged files.
func mergeBumps(t *testing.T, repo *git.Repository, base string, files map[string]string) map[string]string {
	t.Helper()
	merged := map[string][]string{}
	for f, body := range files {
		merged[f] = strings.Split(body, "\n")
	}
	refs, err := repo.References()
	if err != nil {
		t.Fatal(err)
	}
	bumps := 0
	refs.ForEach(func(r *plumbing.Reference) error {
		if !strings.HasPrefix(r.Name().Short(), "socle/remediate-") {
			return nil
		}
		c, err := repo.CommitObject(r.Hash())
		if err != nil {
			return err
		}
		bumps++
		for f := range files {
			file, err := c.File(f)
			if err != nil {
				continue
			}
			body, _ := file.Contents()
			lines := strings.Split(body, "\n")
			orig := strings.Split(files[f], "\n")
			for i := range lines {
				if i < len(orig) && lines[i] != orig[i] {
					merged[f][i] = lines[i]
				}
			}
		}
		return nil
	})
	if bumps == 0 {
		t.Fatal("socle committed no bump")
	}
	out := map[string]string{}
	for f, lines := range merged {
		out[f] = strings.Join(lines, "\n")
	}
	return out
}

func readToken(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
