package oci

import (
	"errors"
	"fmt"
	"strings"
)

// Transport says where an image reference points.
type Transport string

// The transports socle understands. They follow the names skopeo and
// syft use for the same sources.
const (
	// TransportRegistry is a reference resolved against an OCI registry.
	TransportRegistry Transport = "registry"
	// TransportOCILayout is an OCI image layout directory (oci:DIR).
	TransportOCILayout Transport = "oci"
	// TransportDockerArchive is a tarball written by `docker save`
	// (docker-archive:FILE), optionally gzip-compressed.
	TransportDockerArchive Transport = "docker-archive"
)

// ErrEmptyReference is returned for an empty image reference.
var ErrEmptyReference = errors.New("empty image reference")

// ImageRef is a parsed image reference, before any I/O.
type ImageRef struct {
	// Transport says how to reach the image.
	Transport Transport
	// Path is the directory or file for the oci and docker-archive
	// transports, and the registry reference for the registry transport.
	Path string
	// Selector picks one image inside an OCI layout or a docker archive
	// that holds several: a tag (matched against the ref.name annotation
	// or RepoTags) or a digest. It is empty when the source holds one image.
	Selector string
}

// String returns the reference in the form ParseImageRef accepts.
func (r ImageRef) String() string {
	switch r.Transport {
	case TransportRegistry:
		return r.Path
	default:
		s := string(r.Transport) + ":" + r.Path
		if r.Selector != "" {
			if strings.HasPrefix(r.Selector, "sha256:") {
				s += "@" + r.Selector
			} else {
				s += ":" + r.Selector
			}
		}
		return s
	}
}

// ParseImageRef parses the three forms of image reference socle accepts:
//
//	oci:DIR[:TAG|@DIGEST]              an OCI image layout directory
//	docker-archive:FILE[:TAG|@DIGEST]  a `docker save` tarball (.tar or .tar.gz)
//	REF                                a registry reference (name[:tag][@digest])
//
// A registry reference may also be written registry:REF.
func ParseImageRef(s string) (ImageRef, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return ImageRef{}, ErrEmptyReference
	}
	for _, t := range []Transport{TransportOCILayout, TransportDockerArchive} {
		prefix := string(t) + ":"
		if !strings.HasPrefix(s, prefix) {
			continue
		}
		rest := strings.TrimPrefix(s, prefix)
		path, sel := splitSelector(rest)
		if path == "" {
			return ImageRef{}, fmt.Errorf("image reference %q: missing path after %q", s, prefix)
		}
		return ImageRef{Transport: t, Path: path, Selector: sel}, nil
	}
	s = strings.TrimPrefix(s, string(TransportRegistry)+":")
	if strings.ContainsAny(s, " \t\n") {
		return ImageRef{}, fmt.Errorf("image reference %q: contains white space", s)
	}
	return ImageRef{Transport: TransportRegistry, Path: s}, nil
}

// splitSelector separates "path@sha256:..." or "path:tag" into its parts.
// A colon only starts a tag when what follows has no slash, so that
// paths such as C:/x or ./dir:v1/y are not split.
func splitSelector(s string) (path, selector string) {
	if i := strings.LastIndex(s, "@sha256:"); i > 0 {
		return s[:i], s[i+1:]
	}
	if i := strings.LastIndex(s, ":"); i > 0 {
		tag := s[i+1:]
		if tag != "" && !strings.ContainsAny(tag, "/\\") && validTag(tag) {
			return s[:i], tag
		}
	}
	return s, ""
}

// validTag reports whether s is a valid OCI tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
func validTag(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
		if i > 0 {
			ok = ok || c == '.' || c == '-'
		}
		if !ok {
			return false
		}
	}
	return true
}

// ValidTag reports whether s may be used as an OCI tag.
func ValidTag(s string) bool { return validTag(s) }
