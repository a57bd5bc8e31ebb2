package scan_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

// TestStoredInventoryRoundTrip indexes real images (Alpine 3.10, the
// Debian bookworm minbase with a real Go binary and an upgraded package
// on top, hello-world) and checks that the inventory read back from the
// store is the one indexed, byte for byte as JSON, on SQLite and
// PostgreSQL: its packages come back from the store's rows rather than
// from the stored blob, which no longer holds them.
func TestStoredInventoryRoundTrip(t *testing.T) {
	ctx := context.Background()
	status := testenv.ReadShared(t, "debian", "bookworm-minbase-rootfs", "var", "lib", "dpkg", "status")
	// Hand-made upgrade: the first package's version raised in a layer on
	// top, so that the inventory also lists a package that was replaced.
	i := bytes.Index(status, []byte("\nVersion: "))
	upgraded := append(append(append([]byte{}, status[:i]...), []byte("\nVersion: 99:")...), status[i+len("\nVersion: "):]...)
	base := testenv.Layer(t, testenv.DebianBaseFiles(t))
	top := testenv.Layer(t, []testenv.File{testenv.GoBinaryFile(t, "usr/local/bin/age-keygen"),
		{Path: "var/lib/dpkg/status", Content: upgraded}})
	images := map[string]*source.Image{
		"debian": {Image: testenv.Image(t, base, top), Ref: oci.ImageRef{Transport: oci.TransportRegistry, Path: "test/debian"}},
	}
	for name, file := range map[string]string{"alpine": "alpine-310.tar.gz", "hello-world": "hello-world-v25.tar"} {
		ref, err := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, "images", file))
		if err != nil {
			t.Fatal(err)
		}
		img, err := source.Open(ctx, ref, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { img.Close() })
		images[name] = img
	}
	for backend, st := range stores(t) {
		an, err := sbom.NewAnalyzer()
		if err != nil {
			t.Fatal(err)
		}
		sc := scan.New(st, an)
		for name, img := range images {
			t.Run(backend+"/"+name, func(t *testing.T) {
				inv, err := sc.Inventory(ctx, img, nil)
				if err != nil {
					t.Fatal(err)
				}
				if name == "debian" && (len(inv.Removed) == 0 || len(inv.Packages) < 80) {
					t.Fatalf("the Debian image has %d packages, %d replaced", len(inv.Packages), len(inv.Removed))
				}
				if err := sc.Index(ctx, inv, "test/"+name); err != nil {
					t.Fatal(err)
				}
				stored, err := st.Image(ctx, inv.Digest)
				if err != nil {
					t.Fatal(err)
				}
				whole, err := scan.EncodeInventory(inv)
				if err != nil {
					t.Fatal(err)
				}
				_, decodeErr := scan.DecodeInventory(stored.Inventory)
				if slim := decodeErr != nil; slim != (name != "hello-world") || (slim && len(stored.Inventory) >= len(whole)/2) {
					t.Fatalf("stored blob %d bytes (whole %d), packages left to the store: %v", len(stored.Inventory), len(whole), slim)
				}
				t.Logf("stored blob %d bytes, whole %d", len(stored.Inventory), len(whole))
				sameInventory(t, st, stored, inv)
			})
		}
		// An inventory out of its order is stored whole, and comes back as
		// it was.
		t.Run(backend+"/unordered", func(t *testing.T) {
			inv, err := sc.Inventory(ctx, images["alpine"], nil)
			if err != nil {
				t.Fatal(err)
			}
			inv.Digest = "sha256:" + fmt.Sprintf("%064x", os.Getpid())
			inv.Packages[0], inv.Packages[1] = inv.Packages[1], inv.Packages[0]
			if err := sc.Index(ctx, inv, "test/unordered"); err != nil {
				t.Fatal(err)
			}
			stored, err := st.Image(ctx, inv.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := scan.DecodeInventory(stored.Inventory); err != nil {
				t.Fatalf("an unordered inventory was not stored whole: %v", err)
			}
			sameInventory(t, st, stored, inv)
		})
	}
}

func sameInventory(t *testing.T, st store.Store, stored store.Image, want *sbom.Inventory) {
	t.Helper()
	back, err := scan.StoredInventory(context.Background(), st, stored)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(want)
	b, _ := json.Marshal(back)
	if !bytes.Equal(a, b) {
		t.Fatalf("inventory read back differs:\nindexed %s\nread    %s", a, b)
	}
}

// TestInventoryDictionaryFrozen: stored inventories name the dictionary
// they were compressed with, so a shipped one never changes (add
// inventorydict/2.json instead).
func TestInventoryDictionaryFrozen(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("inventorydict", "1.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != "66ba1f46f82acc7c779cd0dc9b6c42ac452a0e8b6aed80836312f04a1da91636" {
		t.Fatalf("inventorydict/1.json changed (sha256 %s)", got)
	}
}

// BenchmarkIndex indexes the real Debian minbase inventory (with a Go
// binary on top) under a new digest each time, into SQLite: what ingest
// costs an image once its layers are analysed (splitting the inventory
// for the store, its package rows, the findings of new versions).
func BenchmarkIndex(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "s.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	an, err := sbom.NewAnalyzer()
	if err != nil {
		b.Fatal(err)
	}
	sc := scan.New(st, an)
	img := &source.Image{Image: testenv.Image(b, testenv.Layer(b, testenv.DebianBaseFiles(b)),
		testenv.Layer(b, []testenv.File{testenv.GoBinaryFile(b, "usr/local/bin/age-keygen")})),
		Ref: oci.ImageRef{Transport: oci.TransportRegistry, Path: "bench/debian"}}
	inv, err := sc.Inventory(ctx, img, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		inv.Digest = fmt.Sprintf("sha256:%064x", i+1)
		if err := sc.Index(ctx, inv, "bench/debian"); err != nil {
			b.Fatal(err)
		}
	}
}
