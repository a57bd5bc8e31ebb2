package registry

import (
	"archive/tar"
	"io"
	"os"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/socle-dev/socle/internal/testenv"
)

// FuzzParseManifest feeds manifests to the parser the registry runs on
// every push: it never panics, and what it accepts has a known media
// type and only valid descriptors. The seeds are the real manifests of
// the shared hello-world OCI layout, and small hand-made ones.
func FuzzParseManifest(f *testing.F) {
	tf, err := os.Open(testenv.SharedData(f, "images", "hello-world-v25.tar"))
	if err != nil {
		f.Fatal(err)
	}
	defer tf.Close()
	tr := tar.NewReader(tf)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if !strings.HasPrefix(h.Name, "blobs/") || h.Size > 4096 {
			continue
		}
		b, _ := io.ReadAll(tr)
		if strings.Contains(string(b), `"schemaVersion"`) {
			f.Add("", b)
			f.Add("application/vnd.oci.image.manifest.v1+json", b)
		}
	}
	f.Add("application/vnd.docker.distribution.manifest.list.v2+json", []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:`+strings.Repeat("0", 64)+`","size":1}]}`))
	f.Add("application/vnd.oci.image.manifest.v1+json", []byte(`{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:00","size":-1},"subject":null}`))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		m, err := parseManifest(ctype, body)
		if err != nil {
			return
		}
		if !manifestTypes[m.MediaType] {
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		for _, d := range append(append(m.Blobs, m.Children...), derefs(m.Subject)...) {
			if err := checkDescriptor(d); err != nil {
				t.Fatalf("accepted a bad descriptor: %v", err)
			}
		}
		if m.MediaType.IsIndex() && len(m.Blobs) > 0 {
			t.Fatal("an index with blobs")
		}
	})
}

func derefs(d *v1.Descriptor) []v1.Descriptor {
	if d == nil {
		return nil
	}
	return []v1.Descriptor{*d}
}
