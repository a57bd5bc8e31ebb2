package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/jobs"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
	"github.com/socle-dev/socle/internal/watch"
)

// stack is socle serve assembled in process: a real SQLite file, the
// embedded registry on an httptest server, the job runner and the API.
type stack struct {
	t        testing.TB
	handler  http.Handler
	server   *server.API
	st       store.Store
	reg      *registrytest.Server
	api      *httptest.Server
	watcher  *watch.Watcher
	tokens   map[string]string // role -> secret
	stopJobs context.CancelFunc
}

func newStack(t testing.TB, opts ...func(st store.Store, d *server.Deps)) *stack {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, st: st, tokens: map[string]string{}}
	an, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	sc := scan.New(st, an, scan.WithOwner("test"))
	var runner *jobs.Runner
	s.reg = registrytest.Start(t, registry.Options{OnEvent: func(ctx context.Context, ev registry.Event) error {
		return s.watcher.OnRegistryEvent(ctx, ev)
	}})
	s.watcher = watch.New(st, sc, watch.Options{Embedded: s.reg.Registry, EmbeddedHost: s.reg.Host, Wake: func() {
		if runner != nil {
			runner.Wake()
		}
	}, Check: check.Keeper{St: st}.Check})
	runner = jobs.NewRunner(st, map[string]jobs.Handler{watch.KindScan: s.watcher.HandleScan, watch.KindCheck: s.watcher.HandleCheck},
		jobs.Options{Owner: "test", Poll: 50 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { runner.Run(runCtx, ctx); close(done) }()
	s.stopJobs = func() { stop(); <-done }
	deps := server.Deps{Store: st, Scans: s.watcher, Auth: auth.NewAuthenticator(st)}
	for _, o := range opts {
		o(st, &deps)
	}
	srv, err := server.NewAPI(deps)
	if err != nil {
		t.Fatal(err)
	}
	s.server, s.handler = srv, srv.Handler()
	s.api = httptest.NewServer(s.handler)
	for _, role := range auth.Roles {
		secret, _, err := auth.Create(ctx, st, auth.Spec{User: role + "-user", Name: role + "-user", Role: role}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[role] = secret
	}
	t.Cleanup(func() {
		s.api.Close()
		s.stopJobs()
		st.Close()
	})
	return s
}

// importAdvisories loads shared advisory data and re-evaluates.
func (s *stack) importAdvisories(rel ...string) {
	s.t.Helper()
	ctx := context.Background()
	im := vuln.NewImporter(s.st, "test")
	if err := im.ImportPath(ctx, testenv.SharedData(s.t, rel...)); err != nil {
		s.t.Fatal(err)
	}
	stats, err := im.Finish(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	an, _ := sbom.NewAnalyzer()
	if _, err := scan.New(s.st, an).Reevaluate(ctx, s.st, stats.Packages); err != nil {
		s.t.Fatal(err)
	}
}

// pushAlpine pushes the real Alpine 3.10 image to repo:tag and returns
// its digest in the registry.
func (s *stack) pushAlpine(repo, tag string) string {
	s.t.Helper()
	r, _ := oci.ParseImageRef("docker-archive:" + testenv.SharedData(s.t, "images", "alpine-310.tar.gz"))
	img, err := source.Open(context.Background(), r, source.Options{})
	if err != nil {
		s.t.Fatal(err)
	}
	defer img.Close()
	return s.push(img, repo, tag)
}

func (s *stack) push(img v1.Image, repo, tag string) string {
	s.t.Helper()
	ref, err := name.ParseReference(s.reg.Host + "/" + repo + ":" + tag)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		s.t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// waitImage waits until the scan of digest is indexed.
func (s *stack) waitImage(digest string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ok, _ := s.st.HasImage(context.Background(), digest); ok {
			tags, _ := s.st.Tags(context.Background(), "")
			for _, t := range tags {
				if t.Digest == digest {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("image %s was never scanned", digest)
}

// call makes an API request as role ("" for none) and decodes JSON.
func (s *stack) call(method, path, role string, body string, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.api.URL+path, rd)
	if role != "" {
		req.Header.Set("Authorization", "Bearer "+s.tokens[role])
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: %v\n%s", method, path, err, b)
		}
	}
	return resp.StatusCode
}
