package sbom_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/testenv"
)

// alpineLayer returns the uncompressed layer of the real Alpine image.
func alpineLayer(b *testing.B) []byte {
	b.Helper()
	img := openArchive(&testing.T{}, "images", "alpine-310.tar.gz")
	layers, err := img.Layers()
	if err != nil {
		b.Fatal(err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		b.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkAnalyzeLayer measures one read of a real layer: the cold
// path of every scan.
func BenchmarkAnalyzeLayer(b *testing.B) {
	data := alpineLayer(b)
	a, err := sbom.NewAnalyzer()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := a.AnalyzeLayer(ctx, "sha256:bench", bytes.NewReader(data), 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInventoryWarm measures a scan whose layers are all cached:
// decode and merge only, the warm path.
func BenchmarkInventoryWarm(b *testing.B) {
	img := testenv.Image(b,
		testenv.Layer(b, testenv.DebianBaseFiles(b)),
		testenv.Layer(b, []testenv.File{testenv.GoBinaryFile(b, "usr/bin/age-keygen")}))
	cache := newCountingCache(b)
	a, _ := sbom.NewAnalyzer()
	if _, err := a.Inventory(ctx, img, cache, nil); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		inv, err := a.Inventory(ctx, img, cache, nil)
		if err != nil || inv.ReusedLayers != 2 {
			b.Fatal(err)
		}
	}
}
