package feeds_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/feeds"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

var ctx = context.Background()

// recorder notes which package names each sync re-evaluates, and runs
// the real re-evaluation.
type recorder struct {
	mu    sync.Mutex
	names [][]store.PackageName
	sc    *scan.Scanner
	st    store.Store
}

func (r *recorder) reevaluate(ctx context.Context, names []store.PackageName) (int, store.FindingChanges, error) {
	r.mu.Lock()
	r.names = append(r.names, names)
	r.mu.Unlock()
	re, err := r.sc.Reevaluate(ctx, r.st, names)
	return re.Versions, re.Changes, err
}

func newSyncer(t *testing.T) (*feeds.Syncer, store.Store, *recorder) {
	t.Helper()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	an, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{sc: scan.New(st, an), st: st}
	return &feeds.Syncer{Store: st, Dir: t.TempDir(), Reevaluate: rec.reevaluate}, st, rec
}

// indexNodeApp stores a hand-made image holding minimist 1.2.5, which
// the real GHSA-xvch-5gv4-984h record affects (fixed in 1.2.6).
func indexNodeApp(t *testing.T, rec *recorder) {
	t.Helper()
	img := testenv.Image(t, testenv.Layer(t, []testenv.File{
		{Path: "app/node_modules/minimist/package.json", Content: []byte(`{"name":"minimist","version":"1.2.5"}`)},
	}))
	inv, err := rec.sc.Inventory(ctx, &source.Image{Image: img, Ref: oci.ImageRef{Transport: oci.TransportRegistry, Path: "test/node:1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rec.sc.Index(ctx, inv, "test/node"); err != nil {
		t.Fatal(err)
	}
}

// commit writes files into a Git work tree and commits them.
func commit(t *testing.T, repo *git.Repository, dir string, files map[string][]byte, msg string) {
	t.Helper()
	wt, err := repo.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
	}
	sig := &object.Signature{Name: "test", Email: "test@example.invalid", When: time.Now()}
	if _, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
		t.Fatal(err)
	}
}

func feedState(t *testing.T, st store.Store, name string) store.Feed {
	t.Helper()
	all, err := st.Feeds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no feed %s", name)
	return store.Feed{}
}

// TestGitFeedIncremental syncs a Git repository of real GHSA records:
// the first sync reads every record, the next ones only what the new
// commits changed, and a broken source keeps the last good data.
func TestGitFeedIncremental(t *testing.T) {
	s, st, rec := newSyncer(t)
	src := t.TempDir()
	repo, err := git.PlainInit(src, false)
	if err != nil {
		t.Fatal(err)
	}
	ghsa := func(n string) []byte { return testenv.ReadShared(t, "osv", "ghsa", n) }
	commit(t, repo, src, map[string][]byte{
		"advisories/npm/GHSA-xvch-5gv4-984h.json": ghsa("GHSA-xvch-5gv4-984h.json"),
		"advisories/npm/GHSA-p6mc-m468-83gw.json": ghsa("GHSA-p6mc-m468-83gw.json"),
		"README.md": []byte("hand-made feed repository\n"),
	}, "two records")
	feed := config.Feed{Name: "ghsa-git", URL: "git+file://" + src}

	r := s.Sync(ctx, feed)
	if r.Error != "" || r.Kind != feeds.KindGit || r.Records != 2 || r.Added != 2 || r.Cursor == "" {
		t.Fatalf("first sync: %+v", r)
	}
	if len(rec.names) != 1 || len(rec.names[0]) < 2 {
		t.Fatalf("re-evaluated %v", rec.names)
	}
	first := r.Cursor
	if r := s.Sync(ctx, feed); !r.Unchanged || r.Records != 0 || len(rec.names) != 1 {
		t.Fatalf("sync without a new commit: %+v (re-evaluations %d)", r, len(rec.names))
	}

	// A new record, and one record edited (a test edit of a real record:
	// its summary and modified time).
	edited := bytes.Replace(ghsa("GHSA-p6mc-m468-83gw.json"), []byte(`"modified": "`), []byte(`"modified": "2026-11-23T00:00:00Z", "x_socle_test_old_modified": "`), 1)
	commit(t, repo, src, map[string][]byte{
		"advisories/npm/GHSA-p6mc-m468-83gw.json":  edited,
		"advisories/pypi/GHSA-j8r2-6x86-q33q.json": ghsa("GHSA-j8r2-6x86-q33q.json"),
	}, "one new, one edited")
	r = s.Sync(ctx, feed)
	if r.Error != "" || r.Files != 2 || r.Records != 2 || r.Added != 1 || r.Updated != 1 || r.Cursor == first {
		t.Fatalf("incremental sync: %+v", r)
	}
	// Only the packages of the changed records are re-evaluated.
	var names []string
	for _, n := range rec.names[1] {
		names = append(names, n.Name)
	}
	joined := strings.Join(names, ",")
	if strings.Contains(joined, "minimist") || !strings.Contains(joined, "requests") || !strings.Contains(joined, "lodash") {
		t.Fatalf("re-evaluated %s", joined)
	}
	good := feedState(t, st, "ghsa-git")
	if good.Records != 3 || good.LastError != "" {
		t.Fatalf("feed state %+v", good)
	}

	// The source goes away: the sync fails, the data and cursor stay.
	os.RemoveAll(src)
	r = s.Sync(ctx, feed)
	if r.Error == "" {
		t.Fatal("a sync from a missing repository succeeded")
	}
	bad := feedState(t, st, "ghsa-git")
	if bad.LastError == "" || bad.Cursor != good.Cursor || !bad.LastSuccess.Equal(good.LastSuccess) || bad.Records != 3 {
		t.Fatalf("after a failure: %+v", bad)
	}
	if n, _ := st.AdvisoryCount(ctx); n != 3 {
		t.Fatalf("%d advisories after a failed sync", n)
	}
}

