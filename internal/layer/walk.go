package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Kind is the type of a layer entry.
type Kind uint8

// Entry kinds. Character and block devices, FIFOs and other special files
// are KindOther: they are listed but carry no content.
const (
	KindFile Kind = iota + 1
	KindDir
	KindSymlink
	KindHardlink
	KindOther
)

func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindDir:
		return "dir"
	case KindSymlink:
		return "symlink"
	case KindHardlink:
		return "hardlink"
	default:
		return "other"
	}
}

// Entry is one member of a layer, after its path has been made safe.
type Entry struct {
	// Path is relative to the layer root, slash-separated and clean. It is
	// never empty, never ".", and never starts with "/" or "..".
	Path string
	Kind Kind
	Mode fs.FileMode
	// Size is the content length for regular files, zero otherwise.
	Size    int64
	ModTime time.Time
	UID     int
	GID     int
	// Link is the target of a symbolic link as written in the archive, or
	// the cleaned, root-relative path of a hard link's target.
	Link string
}

// Whiteout records a deletion in a layer.
type Whiteout struct {
	// Path is the deleted path, or the directory made opaque.
	Path string
	// Opaque is true for ".wh..wh..opq": every entry below Path that came
	// from lower layers is hidden, but Path itself stays.
	Opaque bool
}

// Visitor receives the entries of a layer.
type Visitor interface {
	// Entry is called for every entry that is not a whiteout. For regular
	// files, content reads the file's bytes; it is valid only during the
	// call, and the part of it not read is skipped.
	Entry(e *Entry, content io.Reader) error
	// Whiteout is called for every whiteout marker.
	Whiteout(w Whiteout) error
}

// Limits bound what one layer may contain. The zero value of a field means
// its default; DefaultLimits lists them.
type Limits struct {
	// MaxEntries is the largest number of entries in one layer.
	MaxEntries int
	// MaxFileSize is the largest regular file in one layer.
	MaxFileSize int64
	// MaxTotalSize is the largest uncompressed size of one layer.
	MaxTotalSize int64
	// MaxRatio is the largest ratio of uncompressed to compressed size,
	// applied once MinRatioBytes have been read. Zero compressed size
	// disables the ratio check.
	MaxRatio int64
	// MinRatioBytes is the size below which the ratio is not checked, so
	// that small, highly compressible layers are not refused.
	MinRatioBytes int64
	// MaxPathLength is the longest path accepted.
	MaxPathLength int
}

// DefaultLimits are generous enough for any real image and small enough
// that a hostile one cannot exhaust a server.
var DefaultLimits = Limits{
	MaxEntries:    2_000_000,
	MaxFileSize:   8 << 30,
	MaxTotalSize:  32 << 30,
	MaxRatio:      200,
	MinRatioBytes: 256 << 20,
	MaxPathLength: 4096,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxEntries > 0 {
		d.MaxEntries = l.MaxEntries
	}
	if l.MaxFileSize > 0 {
		d.MaxFileSize = l.MaxFileSize
	}
	if l.MaxTotalSize > 0 {
		d.MaxTotalSize = l.MaxTotalSize
	}
	if l.MaxRatio > 0 {
		d.MaxRatio = l.MaxRatio
	}
	if l.MinRatioBytes > 0 {
		d.MinRatioBytes = l.MinRatioBytes
	}
	if l.MaxPathLength > 0 {
		d.MaxPathLength = l.MaxPathLength
	}
	return d
}

var (
	// ErrUnsafePath is returned for an entry whose name, or whose hard-link
	// target, would resolve outside the layer root.
	ErrUnsafePath = errors.New("unsafe path in layer")
	// ErrTooLarge is returned when a layer exceeds one of its Limits,
	// which is what a decompression bomb does.
	ErrTooLarge = errors.New("layer exceeds limits")
)

// EntryError names the entry a walk stopped at.
type EntryError struct {
	Index int
	Name  string
	Err   error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("layer entry %d (%q): %v", e.Index, e.Name, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// Walk reads the uncompressed tar stream r and calls v for each entry.
// compressedSize is the layer's size as stored (zero if unknown); it is
// used for the ratio limit. Walk stops at the first error, from the
// archive, from a limit or from v.
func Walk(r io.Reader, compressedSize int64, lim Limits, v Visitor) error {
	lim = lim.withDefaults()
	counted := &boundedReader{r: r, lim: lim, compressed: compressedSize}
	tr := tar.NewReader(counted)
	// Sparse entries expand holes into zeros that are never read from
	// the stream: what visitors read is bounded separately.
	logical := &contentReader{lim: lim.MaxTotalSize}
	for i := 0; ; i++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if counted.err != nil {
				return counted.err
			}
			return fmt.Errorf("reading layer entry %d: %w", i, err)
		}
		if i >= lim.MaxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrTooLarge, lim.MaxEntries)
		}
		if err := visit(tr, h, i, lim, v, logical); err != nil {
			if counted.err != nil {
				return counted.err
			}
			return err
		}
	}
}

