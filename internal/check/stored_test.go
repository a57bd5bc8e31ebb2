package check_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

// TestKeptResultRoundTrip keeps the checks of the real shared images and
// reads them back: the same result as the check itself, kept smaller
// than the gzip JSON it used to be.
func TestKeptResultRoundTrip(t *testing.T) {
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range []string{"alpine-310.tar.gz", "hello-world-v25.tar"} {
		ref, _ := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, "images", name))
		img, err := source.Open(ctx, ref, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		digest, _ := img.Digest()
		// Checks are kept by indexed image: before socle indexes it, the
		// result is returned and not kept.
		unkept, err := (check.Keeper{St: st}).Run(ctx, "test/app", digest.String(), img)
		if err != nil || unkept == nil {
			t.Fatalf("checking an image not indexed: %v", err)
		}
		if _, err := st.ImageCheck(ctx, digest.String()); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a check was kept for an image not indexed: %v", err)
		}
		if _, err := st.PutImage(ctx, store.Image{Digest: digest.String(), Repository: "test/app"}, nil); err != nil {
			t.Fatal(err)
		}
		if err := (check.Keeper{St: st}).Check(ctx, "test/app", digest.String(), img); err != nil {
			t.Fatal(err)
		}
		kept, err := st.ImageCheck(ctx, digest.String())
		if err != nil {
			t.Fatal(err)
		}
		got, err := check.DecodeResult(kept)
		if err != nil {
			t.Fatal(err)
		}
		want, err := check.CheckImage(ctx, "test/app@"+digest.String(), img, nil, check.ImageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(want)
		b, _ := json.Marshal(got)
		if !bytes.Equal(a, b) {
			t.Fatalf("%s: kept result differs:\nchecked %s\nkept    %s", name, a, b)
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		zw.Write(a)
		zw.Close()
		if len(kept.Result) >= gz.Len() {
			t.Errorf("%s: kept %d bytes, gzip JSON %d", name, len(kept.Result), gz.Len())
		}
		t.Logf("%s: JSON %d bytes, gzip %d, kept %d", name, len(a), gz.Len(), len(kept.Result))
	}
}

// TestKeptResultKeepsEmptyNames: a finding with no file and object
// (hand-made) is not given the image's name when read back; a result kept
// as plain JSON (before results were compressed) still reads.
func TestKeptResultKeepsEmptyNames(t *testing.T) {
	res := &check.ImageResult{Findings: []check.Finding{{Rule: "img-labels", Message: "hand-made"},
		{File: "r/a@sha256:1", Object: "r/a@sha256:1", Rule: "img-root-user"}}}
	b, err := check.EncodeResult(res, "r/a", "sha256:1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := check.DecodeResult(store.ImageCheck{Digest: "sha256:1", Repository: "r/a", Result: b})
	if err != nil {
		t.Fatal(err)
	}
	if got.Findings[0].File != "" || got.Findings[1].Object != "r/a@sha256:1" {
		t.Fatalf("read back %+v", got.Findings)
	}
	plain, _ := json.Marshal(res)
	old, err := check.DecodeResult(store.ImageCheck{Digest: "sha256:1", Repository: "r/a", Result: plain})
	if err != nil || len(old.Findings) != 2 || old.Findings[1].File != "r/a@sha256:1" {
		t.Fatalf("plain JSON read back %+v, %v", old, err)
	}
	if _, err := check.DecodeResult(store.ImageCheck{Digest: "sha256:1", Result: append([]byte{0x28, 0xb5, 0x2f, 0xfd}, "garbage"...)}); err == nil {
		t.Fatal("a corrupt kept result was read")
	}
}

// TestResultDictionaryFrozen: kept results name the dictionary they were
// compressed with, so a shipped one never changes (add resultdict/2.json
// instead).
func TestResultDictionaryFrozen(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("resultdict", "1.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != "acd53140871e15bfa99cd8c5f89d79cc08ef720741e0f986399d831d22308429" {
		t.Fatalf("resultdict/1.json changed (sha256 %s)", got)
	}
}
