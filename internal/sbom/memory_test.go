package sbom_test

import (
	"archive/tar"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/sbom"
)

// longPathLayer streams a hand-made layer of n files whose paths are
// about 4,000 bytes long, without holding it in memory.
func longPathLayer(n int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		dir := strings.Repeat("d", 200)
		for i := 0; i < n; i++ {
			// 19 levels of 200-byte names and a distinct file name.
			p := strings.Repeat(dir+"/", 19) + fmt.Sprintf("file-%07d", i)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: 0o644, Size: 1, Format: tar.FormatPAX}); err != nil {
				pw.CloseWithError(err)
				return
			}
			tw.Write([]byte("x"))
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr
}

// peakHeap runs fn and returns the largest heap in use seen while it
// ran, sampled every few milliseconds.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	return peak
}

// TestLayerMemoryIsBounded: analysing 100,000 entries with 4,000-byte
// paths stays under the documented ceiling (sbom.MemoryPerEntry bytes
// per entry, plus a fixed part), whatever the path lengths.
func TestLayerMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 400 MB of tar headers")
	}
	const n = 100_000
	a, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	var an *sbom.LayerAnalysis
	peak := peakHeap(func() {
		an, err = a.AnalyzeLayer(ctx, "sha256:hand-made", longPathLayer(n), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if an.Entries != n {
		t.Fatalf("%d entries analysed, want %d", an.Entries, n)
	}
	ceiling := uint64(n*sbom.MemoryPerEntry + 64<<20)
	t.Logf("peak heap %d MiB for %d entries of 4,000-byte paths (ceiling %d MiB)", peak>>20, n, ceiling>>20)
	if peak > ceiling {
		t.Fatalf("peak heap %d MiB, over the ceiling of %d MiB", peak>>20, ceiling>>20)
	}
}
