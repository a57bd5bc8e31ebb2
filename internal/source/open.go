package source

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/oci"
)

// Image is an opened image and what socle knows of where it came from.
type Image struct {
	v1.Image
	// Ref is the reference as given.
	Ref oci.ImageRef
	// Repository and Tag name the image in its registry, when it has one
	// (registry references, and archives whose RepoTags say so).
	Repository string
	Tag        string
	// Index is the digest of the image index the image was picked from,
	// when the reference named an index.
	Index string
	close func() error
}

// Close releases temporary files the source needed.
func (i *Image) Close() error {
	if i.close == nil {
		return nil
	}
	return i.close()
}

// Options configure how images are opened.
type Options struct {
	// Platform picks one image from an index; the default is linux/amd64.
	Platform *v1.Platform
	// Keychain resolves registry credentials; the default reads the
	// docker config, as docker, crane and cosign do.
	Keychain authn.Keychain
	// Transport is the HTTP transport for registries; the default puts a
	// deadline on every step of every call (NewTransport).
	Transport http.RoundTripper
	// InsecureRegistryUnsafe allows plain HTTP to registries other than
	// loopback ones (which go-containerregistry already reaches over HTTP).
	InsecureRegistryUnsafe bool
	// TempDir is where a compressed archive is unpacked.
	TempDir string
}

func (o *Options) platform() v1.Platform {
	if o.Platform != nil {
		return *o.Platform
	}
	return v1.Platform{OS: "linux", Architecture: "amd64"}
}

// RemoteOptions returns the go-containerregistry options for registry
// access under these Options.
func (o *Options) RemoteOptions(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	tr := o.Transport
	if tr == nil {
		tr = defaultTransport
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(o.platform()), remote.WithTransport(tr)}
}

// NameOptions returns the reference parsing options.
func (o *Options) NameOptions() []name.Option {
	if o.InsecureRegistryUnsafe {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Open opens the image ref names.
func Open(ctx context.Context, ref oci.ImageRef, opts Options) (*Image, error) {
	switch ref.Transport {
	case oci.TransportRegistry:
		return openRemote(ctx, ref, &opts)
	case oci.TransportOCILayout:
		return openLayout(ref, &opts)
	case oci.TransportDockerArchive:
		return openArchive(ref, &opts)
	default:
		return nil, fmt.Errorf("unknown image transport %q", ref.Transport)
	}
}

func openRemote(ctx context.Context, ref oci.ImageRef, opts *Options) (*Image, error) {
	r, err := name.ParseReference(ref.Path, opts.NameOptions()...)
	if err != nil {
		return nil, fmt.Errorf("parsing reference %q: %w", ref.Path, err)
	}
	desc, err := remote.Get(r, opts.RemoteOptions(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("fetching %q: %w", ref.Path, err)
	}
	out := &Image{Ref: ref, Repository: r.Context().Name()}
	if t, ok := r.(name.Tag); ok {
		out.Tag = t.TagStr()
	}
	if desc.MediaType.IsIndex() {
		out.Index = desc.Digest.String()
	}
	img, err := desc.Image()
	if err != nil {
		return nil, fmt.Errorf("reading image %q: %w", ref.Path, err)
	}
	out.Image = img
	return out, nil
}

// refNameAnnotation is the OCI layout annotation that carries a tag.
const refNameAnnotation = "org.opencontainers.image.ref.name"

func openLayout(ref oci.ImageRef, opts *Options) (*Image, error) {
	if fi, err := os.Stat(ref.Path); err != nil {
		return nil, fmt.Errorf("opening OCI layout: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("opening OCI layout %q: not a directory (for a docker save tarball use docker-archive:%s)", ref.Path, ref.Path)
	}
	idx, err := layout.ImageIndexFromPath(ref.Path)
	if err != nil {
		return nil, fmt.Errorf("opening OCI layout %q: %w", ref.Path, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout index %q: %w", ref.Path, err)
	}
	var picked []v1.Descriptor
	for _, d := range im.Manifests {
		switch {
		case ref.Selector == "":
			picked = append(picked, d)
		case strings.HasPrefix(ref.Selector, "sha256:"):
			if d.Digest.String() == ref.Selector {
				picked = append(picked, d)
			}
		default:
			n := d.Annotations[refNameAnnotation]
			if n == ref.Selector || strings.HasSuffix(n, ":"+ref.Selector) {
				picked = append(picked, d)
			}
		}
	}
	switch {
	case len(picked) == 0 && ref.Selector != "":
		return nil, fmt.Errorf("OCI layout %q has no image %q (it has: %s)", ref.Path, ref.Selector, describeLayout(im))
	case len(picked) == 0:
		return nil, fmt.Errorf("OCI layout %q holds no image", ref.Path)
	case len(picked) > 1:
		return nil, fmt.Errorf("OCI layout %q holds %d images; pick one with oci:%s:TAG or oci:%s@DIGEST (it has: %s)",
			ref.Path, len(picked), ref.Path, ref.Path, describeLayout(im))
	}
	d := picked[0]
	out := &Image{Ref: ref}
	if n := d.Annotations[refNameAnnotation]; n != "" {
		if oci.ValidTag(n) {
			out.Tag = n
		} else {
			out.Repository, out.Tag = splitRepoTag(n)
		}
	}
	img, index, err := imageFromDescriptor(idx, d, opts.platform())
	if err != nil {
		return nil, fmt.Errorf("OCI layout %q: %w", ref.Path, err)
	}
	out.Image, out.Index = img, index
	return out, nil
}

// imageFromDescriptor returns the image d names, descending into nested
// indexes by platform.
func imageFromDescriptor(idx v1.ImageIndex, d v1.Descriptor, p v1.Platform) (v1.Image, string, error) {
	for depth := 0; depth < 4; depth++ {
		if !d.MediaType.IsIndex() {
			img, err := idx.Image(d.Digest)
			return img, "", err
		}
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, "", err
		}
		cm, err := child.IndexManifest()
		if err != nil {
			return nil, "", err
		}
		found := false
		for _, c := range cm.Manifests {
			if c.Platform == nil || c.Platform.Satisfies(p) {
				if c.Platform == nil && len(cm.Manifests) > 1 {
					continue
				}
				if !c.MediaType.IsIndex() {
					img, err := child.Image(c.Digest)
					return img, d.Digest.String(), err
				}
				idx, d, found = child, c, true
				break
			}
		}
		if !found {
			return nil, "", fmt.Errorf("index %s has no image for platform %s", d.Digest, p.String())
		}
	}
	return nil, "", errors.New("image indexes nested too deeply")
}

func describeLayout(im *v1.IndexManifest) string {
	var parts []string
	for _, d := range im.Manifests {
		s := oci.ShortDigest(d.Digest.String())
		if n := d.Annotations[refNameAnnotation]; n != "" {
			s = n + " (" + s + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
