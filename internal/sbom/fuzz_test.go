package sbom_test

import (
	"bytes"
	"strings"
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

// FuzzImport feeds CycloneDX and SPDX documents to the importer: nothing
// panics, and every package it returns is matched or listed unmapped.
func FuzzImport(f *testing.F) {
	// Hand-made seeds: small documents of both formats, with the purl
	// forms real producers write.
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","metadata":{"component":{"type":"container","name":"x","version":"sha256:` + strings.Repeat("a", 64) + `"}},
"components":[{"type":"operating-system","name":"debian","version":"12"},{"type":"library","name":"openssl","version":"3.0.11-1","purl":"pkg:deb/debian/openssl@3.0.11-1?distro=debian-12"},
{"type":"library","name":"lodash","version":"4.17.20","purl":"pkg:npm/lodash@4.17.20","components":[{"type":"library","name":"x","purl":"pkg:alpine/x@1"}]}]}`))
	f.Add([]byte(`{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"x","creationInfo":{"creators":["Tool: hand-made"]},
"packages":[{"SPDXID":"SPDXRef-p","name":"apt","versionInfo":"1.8","externalRefs":[{"referenceCategory":"PACKAGE_MANAGER","referenceType":"purl","referenceLocator":"pkg:deb/debian:buster:apt@1.8"}]},
{"SPDXID":"SPDXRef-q","name":"q","primaryPackagePurpose":"OPERATING-SYSTEM","versionInfo":"3.18"}]}`))
	f.Add([]byte(`{"spdxVersion":"SPDX-2.2","packages":[{"name":"n","externalRefs":[{"referenceType":"purl","referenceLocator":"pkg:%zz"}]}]}`))
	f.Add([]byte(`{"bomFormat":"CycloneDX"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := sbom.Import(b)
		if err != nil {
			return
		}
		matched := 0
		for _, n := range im.Ecosystems {
			matched += n
		}
		if matched+len(im.Unmapped) != len(im.Inventory.Packages) {
			t.Fatalf("%d packages, %d matched, %d unmapped", len(im.Inventory.Packages), matched, len(im.Unmapped))
		}
	})
}
