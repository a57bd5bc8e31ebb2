package scan_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/postgres"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

// counting counts layer analyses written, per DiffID.
type counting struct {
	store.Store
	mu     sync.Mutex
	stores map[string]int
}

func (c *counting) StoreLayerAnalysis(ctx context.Context, digest, diffID string, b []byte) error {
	c.mu.Lock()
	c.stores[diffID]++
	c.mu.Unlock()
	return c.Store.StoreLayerAnalysis(ctx, digest, diffID, b)
}

func stores(t *testing.T) map[string]store.Store {
	t.Helper()
	ctx := context.Background()
	out := map[string]store.Store{}
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	out["sqlite"] = s
	if url := os.Getenv("SOCLE_TEST_POSTGRES"); url != "" {
		p, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		// A private schema keeps this test's rows apart.
		t.Cleanup(func() { p.Close() })
		out["postgres"] = p
	}
	return out
}

// TestReplicasShareLayerWork scans the same images from several
// "replicas" (scanners with their own owner name) on one database at
// once: every layer is analysed exactly once.
func TestReplicasShareLayerWork(t *testing.T) {
	for name, st := range stores(t) {
		t.Run(name, func(t *testing.T) {
			c := &counting{Store: st, stores: map[string]int{}}
			base := testenv.Layer(t, testenv.DebianBaseFiles(t))
			var imgs []*source.Image
			for i := 0; i < 3; i++ {
				// Hand-made top layers, unique per test run so that a
				// shared PostgreSQL holds no earlier analysis of them.
				top := testenv.Layer(t, []testenv.File{{Path: fmt.Sprintf("srv/%s/%d", t.Name(), i), Content: []byte(fmt.Sprint(os.Getpid()))}})
				imgs = append(imgs, &source.Image{Image: testenv.Image(t, base, top), Ref: oci.ImageRef{Transport: oci.TransportRegistry, Path: "test"}})
			}
			var wg sync.WaitGroup
			errs := make(chan error, 12)
			for r := 0; r < 4; r++ {
				an, err := sbom.NewAnalyzer()
				if err != nil {
					t.Fatal(err)
				}
				sc := scan.New(c, an, scan.WithOwner(fmt.Sprintf("replica-%d", r)))
				for _, img := range imgs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := sc.Inventory(context.Background(), img, nil); err != nil {
							errs <- err
						}
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			for d, n := range c.stores {
				if n > 1 {
					t.Errorf("layer %s analysed %d times", d, n)
				}
			}
		})
	}
}
