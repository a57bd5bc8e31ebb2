package sbom_test

import (
	"bytes"
	"testing"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/testenv"
)

// fuzzLayer analyses a layer holding data at path: whatever the package
// database says, the analysis ends with packages or warnings, never a
// panic or a hang.
func fuzzLayer(t *testing.T, path string, data []byte) {
	a, err := sbom.NewAnalyzer()
	if err != nil {
		t.Fatal(err)
	}
	tarb := testenv.TarBytes(t, []testenv.File{{Path: "etc/os-release", Content: []byte("ID=debian\nVERSION_ID=12\n")}, {Path: path, Content: data}})
	if _, err := a.AnalyzeLayer(ctx, "sha256:fuzz", bytes.NewReader(tarb), 0); err != nil {
		t.Fatalf("analysis failed on a well-formed layer: %v", err)
	}
}

func FuzzDpkgStatus(f *testing.F) {
	f.Add(testenv.ReadShared(f, "debian", "bookworm-minbase-rootfs", "var", "lib", "dpkg", "status"))
	f.Add(testenv.ReadShared(f, "pkgdb", "claircore-texlive-ubuntu-bionic.dpkg-status"))
	f.Add([]byte("Package: a\nStatus: install ok\nSource: b (1\n"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzLayer(t, "var/lib/dpkg/status", data) })
}

func FuzzApkInstalled(f *testing.F) {
	f.Add(testenv.ReadShared(f, "pkgdb", "syft-alpine-multiple-2.apk-installed"))
	f.Add([]byte("P:a\nV:1\no:b\n\nP:\n"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzLayer(t, "lib/apk/db/installed", data) })
}
