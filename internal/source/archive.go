package source

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/socle-dev/socle/internal/layer"
	"github.com/socle-dev/socle/internal/oci"
)

// ArchiveEntry is one image in a docker-archive manifest.json.
type ArchiveEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// Limits on what a docker archive may hold before socle refuses it.
const (
	maxArchiveManifest = 16 << 20
	maxArchiveConfig   = 64 << 20
	maxArchiveEntries  = 1 << 20
	maxArchiveSize     = 64 << 30
)

// ParseArchiveManifest parses and checks the manifest.json of a
// `docker save` tarball: at least one image, each with a config and
// layers, every path relative and inside the archive.
func ParseArchiveManifest(b []byte) ([]ArchiveEntry, error) {
	var entries []ArchiveEntry
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("docker archive manifest.json: %w", err)
	}
	if len(entries) == 0 {
		return nil, errors.New("docker archive manifest.json lists no image")
	}
	for i, e := range entries {
		if e.Config == "" {
			return nil, fmt.Errorf("docker archive manifest.json: image %d has no Config", i)
		}
		if len(e.Layers) == 0 {
			return nil, fmt.Errorf("docker archive manifest.json: image %d has no Layers", i)
		}
		for _, p := range append([]string{e.Config}, e.Layers...) {
			if c, err := layer.CleanPath(p); err != nil || c == "" {
				return nil, fmt.Errorf("docker archive manifest.json: image %d: unsafe path %q", i, p)
			}
		}
		for _, t := range e.RepoTags {
			if _, err := name.NewTag(t); err != nil {
				return nil, fmt.Errorf("docker archive manifest.json: image %d: bad RepoTag %q: %w", i, t, err)
			}
		}
	}
	return entries, nil
}

// tarIndex maps the members of an uncompressed tar file to their data.
type tarIndex struct {
	f       *os.File
	members map[string]tarMember
}

type tarMember struct {
	offset, size int64
	link         string // symbolic or hard link target, cleaned
}

func indexTar(f *os.File) (*tarIndex, error) {
	pr := &positionReader{f: f}
	tr := tar.NewReader(pr)
	idx := &tarIndex{f: f, members: map[string]tarMember{}}
	for i := 0; ; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading docker archive: %w", err)
		}
		if i > maxArchiveEntries {
			return nil, fmt.Errorf("docker archive has more than %d members", maxArchiveEntries)
		}
		p, err := layer.CleanPath(h.Name)
		if err != nil {
			return nil, fmt.Errorf("docker archive: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			idx.members[p] = tarMember{offset: pr.pos, size: h.Size}
		case tar.TypeSymlink:
			idx.members[p] = tarMember{link: layer.ResolveLink(p, h.Linkname)}
		case tar.TypeLink:
			t, err := layer.CleanPath(h.Linkname)
			if err != nil {
				return nil, fmt.Errorf("docker archive: %w", err)
			}
			idx.members[p] = tarMember{link: t}
		}
	}
	return idx, nil
}

func (t *tarIndex) open(p string) (*io.SectionReader, error) {
	p, err := layer.CleanPath(p)
	if err != nil {
		return nil, err
	}
	for hops := 0; hops < 16; hops++ {
		m, ok := t.members[p]
		if !ok {
			return nil, fmt.Errorf("docker archive has no file %q", p)
		}
		if m.link == "" {
			return io.NewSectionReader(t.f, m.offset, m.size), nil
		}
		p = m.link
	}
	return nil, fmt.Errorf("docker archive: too many links resolving %q", p)
}

func (t *tarIndex) readAll(p string, limit int64) ([]byte, error) {
	r, err := t.open(p)
	if err != nil {
		return nil, err
	}
	if r.Size() > limit {
		return nil, fmt.Errorf("docker archive: %q is %d bytes, more than %d", p, r.Size(), limit)
	}
	return io.ReadAll(r)
}

// positionReader tracks the offset in f, including the seeks archive/tar
// makes to skip file data.
type positionReader struct {
	f   *os.File
	pos int64
}

func (p *positionReader) Read(b []byte) (int, error) {
	n, err := p.f.Read(b)
	p.pos += int64(n)
	return n, err
}

func (p *positionReader) Seek(off int64, whence int) (int64, error) {
	n, err := p.f.Seek(off, whence)
	if err == nil {
		p.pos = n
	}
	return n, err
}

func openArchive(ref oci.ImageRef, opts *Options) (*Image, error) {
	f, cleanup, err := openUncompressedTar(ref.Path, opts.TempDir)
	if err != nil {
		return nil, err
	}
	img, err := archiveImage(f, ref)
	if err != nil {
		cleanup()
		return nil, err
	}
	img.close = func() error { cleanup(); return nil }
	return img, nil
}

// openUncompressedTar opens path, unpacking it to a temporary file first
// when it is gzip- or zstd-compressed (docker save | gzip), since an
// image needs random access to its members.
func openUncompressedTar(p, tmpDir string) (*os.File, func(), error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, fmt.Errorf("opening docker archive: %w", err)
	}
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, nil, err
	}
	var dec io.Reader
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(bufio.NewReader(f))
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("docker archive %q: %w", p, err)
		}
		dec = zr
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(f)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("docker archive %q: %w", p, err)
		}
		defer zr.Close()
		dec = zr
	default:
		return f, func() { f.Close() }, nil
	}
	defer f.Close()
	tmp, err := os.CreateTemp(tmpDir, "socle-archive-*.tar")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { tmp.Close(); os.Remove(tmp.Name()) }
	n64, err := io.Copy(tmp, io.LimitReader(dec, maxArchiveSize+1))
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("unpacking docker archive %q: %w", p, err)
	}
	if n64 > maxArchiveSize {
		cleanup()
		return nil, nil, fmt.Errorf("docker archive %q: %w: more than %d bytes unpacked", p, layer.ErrTooLarge, int64(maxArchiveSize))
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, nil, err
	}
	return tmp, cleanup, nil
}

