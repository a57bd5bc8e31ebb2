package check_test

import (
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

// TestImageRules: a hand-made image (labelled as such) with a base layer
// holding a setuid binary and an apk cache, an app layer that replaces a
// base file and deletes another, a secret in its environment and its
// history, and no USER, is caught with the right layers: the setuid file
// and the cache are attributed to the base; the layer report counts the
// replaced and deleted bytes as wasted.
func TestImageRules(t *testing.T) {
	base := testenv.Layer(t, []testenv.File{
		{Path: "usr/bin/su-helper", Content: []byte("#!/bin/sh\n"), Mode: 0o4755},
		{Path: "var/cache/apk/APKINDEX.tar.gz", Content: []byte(strings.Repeat("i", 300))},
		{Path: "etc/big.conf", Content: []byte(strings.Repeat("c", 1000))},
		{Path: "etc/old.conf", Content: []byte(strings.Repeat("o", 500))},
	})
	app := testenv.Layer(t, []testenv.File{
		{Path: "etc/big.conf", Content: []byte("small\n")},
		{Path: "etc/.wh.old.conf", Content: nil},
		{Path: "app/run", Content: []byte(strings.Repeat("a", 2000)), Mode: 0o755},
	})
	img := testenv.Image(t, base, app)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Env = append(cfg.Config.Env, "DB_PASSWORD=hunter22", "PATH=/usr/bin")
	cfg.History = []v1.History{{CreatedBy: "ADD base"}, {CreatedBy: "RUN curl -H 'API_KEY=abcd1234' https://registry.test.invalid/app"}}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := check.CheckImage(ctx, "hand-made", img, nil, check.ImageOptions{BaseLayers: 1, BaseName: "registry.test.invalid/base:1"})
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	baseID, _ := layers[0].DiffID()
	appID, _ := layers[1].DiffID()
	got := map[string]check.Finding{}
	for _, f := range res.Findings {
		got[f.Rule] = f
	}
	if f := got["img-setuid"]; f.Object != "/usr/bin/su-helper" || f.Layer != baseID.String() || f.Base == "" {
		t.Errorf("setuid: %+v", f)
	}
	if f := got["img-package-cache"]; f.Layer != baseID.String() || f.Base == "" {
		t.Errorf("package cache: %+v", f)
	}
	if f := got["img-secret-env"]; f.Object != "ENV DB_PASSWORD" {
		t.Errorf("secret env: %+v", f)
	}
	if f := got["img-secret-history"]; f.Layer != appID.String() || f.Base != "" {
		t.Errorf("secret history: %+v", f)
	}
	if _, ok := got["img-root-user"]; !ok {
		t.Error("root user not reported")
	}
	if _, ok := got["img-labels"]; !ok {
		t.Error("missing labels not reported")
	}
	// Wasted: the base's big.conf (1000 bytes, replaced) and old.conf
	// (500, deleted).
	r := res.Layers
	if r.Layers[0].Wasted != 1500 || r.Wasted != 1500 || r.Total != r.Final+r.Wasted || r.Efficiency >= 1 {
		t.Errorf("layer report %+v", r)
	}
	if len(r.Biggest) == 0 || r.Biggest[0].Path != "/app/run" || r.Biggest[0].Layer != 1 {
		t.Errorf("biggest %+v", r.Biggest)
	}
}

// TestSharedImagesChecked: the shared images check without error, and
// the real Alpine image, which runs as root, is reported so.
func TestSharedImagesChecked(t *testing.T) {
	for _, name := range []string{"alpine-310.tar.gz", "hello-world-v25.tar"} {
		ref, _ := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, "images", name))
		img, err := source.Open(ctx, ref, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		res, err := check.CheckImage(ctx, name, img, nil, check.ImageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := img.ConfigFile()
		root := false
		for _, f := range res.Findings {
			root = root || f.Rule == "img-root-user"
		}
		if want := cfg.Config.User == ""; root != want {
			t.Errorf("%s: root reported %v, config user %q", name, root, cfg.Config.User)
		}
		if res.Layers.Total == 0 {
			t.Errorf("%s: empty layer report", name)
		}
	}
}

// TestKeeperAttributesToTheBase: the Keeper finds an image's base
// through the annotations socle's builds write and the store's record of
// the base, and attributes a finding in the base's layer to it (a
// hand-made base with a setuid file, and an app on it).
func TestKeeperAttributesToTheBase(t *testing.T) {
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	baseLayer := testenv.Layer(t, []testenv.File{{Path: "usr/bin/su-helper", Content: []byte("x"), Mode: 0o4755}})
	base := testenv.Image(t, baseLayer)
	baseDigest, _ := base.Digest()
	baseID, _ := baseLayer.DiffID()
	if _, err := st.PutImage(ctx, store.Image{Digest: baseDigest.String(), Repository: "platform/base", Layers: []string{baseID.String()}}, nil); err != nil {
		t.Fatal(err)
	}
	app, err := mutate.AppendLayers(base, testenv.Layer(t, []testenv.File{{Path: "app/run", Content: []byte("y")}}))
	if err != nil {
		t.Fatal(err)
	}
	annotated := mutate.Annotations(app, map[string]string{oci.AnnotationBaseName: "platform/base:1", oci.AnnotationBaseDigest: baseDigest.String()}).(v1.Image)
	appDigest, _ := annotated.Digest()
	res, err := (check.Keeper{St: st}).Run(ctx, "platform/app", appDigest.String(), annotated)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Findings {
		if f.Rule == "img-setuid" {
			if f.Base != "platform/base:1" || f.Layer != baseID.String() {
				t.Fatalf("setuid finding %+v", f)
			}
			return
		}
	}
	t.Fatalf("no setuid finding: %+v", res.Findings)
}
