package sbom_test

import (
	"archive/tar"
	"io"
	"testing"
)

// readTarFile returns the content of path in a tar stream, or nil.
func readTarFile(t *testing.T, r io.Reader, path string) []byte {
	t.Helper()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == path || h.Name == "/"+path || h.Name == "./"+path {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}
