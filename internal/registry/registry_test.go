package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/testenv"
)

// events records what the registry reports.
type events struct {
	mu  sync.Mutex
	evs []registry.Event
}

func (e *events) hook(_ context.Context, ev registry.Event) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evs = append(e.evs, ev)
	return nil
}

func handMadeImage(t *testing.T, content string) v1.Image {
	t.Helper()
	return testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "hand-made.txt", Content: []byte(content)}}))
}

func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	var ev events
	srv := registrytest.Start(t, registry.Options{Dir: dir, OnEvent: ev.hook})
	img := handMadeImage(t, "one")
	ref, _ := name.ParseReference(srv.Host + "/team/app:1.0")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
	idxRef, _ := name.ParseReference(srv.Host + "/team/app:multi")
	if err := remote.WriteIndex(idxRef, idx); err != nil {
		t.Fatal(err)
	}
	wantDigest, _ := img.Digest()
	if len(ev.evs) == 0 || ev.evs[0].Action != "push" || ev.evs[0].Repository != "team/app" {
		t.Fatalf("events = %+v", ev.evs)
	}
	var tagged bool
	for _, e := range ev.evs {
		tagged = tagged || (e.Tag == "1.0" && e.Digest == wantDigest.String())
	}
	if !tagged {
		t.Fatalf("no push event for team/app:1.0 → %s: %+v", wantDigest, ev.evs)
	}
	srv.Close()

	// A new registry on the same directory serves the same content.
	srv2 := registrytest.Start(t, registry.Options{Dir: dir})
	for _, r := range []string{"/team/app:1.0", "/team/app@" + wantDigest.String()} {
		ref2, _ := name.ParseReference(srv2.Host + r)
		got, err := remote.Image(ref2)
		if err != nil {
			t.Fatalf("%s after restart: %v", r, err)
		}
		if d, _ := got.Digest(); d != wantDigest {
			t.Fatalf("%s: digest %s", r, d)
		}
		layers, _ := got.Layers()
		rc, err := layers[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	ref3, _ := name.ParseReference(srv2.Host + "/team/app:multi")
	if _, err := remote.Index(ref3); err != nil {
		t.Fatalf("index after restart: %v", err)
	}
	ms, err := srv2.Manifests()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, m := range ms {
		if m.Digest == wantDigest.String() && strings.Join(m.Tags, ",") == "1.0" {
			found = true
		}
	}
	if !found {
		t.Fatalf("Manifests() = %+v", ms)
	}
}

func TestDeleteTagIsDurable(t *testing.T) {
	dir := t.TempDir()
	var ev events
	srv := registrytest.Start(t, registry.Options{Dir: dir, OnEvent: ev.hook, Authorizer: tokenAuth{}})
	ref, _ := name.ParseReference(srv.Host + "/app:old")
	if err := remote.Write(ref, handMadeImage(t, "x"), asWriter); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(srv.Host + "/app:old")
	if err := remote.Delete(tag, asAdmin); err != nil {
		t.Fatal(err)
	}
	last := ev.evs[len(ev.evs)-1]
	if last.Action != "delete" || last.Tag != "old" || last.Digest == "" {
		t.Fatalf("delete event = %+v", last)
	}
	srv.Close()
	srv2 := registrytest.Start(t, registry.Options{Dir: dir})
	ref2, _ := name.ParseReference(srv2.Host + "/app:old")
	if _, err := remote.Head(ref2); err == nil {
		t.Fatal("deleted tag came back after a restart")
	}
}

func TestRefusesBadInput(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{})
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPut, "/v2/UPPER/manifests/1", "{}", http.StatusBadRequest},
		{http.MethodPut, "/v2/a/../b/manifests/1", "{}", http.StatusBadRequest},
		{http.MethodPut, "/v2/app/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000", "{}", http.StatusBadRequest},
		{http.MethodPut, "/v2/app/manifests/bad:tag", "{}", http.StatusBadRequest},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+srv.Host+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
}

// TestCrossRepositoryMount copies an image to another repository: every
// layer is mounted from the shared blob store, none uploaded.
func TestCrossRepositoryMount(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{})
	src, _ := name.ParseReference(srv.Host + "/dev/app:1")
	img := handMadeImage(t, "mount me")
	if err := remote.Write(src, img); err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	counter := &countingTransport{rt: http.DefaultTransport}
	dst, _ := name.ParseReference(srv.Host + "/prod/app:1")
	if err := remote.Write(dst, pulled, remote.WithTransport(counter)); err != nil {
		t.Fatal(err)
	}
	if counter.patches != 0 || counter.blobGets != 0 {
		t.Fatalf("copy moved blob data: %d uploads, %d downloads", counter.patches, counter.blobGets)
	}
	if _, err := remote.Image(dst); err != nil {
		t.Fatal(err)
	}
}

type countingTransport struct {
	rt       http.RoundTripper
	mu       sync.Mutex
	patches  int
	blobGets int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if r.Method == http.MethodPatch || (r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/")) {
		c.patches++
	}
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
		c.blobGets++
	}
	c.mu.Unlock()
	return c.rt.RoundTrip(r)
}

// tokenAuth is a hand-made Authorizer: "reader" may pull, "writer" may
// push, "admin" may delete too.
type tokenAuth struct{}

func (tokenAuth) Authorize(r *http.Request, a registry.Access) (registry.Principal, error) {
	_, pass, ok := r.BasicAuth()
	if !ok {
		return registry.Principal{}, registry.ErrUnauthenticated
	}
	allowed := map[string]registry.Action{"reader": registry.ActionPull, "writer": registry.ActionPush, "admin": registry.ActionDelete}[pass]
	if allowed == 0 {
		return registry.Principal{}, registry.ErrUnauthenticated
	}
	if a.Action > allowed {
		return registry.Principal{Name: pass}, fmt.Errorf("%w: %s may not %s", registry.ErrDenied, pass, a.Action)
	}
	return registry.Principal{Name: pass}, nil
}

var (
	asWriter = remote.WithAuth(&authn.Basic{Username: "x", Password: "writer"})
	asAdmin  = remote.WithAuth(&authn.Basic{Username: "x", Password: "admin"})
)

func TestAuthorization(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{Authorizer: tokenAuth{}})
	ref, _ := name.ParseReference(srv.Host + "/app:1")
	img := handMadeImage(t, "auth")
	var te *transport.Error
	if err := remote.Write(ref, img); !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous push: %v", err)
	}
	reader := remote.WithAuth(&authn.Basic{Username: "x", Password: "reader"})
	if err := remote.Write(ref, img, reader); err == nil {
		t.Fatal("read-only token pushed")
	}
	if err := remote.Write(ref, img, asWriter); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(ref, reader); err != nil {
		t.Fatalf("reader pull: %v", err)
	}
}

func TestInProcessTransport(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{Authorizer: tokenAuth{}})
	ref, _ := name.ParseReference(srv.Host + "/app:1")
	img := handMadeImage(t, "in process")
	if err := remote.Write(ref, img, asWriter); err != nil {
		t.Fatal(err)
	}
	// The host does not matter and no credentials are needed.
	local, _ := name.ParseReference("localhost/app:1")
	got, err := remote.Image(local, remote.WithTransport(srv.Transport()))
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := got.Layers()
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(local, remote.WithTransport(srv.Transport())); err != nil {
		t.Fatal(err)
	}
	missing, _ := name.ParseReference("localhost/app:2")
	if _, err := remote.Image(missing, remote.WithTransport(srv.Transport())); err == nil {
		t.Fatal("missing tag found")
	}
}
