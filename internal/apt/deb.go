package apt

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Deb is an opened .deb archive.
type Deb struct {
	// Control is the control file of the package.
	Control []byte
	// Conffiles lists the package's configuration files.
	Conffiles []string
	// MD5Sums is the md5sums file, as shipped.
	MD5Sums []byte
	data    arMember
	r       io.ReaderAt
}

type arMember struct {
	name         string
	offset, size int64
}

const (
	arMagic        = "!<arch>\n"
	maxControlTar  = 64 << 20
	maxControlFile = 8 << 20
)

// OpenDeb reads the members of a .deb of size bytes.
func OpenDeb(r io.ReaderAt, size int64) (*Deb, error) {
	members, err := readAr(r, size)
	if err != nil {
		return nil, err
	}
	d := &Deb{r: r}
	var control arMember
	for _, m := range members {
		switch {
		case m.name == "debian-binary":
			b := make([]byte, min(m.size, 16))
			if _, err := r.ReadAt(b, m.offset); err != nil && err != io.EOF {
				return nil, err
			}
			if !bytes.HasPrefix(b, []byte("2.")) {
				return nil, fmt.Errorf(".deb format %q is not 2.x", bytes.TrimSpace(b))
			}
		case strings.HasPrefix(m.name, "control.tar"):
			control = m
		case strings.HasPrefix(m.name, "data.tar"):
			d.data = m
		}
	}
	if control.name == "" || d.data.name == "" {
		return nil, errors.New(".deb has no control or data member")
	}
	if control.size > maxControlTar {
		return nil, fmt.Errorf(".deb control member of %d bytes is too large", control.size)
	}
	tr, closer, err := d.member(control)
	if err != nil {
		return nil, err
	}
	defer closer()
	if err := d.readControl(tr); err != nil {
		return nil, err
	}
	if len(d.Control) == 0 {
		return nil, errors.New(".deb has no control file")
	}
	return d, nil
}

func (d *Deb) readControl(r io.Reader) error {
	return walkTar(r, func(name string, content io.Reader) error {
		name = strings.TrimPrefix(strings.TrimPrefix(name, "./"), "/")
		var dst *[]byte
		switch name {
		case "control":
			dst = &d.Control
		case "md5sums":
			dst = &d.MD5Sums
		case "conffiles":
			var b []byte
			dst = &b
			defer func() {
				for _, l := range strings.Split(string(b), "\n") {
					if l = strings.TrimSpace(l); l != "" {
						d.Conffiles = append(d.Conffiles, l)
					}
				}
			}()
		default:
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(content, maxControlFile+1))
		if err != nil {
			return err
		}
		if len(b) > maxControlFile {
			return fmt.Errorf(".deb control file %s is too large", name)
		}
		*dst = b
		return nil
	})
}

// Data opens the data.tar member, decompressed.
func (d *Deb) Data() (io.Reader, func(), error) {
	return d.member(d.data)
}

func (d *Deb) member(m arMember) (io.Reader, func(), error) {
	raw := io.NewSectionReader(d.r, m.offset, m.size)
	switch {
	case strings.HasSuffix(m.name, ".xz"):
		xr, err := xz.NewReader(bufio.NewReader(raw))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", m.name, err)
		}
		return xr, func() {}, nil
	case strings.HasSuffix(m.name, ".gz"):
		zr, err := gzip.NewReader(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", m.name, err)
		}
		return zr, func() { zr.Close() }, nil
	case strings.HasSuffix(m.name, ".zst"):
		zr, err := zstd.NewReader(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", m.name, err)
		}
		return zr, zr.Close, nil
	case strings.HasSuffix(m.name, ".tar"):
		return raw, func() {}, nil
	}
	return nil, nil, fmt.Errorf("unknown .deb member compression: %s", m.name)
}

// readAr lists the members of a common ar archive.
func readAr(r io.ReaderAt, size int64) ([]arMember, error) {
	magic := make([]byte, len(arMagic))
	if _, err := r.ReadAt(magic, 0); err != nil || string(magic) != arMagic {
		return nil, errors.New("not a .deb (ar) archive")
	}
	var out []arMember
	off := int64(len(arMagic))
	hdr := make([]byte, 60)
	for off < size {
		if off+60 > size {
			return nil, errors.New(".deb: truncated ar header")
		}
		if _, err := r.ReadAt(hdr, off); err != nil {
			return nil, fmt.Errorf(".deb: %w", err)
		}
		if hdr[58] != '`' || hdr[59] != '\n' {
			return nil, errors.New(".deb: bad ar header")
		}
		name := strings.TrimRight(strings.TrimSpace(string(hdr[0:16])), "/")
		msize, err := strconv.ParseInt(strings.TrimSpace(string(hdr[48:58])), 10, 64)
		if err != nil || msize < 0 || off+60+msize > size {
			return nil, errors.New(".deb: bad ar member size")
		}
		out = append(out, arMember{name: name, offset: off + 60, size: msize})
		if len(out) > 16 {
			return nil, errors.New(".deb: too many ar members")
		}
		off += 60 + msize
		if msize%2 == 1 {
			off++
		}
	}
	return out, nil
}

// walkTar calls fn for every regular file of a tar stream.
func walkTar(r io.Reader, fn func(name string, content io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading .deb member: %w", err)
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		if err := fn(h.Name, tr); err != nil {
			return err
		}
	}
}
