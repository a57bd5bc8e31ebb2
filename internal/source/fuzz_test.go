package source_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/testenv"
)

// FuzzParseArchiveManifest: any manifest.json is parsed or refused with
// an error; an accepted one names only paths inside the archive.
func FuzzParseArchiveManifest(f *testing.F) {
	f.Add([]byte(`[{"Config":"c.json","RepoTags":["a:1"],"Layers":["l/layer.tar"]}]`))
	f.Add([]byte(`[{"Config":"../c","Layers":["x"]}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"Config":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := source.ParseArchiveManifest(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			for _, p := range append([]string{e.Config}, e.Layers...) {
				if filepath.IsAbs(p) && len(p) > 1 && p[1] == '.' {
					t.Fatalf("accepted %q", p)
				}
			}
		}
	})
}

// FuzzDockerArchive opens arbitrary archives built around a fuzzed
// manifest.json and config; it must never panic.
func FuzzDockerArchive(f *testing.F) {
	f.Add([]byte(`[{"Config":"c.json","Layers":["l.tar"]}]`), []byte(`{"rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}`))
	f.Add([]byte(`[{"Config":"c.json","Layers":["l.tar","l.tar"]}]`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, manifest, config []byte) {
		p := filepath.Join(t.TempDir(), "a.tar")
		layerTar := testenv.TarBytes(t, []testenv.File{{Path: "x", Content: []byte("hand-made")}})
		os.WriteFile(p, testenv.TarBytes(t, []testenv.File{
			{Path: "manifest.json", Content: manifest},
			{Path: "c.json", Content: config},
			{Path: "l.tar", Content: layerTar},
		}), 0o644)
		r, err := oci.ParseImageRef("docker-archive:" + p)
		if err != nil {
			t.Skip()
		}
		img, err := source.Open(t.Context(), r, source.Options{})
		if err != nil {
			return
		}
		defer img.Close()
		if layers, err := img.Layers(); err == nil {
			for _, l := range layers {
				if rc, err := l.Uncompressed(); err == nil {
					rc.Close()
				}
			}
		}
	})
}