func archiveImage(f *os.File, ref oci.ImageRef) (*Image, error) {
	idx, err := indexTar(f)
	if err != nil {
		return nil, err
	}
	mb, err := idx.readAll("manifest.json", maxArchiveManifest)
	if err != nil {
		return nil, fmt.Errorf("%s is not a docker save tarball: %w", ref.Path, err)
	}
	entries, err := ParseArchiveManifest(mb)
	if err != nil {
		return nil, err
	}
	entry, err := pickArchiveEntry(entries, ref)
	if err != nil {
		return nil, err
	}
	core, err := newArchiveCore(idx, entry)
	if err != nil {
		return nil, err
	}
	img, err := partial.CompressedToImage(core)
	if err != nil {
		return nil, err
	}
	out := &Image{Image: img, Ref: ref}
	if len(entry.RepoTags) > 0 {
		out.Repository, out.Tag = splitRepoTag(entry.RepoTags[0])
	}
	return out, nil
}

func pickArchiveEntry(entries []ArchiveEntry, ref oci.ImageRef) (ArchiveEntry, error) {
	if ref.Selector == "" {
		if len(entries) == 1 {
			return entries[0], nil
		}
		var tags []string
		for _, e := range entries {
			tags = append(tags, e.RepoTags...)
		}
		return ArchiveEntry{}, fmt.Errorf("docker archive %q holds %d images; pick one with docker-archive:%s:TAG (tags: %s)",
			ref.Path, len(entries), ref.Path, strings.Join(tags, ", "))
	}
	for _, e := range entries {
		if strings.HasPrefix(ref.Selector, "sha256:") {
			if strings.Contains(e.Config, strings.TrimPrefix(ref.Selector, "sha256:")) {
				return e, nil
			}
			continue
		}
		for _, t := range e.RepoTags {
			if t == ref.Selector || strings.HasSuffix(t, ":"+ref.Selector) {
				return e, nil
			}
		}
	}
	return ArchiveEntry{}, fmt.Errorf("docker archive %q has no image %q", ref.Path, ref.Selector)
}

// archiveCore presents one image of a docker archive to
// go-containerregistry. Every layer's digest is the hash of its bytes in
// the archive, computed when the archive is opened: an uncompressed layer
// (what docker save writes) is named by what it holds, never by the
// DiffID its config claims, and nothing is compressed just to name it.
type archiveCore struct {
	idx      *tarIndex
	config   []byte
	manifest []byte
	layers   map[v1.Hash]*archiveLayer
}

type archiveLayer struct {
	section   *io.SectionReader
	digest    v1.Hash
	diffID    v1.Hash
	mediaType types.MediaType
}

func (l *archiveLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *archiveLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *archiveLayer) Size() (int64, error)     { return l.section.Size(), nil }
func (l *archiveLayer) MediaType() (types.MediaType, error) {
	return l.mediaType, nil
}
func (l *archiveLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(io.NewSectionReader(l.section, 0, l.section.Size())), nil
}

func newArchiveCore(idx *tarIndex, e ArchiveEntry) (*archiveCore, error) {
	cfgBytes, err := idx.readAll(e.Config, maxArchiveConfig)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgBytes))
	if err != nil {
		return nil, fmt.Errorf("docker archive config %q: %w", e.Config, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return nil, fmt.Errorf("docker archive: config lists %d layers, manifest.json %d", len(cfg.RootFS.DiffIDs), len(e.Layers))
	}
	cfgDigest, cfgSize, _ := v1.SHA256(bytes.NewReader(cfgBytes))
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: cfgSize, Digest: cfgDigest},
	}
	c := &archiveCore{idx: idx, config: cfgBytes, layers: map[v1.Hash]*archiveLayer{}}
	for i, lp := range e.Layers {
		sec, err := idx.open(lp)
		if err != nil {
			return nil, err
		}
		l := &archiveLayer{section: sec, diffID: cfg.RootFS.DiffIDs[i]}
		head := make([]byte, 4)
		n, _ := sec.ReadAt(head, 0)
		switch {
		case bytes.HasPrefix(head[:n], []byte{0x1f, 0x8b}):
			l.mediaType = types.DockerLayer
		case bytes.HasPrefix(head[:n], []byte{0x28, 0xb5, 0x2f, 0xfd}):
			l.mediaType = types.OCILayerZStd
		default:
			l.mediaType = types.DockerUncompressedLayer
		}
		h, _, err := v1.SHA256(io.NewSectionReader(sec, 0, sec.Size()))
		if err != nil {
			return nil, fmt.Errorf("docker archive layer %q: %w", lp, err)
		}
		l.digest = h
		c.layers[l.digest] = l
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: l.mediaType, Size: sec.Size(), Digest: l.digest})
	}
	c.manifest, err = json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *archiveCore) RawConfigFile() ([]byte, error) { return c.config, nil }
func (c *archiveCore) MediaType() (types.MediaType, error) {
	return types.DockerManifestSchema2, nil
}
func (c *archiveCore) RawManifest() ([]byte, error) { return c.manifest, nil }
func (c *archiveCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := c.layers[h]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("docker archive has no layer %s", h)
}

var _ partial.CompressedImageCore = (*archiveCore)(nil)

// splitRepoTag splits "alpine:3.10" as written, without expanding it to
// a registry's full name.
func splitRepoTag(s string) (repo, tag string) {
	i := strings.LastIndex(s, ":")
	if i < 0 || strings.Contains(s[i+1:], "/") {
		return s, ""
	}
	return s[:i], s[i+1:]
}