// TestHTTPFeed downloads a record over HTTP, then asks again with its
// ETag and reads nothing.
func TestHTTPFeed(t *testing.T) {
	s, st, _ := newSyncer(t)
	body := testenv.ReadShared(t, "osv", "ghsa", "GHSA-jfh8-c2jp-5v3q.json")
	var gets, notModified int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gets++
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Write(body)
	}))
	defer srv.Close()
	feed := config.Feed{Name: "log4j", URL: srv.URL + "/GHSA-jfh8-c2jp-5v3q.json"}
	if r := s.Sync(ctx, feed); r.Error != "" || r.Added != 1 || r.Cursor != `etag:"v1"` {
		t.Fatalf("first: %+v", r)
	}
	if r := s.Sync(ctx, feed); !r.Unchanged || notModified != 1 {
		t.Fatalf("second: %+v", r)
	}
	// A server error keeps the data.
	broken := config.Feed{Name: "log4j", URL: srv.URL + "/missing.zip"}
	srv.Config.Handler = http.NotFoundHandler()
	if r := s.Sync(ctx, broken); r.Error == "" || !strings.Contains(r.Error, "404") {
		t.Fatalf("broken: %+v", r)
	}
	if n, _ := st.AdvisoryCount(ctx); n != 1 {
		t.Fatalf("%d advisories", n)
	}
}

// TestPathFeed reads a directory: unchanged records are not written again.
func TestPathFeed(t *testing.T) {
	s, _, rec := newSyncer(t)
	var after []feeds.Result
	s.After = func(_ context.Context, r feeds.Result) { after = append(after, r) }
	feed := config.Feed{Name: "ghsa-dir", URL: testenv.SharedData(t, "osv", "ghsa")}
	if r := s.Sync(ctx, feed); r.Error != "" || r.Added != 4 {
		t.Fatalf("first: %+v", r)
	}
	r := s.Sync(ctx, feed)
	if r.Error != "" || r.Added+r.Updated != 0 || r.UnchangedRecords != 4 || len(rec.names) != 1 {
		t.Fatalf("second: %+v (%d re-evaluations)", r, len(rec.names))
	}
	// The after-sync hook (auto-remediation in socle serve) ran for both.
	if len(after) != 2 || after[0].Added != 4 {
		t.Fatalf("after hooks: %+v", after)
	}
}

// TestSyncJob runs a feed sync as the job queue runs it, with progress.
func TestSyncJob(t *testing.T) {
	s, st, _ := newSyncer(t)
	list := []config.Feed{{Name: "ghsa-dir", URL: testenv.SharedData(t, "osv", "ghsa")}}
	job := s.Job(list)
	var msgs []string
	progress := func(done, total int, msg string) { msgs = append(msgs, msg) }
	if err := job(ctx, &store.Job{Payload: []byte(`{"feed":"ghsa-dir"}`)}, progress); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || !strings.Contains(msgs[1], "4 added") {
		t.Fatalf("progress %q", msgs)
	}
	if n, _ := st.AdvisoryCount(ctx); n != 4 {
		t.Fatalf("%d advisories", n)
	}
	if err := job(ctx, &store.Job{Payload: []byte(`{"feed":"gone"}`)}, progress); err == nil {
		t.Fatal("a job for a feed socle.yaml does not have succeeded")
	}
}

