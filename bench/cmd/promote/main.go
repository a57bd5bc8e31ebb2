// Command promote times promotions of many images between environments
// in socle's embedded registry, and compares them with crane doing the
// same tag moves and copies (no gates, no records). bench/promote.sh runs
// it.
//
// The images are hand-made: a shared 4 MiB base layer and one small
// layer of their own. Environments: dev and qa move a tag in the image's
// repository; prod lives in a repository of its own, so a promotion
// there copies the digest (cross-repository blob mounts). A counting
// proxy in front of the registry reports the bytes of blob data each
// phase moved: promotion must move none.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/store/sqlite"
)

// counter counts the requests and blob bytes through the proxy.
type counter struct {
	manifestOps, blobOps, mounts atomic.Int64
	blobBytesIn, blobBytesOut    atomic.Int64
}

func (c *counter) reset() {
	c.manifestOps.Store(0)
	c.blobOps.Store(0)
	c.mounts.Store(0)
	c.blobBytesIn.Store(0)
	c.blobBytesOut.Store(0)
}

type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n.Add(int64(n))
	return n, err
}

func (c *counter) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		switch {
		case strings.Contains(p, "/manifests/"):
			c.manifestOps.Add(1)
		case strings.Contains(p, "/blobs/"):
			c.blobOps.Add(1)
			if r.URL.Query().Get("mount") != "" {
				c.mounts.Add(1)
			}
			if r.Method == http.MethodGet {
				w = countingWriter{w, &c.blobBytesOut}
			}
			if r.Method == http.MethodPut || r.Method == http.MethodPatch || r.Method == http.MethodPost {
				body, _ := io.ReadAll(r.Body)
				c.blobBytesIn.Add(int64(len(body)))
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
		}
		h.ServeHTTP(w, r)
	})
}

func main() {
	var (
		work   = flag.String("work", os.TempDir(), "working directory")
		images = flag.Int("images", 1000, "images to promote")
		crane  = flag.String("crane", "", "crane binary, for the comparison (skipped when empty)")
		par    = flag.Int("parallel", 8, "promotions at once")
	)
	flag.Parse()
	ctx := context.Background()
	dir, err := os.MkdirTemp(*work, "promote-bench-")
	check(err)
	defer os.RemoveAll(dir)

	reg, err := registry.New(registry.Options{Dir: filepath.Join(dir, "registry")})
	check(err)
	cnt := &counter{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	go http.Serve(ln, cnt.wrap(reg))
	host := ln.Addr().String()

	st, err := sqlite.Open(ctx, filepath.Join(dir, "socle.db"))
	check(err)
	defer st.Close()
	cfg, err := config.Parse("socle.yaml", []byte(`environments:
  - name: dev
  - name: qa
  - name: prod
    repository: "{{.Registry}}/prod/{{.Path}}"
`))
	check(err)
	p := &promote.Promoter{Store: st, Envs: cfg.Environments}
	actor := promote.Actor{Name: "bench", Role: "admin"}

	// The images: a shared base layer and a small one of their own.
	base := randomLayer(4 << 20)
	refs := make([]name.Digest, *images)
	start := time.Now()
	parallel(*images, 8, func(i int) {
		img, err := mutate.AppendLayers(empty.Image, base, randomLayer(2<<10))
		check(err)
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		tag, err := name.NewTag(fmt.Sprintf("%s/apps/svc-%04d:1.0.%d", host, i, i))
		check(err)
		check(remote.Write(tag, img))
		d, err := img.Digest()
		check(err)
		refs[i] = tag.Context().Digest(d.String())
	})
	pushTime := time.Since(start)

	fmt.Printf("# socle promote benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02T15:04Z"))
	fmt.Printf("%d images (shared 4 MiB base layer + 2 KiB own layer) pushed in %s; %d at once; SQLite store; embedded registry on loopback.\n\n",
		*images, pushTime.Round(time.Millisecond), *par)
	fmt.Println("| phase | time | images/s | manifest requests | blob requests (existence checks, mounts) | blob mounts | blob bytes uploaded | blob bytes downloaded |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	times := map[string]time.Duration{}
	for _, env := range []string{"dev", "qa", "prod"} {
		cnt.reset()
		start := time.Now()
		var failed atomic.Int64
		parallel(*images, *par, func(i int) {
			res, err := p.Promote(ctx, promote.Request{Image: refs[i].String(), To: env, Actor: actor})
			if err != nil || res.Promotion.State != "done" {
				failed.Add(1)
				log.Printf("promote %s to %s: %v", refs[i], env, err)
			}
		})
		d := time.Since(start)
		times["socle "+env] = d
		row(fmt.Sprintf("socle promote → %s", env), d, *images, cnt)
		if failed.Load() > 0 {
			log.Fatalf("%d promotions to %s failed", failed.Load(), env)
		}
	}
	if *crane != "" {
		// crane, one process per image, the same moves: tags for dev and
		// qa, a copy for prod.
		for _, env := range []string{"dev", "qa", "prod"} {
			cnt.reset()
			start := time.Now()
			parallel(*images, *par, func(i int) {
				var args []string
				if env == "prod" {
					args = []string{"copy", refs[i].String(), fmt.Sprintf("%s/prodcrane/%s:prod", host, refs[i].Context().RepositoryStr())}
				} else {
					args = []string{"tag", refs[i].String(), env + "-crane"}
				}
				if out, err := exec.Command(*crane, args...).CombinedOutput(); err != nil {
					log.Fatalf("crane %v: %v\n%s", args, err, out)
				}
			})
			d := time.Since(start)
			times["crane "+env] = d
			row(fmt.Sprintf("crane %s → %s", map[bool]string{true: "copy", false: "tag"}[env == "prod"], env), d, *images, cnt)
		}
		fmt.Println()
		for _, env := range []string{"dev", "qa", "prod"} {
			fmt.Printf("- %s: socle (gates, records, audit chain) takes %.2fx crane's time (tag move only)\n", env,
				times["socle "+env].Seconds()/times["crane "+env].Seconds())
		}
	}
	fmt.Println()
	fmt.Println("Blob bytes uploaded during promotion must be 0: every layer reaches prod by a mount.")
}

func row(label string, d time.Duration, n int, c *counter) {
	fmt.Printf("| %s | %s | %.0f | %d | %d | %d | %d | %d |\n", label, d.Round(time.Millisecond), float64(n)/d.Seconds(),
		c.manifestOps.Load(), c.blobOps.Load(), c.mounts.Load(), c.blobBytesIn.Load(), c.blobBytesOut.Load())
}

func randomLayer(n int) v1.Layer {
	b := make([]byte, n)
	rand.Read(b)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	check(tw.WriteHeader(&tar.Header{Name: "data.bin", Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg}))
	_, err := tw.Write(b)
	check(err)
	check(tw.Close())
	return static.NewLayer(buf.Bytes(), types.OCIUncompressedLayer)
}

func parallel(n, par int, fn func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, par)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}(i)
	}
	wg.Wait()
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
