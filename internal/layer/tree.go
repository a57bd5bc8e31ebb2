package layer

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Tree is a set of files to write as one layer, in sorted order with
// fixed times: the same tree always gives the same bytes. Contents go to
// one spool file in a directory the caller owns, so that a layer is
// never held in memory: the tree keeps only headers and offsets.
type Tree struct {
	entries map[string]*treeEntry
	spool   string   // directory of the spool file
	file    *os.File // the spool file, made on first use
	size    int64    // its length
	epoch   time.Time
}

type treeEntry struct {
	hdr    tar.Header
	offset int64  // where a regular file's content is in the spool file
	owner  string // which package wrote it
}

// NewTree returns an empty tree that spools contents to a file in spool
// and dates every entry epoch. Close removes the spool file.
func NewTree(spool string, epoch time.Time) *Tree {
	return &Tree{entries: map[string]*treeEntry{}, spool: spool, epoch: epoch}
}

// Close removes the spool file.
func (t *Tree) Close() error {
	if t.file == nil {
		return nil
	}
	t.file.Close()
	return os.Remove(t.file.Name())
}

// Add records an entry; content is read now. A later Add of the same
// path replaces a file, and is ignored for a directory already there.
// Devices and FIFOs are left out: they are not placed in images.
func (t *Tree) Add(h tar.Header, content io.Reader, owner string) error {
	p := strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/")
	if p == "" || p == "." {
		return nil
	}
	if old, ok := t.entries[p]; ok && old.hdr.Typeflag == tar.TypeDir && h.Typeflag == tar.TypeDir {
		return nil
	}
	e := &treeEntry{owner: owner}
	e.hdr = tar.Header{
		Typeflag: h.Typeflag, Name: p, Linkname: h.Linkname, Size: 0,
		Mode: h.Mode & 0o7777, Uid: h.Uid, Gid: h.Gid, ModTime: t.epoch, Format: tar.FormatPAX,
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		e.hdr.Typeflag = tar.TypeReg
		e.hdr.Size = h.Size
		if t.file == nil {
			f, err := os.CreateTemp(t.spool, "tree-*")
			if err != nil {
				return err
			}
			t.file = f
		}
		n, err := io.Copy(t.file, io.LimitReader(content, h.Size))
		if err != nil || n != h.Size {
			return fmt.Errorf("spooling %s: %d of %d bytes: %v", p, n, h.Size, err)
		}
		e.offset = t.size
		t.size += n
	case tar.TypeDir:
		e.hdr.Name += "/"
	case tar.TypeSymlink:
	case tar.TypeLink:
		e.hdr.Linkname = strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")
	default:
		return nil // devices and FIFOs are not placed in images
	}
	t.entries[p] = e
	return nil
}

// AddFile adds a regular file from memory.
func (t *Tree) AddFile(p string, mode int64, uid, gid int, data []byte, owner string) error {
	return t.Add(tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Uid: uid, Gid: gid, Size: int64(len(data))}, bytes.NewReader(data), owner)
}

// AddDir adds a directory.
func (t *Tree) AddDir(p string, mode int64, uid, gid int) error {
	return t.Add(tar.Header{Typeflag: tar.TypeDir, Name: p, Mode: mode, Uid: uid, Gid: gid}, nil, "")
}

// AddSymlink adds a symbolic link.
func (t *Tree) AddSymlink(p, target string) error {
	return t.Add(tar.Header{Typeflag: tar.TypeSymlink, Name: p, Linkname: target, Mode: 0o777}, nil, "")
}

// Has reports whether the tree holds an entry at p.
func (t *Tree) Has(p string) bool {
	_, ok := t.entries[p]
	return ok
}

// OwnedBy returns, sorted, the paths of the regular files owner added.
func (t *Tree) OwnedBy(owner string) []string {
	var out []string
	for p, e := range t.entries {
		if e.owner == owner && e.hdr.Typeflag == tar.TypeReg {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Read returns the content of a regular file in the tree.
func (t *Tree) Read(p string) ([]byte, bool) {
	e, ok := t.entries[p]
	if !ok || e.hdr.Typeflag != tar.TypeReg {
		return nil, false
	}
	b := make([]byte, e.hdr.Size)
	if e.hdr.Size > 0 {
		if _, err := t.file.ReadAt(b, e.offset); err != nil {
			return nil, false
		}
	}
	return b, true
}

// WriteTar writes the tree as a tar stream, parents before children,
// every directory present.
func (t *Tree) WriteTar(w io.Writer) error {
	// Make sure every parent directory exists as an entry.
	for p := range t.entries {
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := t.entries[d]; !ok {
				t.entries[d] = &treeEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: t.epoch, Format: tar.FormatPAX}}
			}
		}
	}
	paths := make([]string, 0, len(t.entries))
	for p := range t.entries {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		e := t.entries[p]
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if h.Size > 0 {
			if _, err := io.Copy(tw, io.NewSectionReader(t.file, e.offset, h.Size)); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}