func visit(tr *tar.Reader, h *tar.Header, i int, lim Limits, v Visitor, logical *contentReader) error {
	fail := func(err error) error { return &EntryError{Index: i, Name: h.Name, Err: err} }
	if len(h.Name) > lim.MaxPathLength {
		return fail(fmt.Errorf("%w: name longer than %d bytes", ErrTooLarge, lim.MaxPathLength))
	}
	p, err := CleanPath(h.Name)
	if err != nil {
		return fail(err)
	}
	if p == "" {
		return nil // the root directory itself
	}
	if strings.Contains("/"+p, "/"+whiteoutPrefix+whiteoutPrefix) && !strings.HasSuffix(p, opaqueMarker) {
		return nil // AUFS metadata directories (.wh..wh.plnk/...) are not content
	}
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if strings.HasPrefix(base, whiteoutPrefix) {
		if base == opaqueMarker {
			return v.Whiteout(Whiteout{Path: dir, Opaque: true})
		}
		if strings.HasPrefix(base, whiteoutPrefix+whiteoutPrefix) {
			return nil // other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs)
		}
		return v.Whiteout(Whiteout{Path: path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))})
	}
	e := Entry{
		Path:    p,
		Mode:    h.FileInfo().Mode(),
		ModTime: h.ModTime,
		UID:     h.Uid,
		GID:     h.Gid,
	}
	var content io.Reader
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		if h.Size < 0 || h.Size > lim.MaxFileSize {
			return fail(fmt.Errorf("%w: file of %d bytes, limit %d", ErrTooLarge, h.Size, lim.MaxFileSize))
		}
		logical.r = tr
		e.Kind, e.Size, content = KindFile, h.Size, logical
	case tar.TypeDir:
		e.Kind = KindDir
	case tar.TypeSymlink:
		if h.Linkname == "" || strings.IndexByte(h.Linkname, 0) >= 0 {
			return fail(fmt.Errorf("%w: symbolic link with empty or NUL target", ErrUnsafePath))
		}
		e.Kind, e.Link = KindSymlink, h.Linkname
	case tar.TypeLink:
		target, err := CleanPath(h.Linkname)
		if err != nil || target == "" {
			return fail(fmt.Errorf("%w: hard link to %q", ErrUnsafePath, h.Linkname))
		}
		e.Kind, e.Link = KindHardlink, target
	default:
		e.Kind = KindOther
	}
	if err := v.Entry(&e, content); err != nil {
		return fail(err)
	}
	return nil
}

// CleanPath turns an archive member name into a clean path relative to
// the root. It returns "" for the root itself and ErrUnsafePath for a name
// that climbs above the root or holds a NUL byte. A leading "/" is
// accepted and dropped, as in every image tarball.
func CleanPath(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL byte in %q", ErrUnsafePath, name)
	}
	name = strings.ReplaceAll(name, "\\", "/")
	// Clean the name as if relative: a ".." that climbs above the start
	// is visible as a leading "..", which is what we refuse.
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == "." {
		return "", nil
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("%w: %q leaves the layer root", ErrUnsafePath, name)
	}
	return p, nil
}

// ResolveLink returns the root-relative path a symbolic link at linkPath
// with the given target points to, as the kernel would resolve it inside
// a chroot: an absolute target starts at the root, and ".." never climbs
// above the root. It does not follow further links.
func ResolveLink(linkPath, target string) string {
	var p string
	if strings.HasPrefix(target, "/") {
		p = target
	} else {
		p = path.Join("/", path.Dir(linkPath), target)
	}
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

// boundedReader counts the bytes read from the uncompressed stream and
// stops with ErrTooLarge at the total limit or past the ratio limit.
type boundedReader struct {
	r          io.Reader
	lim        Limits
	compressed int64
	n          int64
	err        error
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	switch {
	case b.n > b.lim.MaxTotalSize:
		b.err = fmt.Errorf("%w: more than %d bytes uncompressed", ErrTooLarge, b.lim.MaxTotalSize)
	case b.compressed > 0 && b.n > b.lim.MinRatioBytes && b.n/b.compressed > b.lim.MaxRatio:
		b.err = fmt.Errorf("%w: %d bytes from %d compressed, ratio above %d (decompression bomb?)",
			ErrTooLarge, b.n, b.compressed, b.lim.MaxRatio)
	}
	if b.err != nil {
		return n, b.err
	}
	return n, err
}

// contentReader bounds the bytes visitors read from all entries.
type contentReader struct {
	r   io.Reader
	n   int64
	lim int64
}

func (c *contentReader) Read(p []byte) (int, error) {
	if c.n >= c.lim {
		return 0, fmt.Errorf("%w: entries expand to more than %d bytes", ErrTooLarge, c.lim)
	}
	if rem := c.lim - c.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
