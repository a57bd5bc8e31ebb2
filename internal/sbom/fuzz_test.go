package sbom_test

import (
	"bytes"
	"testing"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/testenv"
)

// fuzzLayers returns the fuzz function for a package database at path:
// whatever the database says, the analysis of a layer holding it ends
// with packages or warnings, never a panic or a hang. One analyzer
// serves every input.
func fuzzLayers(f *testing.F, path string) func(t *testing.T, data []byte) {
	a, err := sbom.NewAnalyzer()
	if err != nil {
		f.Fatal(err)
	}
	return func(t *testing.T, data []byte) {
		tarb := testenv.TarBytes(t, []testenv.File{{Path: "etc/os-release", Content: []byte("ID=debian\nVERSION_ID=12\n")}, {Path: path, Content: data}})
		if _, err := a.AnalyzeLayer(ctx, "sha256:fuzz", bytes.NewReader(tarb), 0); err != nil {
			t.Fatalf("analysis failed on a well-formed layer: %v", err)
		}
	}
}

// firstStanzas returns the first n blank-line separated stanzas of a
// real package database: small seeds keep each input fast; the whole
// files are read by the ordinary tests.
func firstStanzas(b []byte, n int) []byte {
	parts := bytes.SplitN(b, []byte("\n\n"), n+1)
	if len(parts) > n {
		parts = parts[:n]
	}
	return append(bytes.Join(parts, []byte("\n\n")), '\n')
}

func FuzzDpkgStatus(f *testing.F) {
	f.Add(firstStanzas(testenv.ReadShared(f, "debian", "bookworm-minbase-rootfs", "var", "lib", "dpkg", "status"), 3))
	f.Add(firstStanzas(testenv.ReadShared(f, "pkgdb", "claircore-texlive-ubuntu-bionic.dpkg-status"), 2))
	f.Add([]byte("Package: a\nStatus: install ok\nSource: b (1\n"))
	f.Fuzz(fuzzLayers(f, "var/lib/dpkg/status"))
}

func FuzzApkInstalled(f *testing.F) {
	f.Add(firstStanzas(testenv.ReadShared(f, "pkgdb", "syft-alpine-multiple-2.apk-installed"), 3))
	f.Add([]byte("P:a\nV:1\no:b\n\nP:\n"))
	f.Fuzz(fuzzLayers(f, "lib/apk/db/installed"))
}
