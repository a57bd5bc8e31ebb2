// Command registry pushes and pulls images to a registry, timing both,
// for bench/registry.sh; with -serve it runs socle's embedded registry
// alone in this process, so that its memory is measured apart from
// socle serve's scans.
//
// Every image is made of real layers from the shared data: the Alpine
// 3.10 image's layer (shared by all), and a layer of its own holding the
// real age-keygen Go binary beside a one-line marker that makes it
// unique (hand-made).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/source"
)

func main() {
	serve := flag.String("serve", "", "serve socle's embedded registry on this address, storing in -dir, until killed")
	dir := flag.String("dir", "", "the registry's directory (-serve)")
	target := flag.String("target", "", "host:port of the registry to push to and pull from")
	data := flag.String("data", "", "the shared data directory")
	images := flag.Int("images", 200, "images to push and pull")
	parallel := flag.Int("parallel", 50, "images at once")
	repo := flag.String("repo", "bench/app", "repository")
	flag.Parse()
	if *serve != "" {
		serveRegistry(*serve, *dir)
		return
	}
	base, err := alpineLayer(*data)
	if err != nil {
		log.Fatal(err)
	}
	gobin, err := os.ReadFile(filepath.Join(*data, "gobin", "age-keygen"))
	if err != nil {
		log.Fatal(err)
	}
	imgs := make([]v1.Image, *images)
	var bytesPushed int64
	for i := range imgs {
		top, err := topLayer(gobin, i)
		if err != nil {
			log.Fatal(err)
		}
		if imgs[i], err = mutate.AppendLayers(empty.Image, base, top); err != nil {
			log.Fatal(err)
		}
		n, _ := top.Size()
		bytesPushed += n
	}
	bn, _ := base.Size()
	bytesPushed += bn
	tr := &http.Transport{MaxIdleConnsPerHost: *parallel, MaxConnsPerHost: *parallel}
	refs := make([]name.Reference, *images)
	for i := range refs {
		refs[i], _ = name.NewTag(fmt.Sprintf("%s/%s:%d.0.0", *target, *repo, i), name.Insecure)
	}
	pushed, pushErr := run(*parallel, *images, func(i int) error {
		return remote.Write(refs[i], imgs[i], remote.WithTransport(tr))
	})
	var pulledBytes atomic.Int64
	pulled, pullErr := run(*parallel, *images, func(i int) error {
		img, err := remote.Image(refs[i], remote.WithTransport(tr))
		if err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				return err
			}
			n, err := io.Copy(io.Discard, rc)
			rc.Close()
			if err != nil {
				return err
			}
			pulledBytes.Add(n)
		}
		return nil
	})
	json.NewEncoder(os.Stdout).Encode(map[string]any{
		"images": *images, "parallel": *parallel,
		"push_seconds": pushed.Seconds(), "push_errors": pushErr, "push_mb": float64(bytesPushed) / (1 << 20),
		"pull_seconds": pulled.Seconds(), "pull_errors": pullErr, "pull_mb": float64(pulledBytes.Load()) / (1 << 20),
	})
}

// run calls fn for 0..n-1, parallel at once, and returns the wall time
// and the number of failures (the first is logged).
func run(parallel, n int, fn func(i int) error) (time.Duration, int) {
	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Int64
	var once sync.Once
	sem := make(chan struct{}, parallel)
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				failed.Add(1)
				once.Do(func() { log.Printf("image %d: %v", i, err) })
			}
		}(i)
	}
	wg.Wait()
	return time.Since(start), int(failed.Load())
}

// alpineLayer is the layer of the shared Alpine 3.10 image, in memory:
// the client side is not what is measured.
func alpineLayer(data string) (v1.Layer, error) {
	img, err := source.Open(context.Background(), oci.ImageRef{Transport: oci.TransportDockerArchive, Path: filepath.Join(data, "images", "alpine-310.tar.gz")}, source.Options{})
	if err != nil {
		return nil, err
	}
	defer img.Close()
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		return nil, fmt.Errorf("alpine layers: %v", err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	return gzipLayer(b)
}

// gzipLayer compresses a tar once, so that pushes send the same bytes
// without compressing them again on the client.
func gzipLayer(tarBytes []byte) (v1.Layer, error) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarBytes)
	zw.Close()
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// topLayer holds the real Go binary and a hand-made marker naming i.
func topLayer(gobin []byte, i int) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
		mode int64
	}{{"usr/bin/age-keygen", gobin, 0o755}, {"etc/bench-image", []byte(fmt.Sprintf("image %d (hand-made)\n", i)), 0o644}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		tw.Write(f.data)
	}
	tw.Close()
	return gzipLayer(buf.Bytes())
}

// serveRegistry runs the embedded registry alone until a signal.
func serveRegistry(addr, dir string) {
	r, err := registry.New(registry.Options{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Println(ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	srv.Shutdown(context.Background())
}
