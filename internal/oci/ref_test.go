package oci_test

import (
	"errors"
	"testing"

	"github.com/socle-dev/socle/internal/oci"
)

func TestParseImageRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want oci.ImageRef
	}{
		{"alpine:3.10", oci.ImageRef{Transport: oci.TransportRegistry, Path: "alpine:3.10"}},
		{"registry:host:5000/a/b@sha256:" + hex64, oci.ImageRef{Transport: oci.TransportRegistry, Path: "host:5000/a/b@sha256:" + hex64}},
		{"oci:./layout", oci.ImageRef{Transport: oci.TransportOCILayout, Path: "./layout"}},
		{"oci:/tmp/l:v1", oci.ImageRef{Transport: oci.TransportOCILayout, Path: "/tmp/l", Selector: "v1"}},
		{"oci:/tmp/l@sha256:" + hex64, oci.ImageRef{Transport: oci.TransportOCILayout, Path: "/tmp/l", Selector: "sha256:" + hex64}},
		{"docker-archive:img.tar.gz", oci.ImageRef{Transport: oci.TransportDockerArchive, Path: "img.tar.gz"}},
		{"docker-archive:img.tar:alpine:3.10", oci.ImageRef{Transport: oci.TransportDockerArchive, Path: "img.tar:alpine", Selector: "3.10"}},
		{"oci:C:/x:y/z", oci.ImageRef{Transport: oci.TransportOCILayout, Path: "C:/x:y/z"}},
	} {
		got, err := oci.ParseImageRef(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseImageRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if err == nil && tc.want.Transport != oci.TransportRegistry {
			again, err := oci.ParseImageRef(got.String())
			if err != nil || again != got {
				t.Errorf("round trip of %q: %+v, %v", got.String(), again, err)
			}
		}
	}
	for _, bad := range []string{"", "  ", "oci:", "docker-archive:", "a b"} {
		if _, err := oci.ParseImageRef(bad); err == nil {
			t.Errorf("ParseImageRef(%q) accepted", bad)
		}
	}
	if _, err := oci.ParseImageRef(""); !errors.Is(err, oci.ErrEmptyReference) {
		t.Error("empty reference error")
	}
}

const hex64 = "4cb92e906f52a8c76c6caa12097dc28be9ac9045e7c64c17abc1c740710ca071"

func TestValidateDigest(t *testing.T) {
	if err := oci.ValidateDigest("sha256:" + hex64); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "sha256:", "sha512:" + hex64, "sha256:" + hex64[:63], "sha256:" + hex64[:63] + "G", "SHA256:" + hex64} {
		if oci.ValidateDigest(bad) == nil {
			t.Errorf("ValidateDigest(%q) accepted", bad)
		}
	}
	if got := oci.ShortDigest("sha256:" + hex64); got != "sha256:4cb92e906f52" {
		t.Errorf("ShortDigest = %q", got)
	}
}

func FuzzParseImageRef(f *testing.F) {
	f.Add("oci:/tmp/l:v1")
	f.Add("docker-archive:a.tar@sha256:" + hex64)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := oci.ParseImageRef(s)
		if err != nil {
			return
		}
		if r.Path == "" {
			t.Fatalf("accepted %q with an empty path", s)
		}
	})
}