// TestFeedCredentialsStayOut: a feed URL's credentials are never stored
// or reported.
func TestFeedCredentialsStayOut(t *testing.T) {
	s, st, _ := newSyncer(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://reader:hunter2@", 1) + "/all.zip"
	r := s.Sync(ctx, config.Feed{Name: "private", URL: u})
	if r.Error == "" || strings.Contains(r.Error, "hunter2") {
		t.Fatalf("error %q", r.Error)
	}
	if f := feedState(t, st, "private"); strings.Contains(f.URL, "hunter2") || strings.Contains(f.LastError, "hunter2") {
		t.Fatalf("stored %+v", f)
	}
}

// TestNotifyFixableOnly: a sync tells the webhooks about new findings only
// when some have a fix: a record that matches no stored image says
// nothing, the minimist record does.
func TestNotifyFixableOnly(t *testing.T) {
	s, _, rec := newSyncer(t)
	indexNodeApp(t, rec)
	var events []map[string]any
	s.Notify = func(_ context.Context, event string, payload any) {
		if event == "findings.new" {
			events = append(events, payload.(map[string]any))
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.json"), testenv.ReadShared(t, "osv", "ghsa", "GHSA-j8r2-6x86-q33q.json"), 0o644)
	s.Sync(ctx, config.Feed{Name: "one", URL: dir})
	if len(events) != 0 {
		t.Fatalf("notified without a finding: %v", events)
	}
	os.WriteFile(filepath.Join(dir, "b.json"), testenv.ReadShared(t, "osv", "ghsa", "GHSA-xvch-5gv4-984h.json"), 0o644)
	r := s.Sync(ctx, config.Feed{Name: "one", URL: dir})
	if len(events) != 1 || events[0]["opened_fixable"] != 1 || r.Findings.OpenedFixable != 1 {
		t.Fatalf("events %v, sync %+v", events, r)
	}
}

// handMadeKEV is a hand-made KEV catalog (the real one's shape) listing
// minimist's CVE-2021-44906, which the real catalog does not.
const handMadeKEV = `{"title": "hand-made", "catalogVersion": "2026.01.01", "dateReleased": "2026-01-01T00:00:00.000Z", "count": 1,
"vulnerabilities": [{"cveID": "CVE-2021-44906", "vendorProject": "minimist", "product": "minimist", "vulnerabilityName": "hand-made",
"dateAdded": "2026-01-01", "shortDescription": "", "requiredAction": "", "dueDate": "2026-01-22", "knownRansomwareCampaignUse": "Unknown", "notes": ""}]}`

// TestKEVInProdFiresOnce: once the catalog lists a CVE of an image prod
// runs, the sync fires findings.kev for it, once; an image only in dev
// fires nothing.
func TestKEVInProdFiresOnce(t *testing.T) {
	s, st, rec := newSyncer(t)
	indexNodeApp(t, rec)
	imgs, err := st.Images(ctx, store.ImageFilter{})
	if err != nil || len(imgs) != 1 {
		t.Fatalf("images %v %v", imgs, err)
	}
	var events []vuln.KEVFinding
	s.Notify = func(_ context.Context, event string, payload any) {
		if event == "findings.kev" {
			events = append(events, payload.(vuln.KEVFinding))
		}
	}
	s.KEVAlert = vuln.KEVAlerter(st, "prod", s.Notify)
	if err := st.PutDeployment(ctx, store.Deployment{Environment: "dev", Repository: "test/node", Digest: imgs[0].Digest, Since: time.Now(), By: "test"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "minimist.json"), testenv.ReadShared(t, "osv", "ghsa", "GHSA-xvch-5gv4-984h.json"), 0o644)
	os.WriteFile(filepath.Join(dir, "kev.json"), []byte(handMadeKEV), 0o644)
	s.Sync(ctx, config.Feed{Name: "one", URL: dir})
	if len(events) != 0 {
		t.Fatalf("fired for dev: %+v", events)
	}
	if err := st.PutDeployment(ctx, store.Deployment{Environment: "prod", Repository: "test/node", Digest: imgs[0].Digest, Since: time.Now(), By: "test"}); err != nil {
		t.Fatal(err)
	}
	s.Sync(ctx, config.Feed{Name: "one", URL: dir})
	s.Sync(ctx, config.Feed{Name: "one", URL: dir})
	if len(events) != 1 || events[0].Digest != imgs[0].Digest || events[0].Package != "minimist" || events[0].Environment != "prod" {
		t.Fatalf("events %+v", events)
	}
}
