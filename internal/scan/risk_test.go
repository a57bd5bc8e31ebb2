package scan_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/remediate"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

// TestRiskOrderAcrossTheFleet: two images carry the same vulnerable
// packages (the real Alpine 3.10 image, and the same image with one
// hand-made layer on top), one deployed in prod, the other in dev, and a
// third copy deployed nowhere. The same CVE ranks highest in the prod
// image, then dev, then the undeployed one, in the findings of each image
// and in the exposure report, whose prod list is sorted by risk.
func TestRiskOrderAcrossTheFleet(t *testing.T) {
	ctx := context.Background()
	st, sc := alpineStore(t)
	importAll(t, st, "nvd", testenv.SharedData(t, "nvd"))
	base, err := tarball.Image(func() (io.ReadCloser, error) {
		f, err := os.Open(testenv.SharedData(t, "images", "alpine-310.tar.gz"))
		if err != nil {
			return nil, err
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		return struct {
			io.Reader
			io.Closer
		}{zr, f}, nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, name := range []string{"shop", "billing", "batch"} {
		img, err := mutate.AppendLayers(base, must(random.Layer(64, "application/vnd.oci.image.layer.v1.tar")))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), name)
		p, err := layout.Write(dir, empty.Index)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AppendImage(img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		ref, _ := oci.ParseImageRef("oci:" + dir + "@" + d.String())
		src, err := source.Open(ctx, ref, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sc.Scan(ctx, src, scan.Options{Index: true}); err != nil {
			t.Fatal(err)
		}
		src.Close()
		digests[name] = d.String()
	}
	now := time.Now().UTC()
	for name, env := range map[string]string{"shop": "prod", "billing": "dev"} {
		if err := st.PutDeployment(ctx, store.Deployment{Environment: env, Repository: "registry.test.invalid/" + name, Digest: digests[name], Since: now, By: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	order := []string{"dev", "staging", "prod"}
	placed, err := vuln.Placements(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	risk := map[string]float64{}
	const cve = "CVE-2021-3450"
	for name, d := range digests {
		rows, err := st.ImageFindings(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		fs := vuln.FromStore(rows)
		vuln.Rank(fs, placed[d], order)
		vuln.SortByRisk(fs)
		for i := 1; i < len(fs); i++ {
			if fs[i].Risk > fs[i-1].Risk {
				t.Fatalf("%s: findings not in risk order", name)
			}
		}
		for _, f := range fs {
			if f.ID == cve {
				risk[name] = f.Risk
			}
		}
	}
	if !(risk["shop"] > risk["billing"] && risk["billing"] > risk["batch"] && risk["batch"] > 0) {
		t.Fatalf("%s risk: prod %.1f, dev %.1f, nowhere %.1f", cve, risk["shop"], risk["billing"], risk["batch"])
	}
	ex, err := remediate.Exposure(ctx, st, order, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ex {
		for i := 1; i < len(e.Open); i++ {
			if e.Open[i].Risk > e.Open[i-1].Risk {
				t.Fatalf("%s exposure not sorted by risk", e.Environment)
			}
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
