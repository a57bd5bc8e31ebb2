package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
)

// pushBlob uploads a hand-made blob no manifest names, and dates it
// age ago, as garbage left by an abandoned push would be.
func pushBlob(t *testing.T, srv *registrytest.Server, dir, content string, age time.Duration) string {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	resp, err := http.Post("http://"+srv.Host+"/v2/junk/blobs/uploads/?digest="+digest, "application/octet-stream", strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob upload: %d", resp.StatusCode)
	}
	old := time.Now().Add(-age)
	if err := os.Chtimes(filepath.Join(dir, "blobs", "sha256", digest[7:]), old, old); err != nil {
		t.Fatal(err)
	}
	return digest
}

func blobExists(dir, digest string) bool {
	_, err := os.Stat(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
	return err == nil
}

// TestGC: unreferenced blobs past the grace period go; referenced ones,
// the blobs of artifacts that refer to an image, and fresh ones stay. A
// dry run reports and removes nothing.
func TestGC(t *testing.T) {
	dir := t.TempDir()
	srv := registrytest.Start(t, registry.Options{Dir: dir})
	img := handMadeImage(t, "kept")
	ref, _ := name.NewTag(srv.Host + "/app:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	sig := artifact(t, srv.Host+"/app", img, "application/vnd.dev.cosign.artifact.sig.v1+json")
	old := pushBlob(t, srv, dir, "abandoned long ago (hand-made)", 2*time.Hour)
	fresh := pushBlob(t, srv, dir, "uploaded a minute ago (hand-made)", time.Minute)

	dry, err := srv.GC(context.Background(), registry.GCOptions{DryRun: true, Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(dry.Removed) != 1 || dry.Removed[0] != old || dry.Fresh != 1 || !blobExists(dir, old) {
		t.Fatalf("dry run: %+v", dry)
	}
	rep, err := srv.GC(context.Background(), registry.GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || blobExists(dir, old) || !blobExists(dir, fresh) {
		t.Fatalf("gc: %+v", rep)
	}
	pullAll(t, ref)
	sigRef, _ := name.NewDigest(srv.Host + "/app@" + sig.String())
	pullAll(t, sigRef)
}

// TestGCDuringPushes runs collections while clients push: every push
// succeeds and every pushed image pulls whole afterwards; a manifest
// that names an old, unreferenced blob during a collection either finds
// it kept or is refused, never stored without it.
func TestGCDuringPushes(t *testing.T) {
	dir := t.TempDir()
	srv := registrytest.Start(t, registry.Options{Dir: dir})
	ctx, stop := context.WithCancel(context.Background())
	gcDone := make(chan int)
	go func() {
		n := 0
		for ctx.Err() == nil {
			if _, err := srv.GC(ctx, registry.GCOptions{Grace: time.Minute}); err != nil && ctx.Err() == nil {
				t.Errorf("gc: %v", err)
			}
			n++
		}
		gcDone <- n
	}()
	var wg sync.WaitGroup
	refs := make(chan name.Reference, 100)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				ref, _ := name.NewTag(fmt.Sprintf("%s/team/app%d:%d", srv.Host, w, i))
				if err := remote.Write(ref, handMadeImage(t, fmt.Sprintf("push %d.%d during gc", w, i))); err != nil {
					t.Errorf("push during gc: %v", err)
					return
				}
				refs <- ref
			}
		}(w)
	}
	// Images whose blobs are already there as old garbage (uploaded, no
	// manifest, past the grace period), pushed while the collector runs:
	// the client's HEAD or the manifest's check touches each blob, so it
	// is either kept or, gone before the HEAD, uploaded again.
	for i := 0; i < 20; i++ {
		img := handMadeImage(t, fmt.Sprintf("garbage revived %d", i))
		layers, _ := img.Layers()
		lrc, _ := layers[0].Compressed()
		lb, _ := io.ReadAll(lrc)
		lrc.Close()
		cb, _ := img.RawConfigFile()
		pushBlob(t, srv, dir, string(lb), time.Hour)
		pushBlob(t, srv, dir, string(cb), time.Hour)
		ref, _ := name.NewTag(fmt.Sprintf("%s/race/app:%d", srv.Host, i))
		if err := remote.Write(ref, img); err != nil {
			t.Fatalf("pushing an image whose blobs are old garbage, during gc: %v", err)
		}
		refs <- ref
	}
	wg.Wait()
	stop()
	if n := <-gcDone; n == 0 {
		t.Fatal("no collection ran")
	}
	close(refs)
	for ref := range refs {
		pullAll(t, ref)
	}
}
