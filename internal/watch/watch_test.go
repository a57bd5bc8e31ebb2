package watch_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/watch"
)

var ctx = context.Background()

func newWatcher(t *testing.T, reg *registrytest.Server) (*watch.Watcher, store.Store) {
	t.Helper()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	an, _ := sbom.NewAnalyzer()
	o := watch.Options{}
	if reg != nil {
		o.Embedded, o.EmbeddedHost = reg.Registry, reg.Host
	}
	return watch.New(st, scan.New(st, an), o), st
}

// runJobs runs every pending scan job with the watcher's handler.
func runJobs(t *testing.T, w *watch.Watcher, st store.Store) int {
	t.Helper()
	n := 0
	for {
		j, err := st.ClaimJob(ctx, "test", []string{watch.KindScan}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if j == nil {
			return n
		}
		if err := w.HandleScan(ctx, j, func(int, int, string) {}); err != nil {
			t.Fatalf("job %s: %v", j.Key, err)
		}
		if err := st.FinishJob(ctx, j.ID, "test", "", false, 0); err != nil {
			t.Fatal(err)
		}
		n++
	}
}

func push(t *testing.T, host, ref string, content string) string {
	t.Helper()
	img := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "hand-made", Content: []byte(content)}}))
	r, _ := name.ParseReference(host + "/" + ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// TestPollExternalRegistry watches a repository of another registry
// (an in-process one reached over HTTP) and follows only matching tags.
func TestPollExternalRegistry(t *testing.T) {
	other := registrytest.Start(t, registry.Options{})
	d1 := push(t, other.Host, "team/app:1.0", "one")
	d2 := push(t, other.Host, "team/app:1.1", "two")
	push(t, other.Host, "team/app:dev", "dev")
	w, st := newWatcher(t, nil)
	wt := config.Watch{Repository: other.Host + "/team/app", Tags: []string{"1.*"}}
	n, err := w.Poll(ctx, wt)
	if err != nil || n != 2 {
		t.Fatalf("poll queued %d, %v", n, err)
	}
	if runJobs(t, w, st) != 2 {
		t.Fatal("jobs")
	}
	tags, _ := st.Tags(ctx, other.Host+"/team/app")
	got := map[string]string{}
	for _, tg := range tags {
		got[tg.Tag] = tg.Digest
	}
	if len(got) != 2 || got["1.0"] != d1 || got["1.1"] != d2 {
		t.Fatalf("tags = %v", got)
	}
	// Nothing new: nothing queued. A moved tag: one scan.
	if n, _ := w.Poll(ctx, wt); n != 0 {
		t.Fatalf("second poll queued %d", n)
	}
	d3 := push(t, other.Host, "team/app:1.1", "three")
	if n, _ := w.Poll(ctx, wt); n != 1 {
		t.Fatalf("poll after a move queued %d", n)
	}
	runJobs(t, w, st)
	hist, _ := st.TagHistory(ctx, other.Host+"/team/app", "1.1")
	if len(hist) != 2 || hist[0].Digest != d3 {
		t.Fatalf("history = %+v", hist)
	}
}

// TestReconcileQueuesWhatWasMissed: images pushed while no event reached
// the index (a crash between the two) are queued at start.
func TestReconcileQueuesWhatWasMissed(t *testing.T) {
	reg := registrytest.Start(t, registry.Options{}) // no event hook
	push(t, reg.Host, "app:1", "a")
	push(t, reg.Host, "app:2", "b")
	push(t, reg.Host, "app:sha256-"+string(make([]byte, 0))+"0000000000000000000000000000000000000000000000000000000000000000.sig", "signature")
	w, st := newWatcher(t, reg)
	n, err := w.Reconcile(ctx)
	if err != nil || n != 2 {
		t.Fatalf("reconcile queued %d, %v", n, err)
	}
	runJobs(t, w, st)
	if n, _ := w.Reconcile(ctx); n != 0 {
		t.Fatalf("second reconcile queued %d", n)
	}
	var tags []string
	all, _ := st.Tags(ctx, "app")
	for _, tg := range all {
		tags = append(tags, tg.Tag)
	}
	sort.Strings(tags)
	if len(tags) != 2 || tags[0] != "1" || tags[1] != "2" {
		t.Fatalf("tags %v", tags)
	}
}

// tagReads is a real store that records which repositories' tags were read.
type tagReads struct {
	store.Store
	repos []string
}

func (r *tagReads) Tags(ctx context.Context, repository string) ([]store.TagEvent, error) {
	r.repos = append(r.repos, repository)
	return r.Store.Tags(ctx, repository)
}

// TestReconcileReadsTheRegistrysTags: reconciling reads the index's tags
// of the repositories the embedded registry holds, not every tag of a
// store that also indexes other registries (hand-made tag), and nothing
// for an empty registry.
func TestReconcileReadsTheRegistrysTags(t *testing.T) {
	for _, images := range []int{0, 1} {
		reg := registrytest.Start(t, registry.Options{})
		if images > 0 {
			push(t, reg.Host, "app:1", "a")
		}
		_, st := newWatcher(t, nil)
		if err := st.PutTag(ctx, store.TagEvent{Repository: "other/x", Tag: "1",
			Digest: "sha256:e15e000000000000000000000000000000000000000000000000000000000000", At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		rec := &tagReads{Store: st}
		an, _ := sbom.NewAnalyzer()
		w := watch.New(rec, scan.New(st, an), watch.Options{Embedded: reg.Registry, EmbeddedHost: reg.Host})
		n, err := w.Reconcile(ctx)
		if err != nil || n != images {
			t.Fatalf("%d images: reconcile queued %d, %v", images, n, err)
		}
		if want := []string{"app"}[:images]; !slices.Equal(rec.repos, want) {
			t.Fatalf("%d images: tags read of %q, want %q", images, rec.repos, want)
		}
	}
}

func TestEnqueueReferenceAndIndex(t *testing.T) {
	reg := registrytest.Start(t, registry.Options{})
	w, st := newWatcher(t, reg)
	amd := push(t, reg.Host, "app:1", "x")
	for _, ref := range []string{"app:1", reg.Host + "/app:1"} {
		id, err := w.EnqueueReference(ctx, ref, false)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		j, _ := st.JobByID(ctx, id)
		var req watch.ScanRequest
		json.Unmarshal(j.Payload, &req)
		if !req.Embedded || req.Repository != "app" || req.Digest != amd || req.Tag != "1" {
			t.Fatalf("%s queued %+v", ref, req)
		}
	}
	if _, err := w.EnqueueReference(ctx, "app:missing", false); err == nil {
		t.Fatal("missing tag queued")
	}
}
