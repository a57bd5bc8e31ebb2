package registry_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
)

// startUpload begins an upload of repo and returns its URL.
func startUpload(t *testing.T, host, repo string) string {
	t.Helper()
	resp, err := http.Post("http://"+host+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("starting an upload: %d", resp.StatusCode)
	}
	return "http://" + host + resp.Header.Get("Location")
}

// TestStalledUploadDelaysNoOne: a client that sends part of a blob and
// stops holds only its own upload; an unrelated push completes while it
// is stalled, and the stalled one is cut when its read deadline passes.
func TestStalledUploadDelaysNoOne(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{ReadIdle: 2 * time.Second})
	loc := startUpload(t, srv.Host, "slow/app")
	pr, pw := io.Pipe()
	stalled := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPatch, loc, pr)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			stalled <- 0
			return
		}
		resp.Body.Close()
		stalled <- resp.StatusCode
	}()
	pw.Write([]byte("the first bytes of a blob, then nothing"))
	// The stalled request is inside the registry: push something else.
	ref, _ := name.NewTag(srv.Host + "/fast/app:1")
	done := make(chan error, 1)
	go func() { done <- remote.Write(ref, handMadeImage(t, "not held up")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the unrelated push: %v", err)
		}
	case code := <-stalled:
		t.Fatalf("the stalled upload ended (%d) before the unrelated push finished", code)
	}
	// The stalled upload is cut by its read deadline and dropped.
	if code := <-stalled; code != http.StatusBadRequest && code != 0 {
		t.Fatalf("the stalled upload answered %d", code)
	}
	pw.Close()
}

// TestAbandonedUploadsExpire: an upload left without a byte for longer
// than the timeout is dropped and its file removed.
func TestAbandonedUploadsExpire(t *testing.T) {
	dir := t.TempDir()
	srv := registrytest.Start(t, registry.Options{Dir: dir, UploadTimeout: 100 * time.Millisecond})
	loc := startUpload(t, srv.Host, "app")
	req, _ := http.NewRequest(http.MethodPatch, loc, strings.NewReader("half a blob"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("patch: %v %v", err, resp)
	}
	resp.Body.Close()
	for srv.Uploads() > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(left) != 0 {
		t.Fatalf("files left: %v", left)
	}
	req, _ = http.NewRequest(http.MethodPatch, loc, strings.NewReader("the rest"))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an expired upload took more bytes: %d", resp.StatusCode)
	}
}

// TestMaxBlobSize: a blob over the limit is refused and not stored.
func TestMaxBlobSize(t *testing.T) {
	dir := t.TempDir()
	srv := registrytest.Start(t, registry.Options{Dir: dir, MaxBlobSize: 1024})
	data := make([]byte, 2048)
	sum := sha256.Sum256(data)
	resp, err := http.Post("http://"+srv.Host+"/v2/app/blobs/uploads/?digest=sha256:"+hex.EncodeToString(sum[:]), "application/octet-stream", strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 2 KiB blob over a 1 KiB limit: %d", resp.StatusCode)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "uploads")); len(left) != 0 {
		t.Fatalf("files left: %v", left)
	}
}

// TestUploadMemoryIsBounded: a 64 MiB blob streams to disk; the registry
// allocates a small fraction of it.
func TestUploadMemoryIsBounded(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{})
	const size = 64 << 20
	h := sha256.New()
	if _, err := io.CopyN(h, &seeded{}, size); err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	loc := startUpload(t, srv.Host, "big/app")
	req, _ := http.NewRequest(http.MethodPut, loc+"?digest="+digest, io.LimitReader(&seeded{}, size))
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/4 {
		t.Fatalf("a %d-byte upload allocated %d bytes", size, alloc)
	}
}

// seeded is a deterministic byte stream (hand-made data).
type seeded struct{ n byte }

func (s *seeded) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = s.n
		s.n = s.n*31 + 7
	}
	return len(p), nil
}

// TestPushFailsWhenTheScanCannotBeQueued: when the scan queue refuses
// (the database is locked or down), the push answers 5xx and the
// manifest and tag are not served, before or after a restart.
func TestPushFailsWhenTheScanCannotBeQueued(t *testing.T) {
	dir := t.TempDir()
	down := errors.New("database is locked (injected)")
	srv := registrytest.Start(t, registry.Options{Dir: dir, OnEvent: func(context.Context, registry.Event) error { return down }})
	img := handMadeImage(t, "unqueued")
	ref, _ := name.NewTag(srv.Host + "/app:1")
	err := remote.Write(ref, img)
	if s := statusOf(err); s < 500 {
		t.Fatalf("push with a failing queue: %v", err)
	}
	d, _ := img.Digest()
	for _, r := range []string{srv.Host + "/app:1", srv.Host + "/app@" + d.String()} {
		ref, _ := name.ParseReference(r)
		if _, err := remote.Head(ref); statusOf(err) != http.StatusNotFound {
			t.Fatalf("%s is served after a refused push: %v", r, err)
		}
	}
	srv.Close()
	again := registrytest.Start(t, registry.Options{Dir: dir})
	if ms, _ := again.Manifests(); len(ms) != 0 {
		t.Fatalf("after a restart the registry serves %+v", ms)
	}
}

// TestFullDisk pushes to a registry on a 2 MiB file system: the blob
// that does not fit and the manifest that cannot be written fail with a
// 5xx, and nothing half-written is served. It needs root to mount.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system needs root (.ci/run runs as root)")
	}
	dir := t.TempDir()
	if out, err := runCmd("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { runCmd("umount", dir) })
	srv := registrytest.Start(t, registry.Options{Dir: filepath.Join(dir, "registry")})
	// A 4 MiB blob does not fit.
	big := make([]byte, 4<<20)
	rand.Read(big)
	sum := sha256.Sum256(big)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	resp, err := http.Post("http://"+srv.Host+"/v2/app/blobs/uploads/?digest="+digest, "application/octet-stream", strings.NewReader(string(big)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 500 {
		t.Fatalf("a blob larger than the disk: %d", resp.StatusCode)
	}
	head, err := http.Head("http://" + srv.Host + "/v2/app/blobs/" + digest)
	if err != nil {
		t.Fatal(err)
	}
	head.Body.Close()
	if head.StatusCode != http.StatusNotFound {
		t.Fatalf("the blob that failed is served: %d", head.StatusCode)
	}
	// Fill the disk to the last bytes, then push a small image: whatever
	// fails is not served.
	filler := make([]byte, 64<<10)
	f, _ := os.Create(filepath.Join(dir, "filler"))
	for {
		if _, err := f.Write(filler); err != nil {
			break
		}
	}
	f.Close()
	img := handMadeImage(t, "no room")
	ref, _ := name.NewTag(srv.Host + "/app:1")
	if err := remote.Write(ref, img); err == nil {
		t.Fatal("a push to a full disk succeeded")
	}
	d, _ := img.Digest()
	for _, r := range []string{srv.Host + "/app:1", srv.Host + "/app@" + d.String()} {
		ref, _ := name.ParseReference(r)
		if _, err := remote.Head(ref); statusOf(err) != http.StatusNotFound {
			t.Fatalf("%s is served after a failed push: %v", r, err)
		}
	}
	if ms, _ := srv.Manifests(); len(ms) != 0 {
		t.Fatalf("serving %+v", ms)
	}
}

func runCmd(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
