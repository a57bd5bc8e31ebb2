package registry_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/registry"
)

// FuzzRequests sends arbitrary requests to the registry: it never
// panics, never answers 5xx to a malformed request, and never writes
// outside its directory.
func FuzzRequests(f *testing.F) {
	f.Add("PUT", "/v2/app/manifests/1", "application/vnd.oci.image.manifest.v1+json", []byte(`{"schemaVersion":2,"config":{"digest":"sha256:00"}}`))
	f.Add("PUT", "/v2/../../etc/manifests/x", "", []byte("{}"))
	f.Add("POST", "/v2/app/blobs/uploads/?mount=sha256:abc&from=other", "", []byte{})
	f.Add("DELETE", "/v2/app/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000", "", []byte{})
	f.Add("GET", "/v2/app/tags/list?n=-1&last=zzz", "", []byte{})
	f.Fuzz(func(t *testing.T, method, path, ctype string, body []byte) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \t\n\r") {
			return
		}
		base := t.TempDir()
		dir := filepath.Join(base, "registry")
		r, err := registry.New(registry.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(method, "http://localhost"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
		}
		entries, _ := os.ReadDir(base)
		if len(entries) != 1 {
			t.Fatalf("wrote outside its directory: %v", entries)
		}
	})
}
