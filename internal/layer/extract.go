package layer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
)

// Extract applies one layer to the directory held by root: entries are
// written, whiteouts delete what lower layers wrote. Every operation goes
// through root, so nothing is written outside it and no symbolic link is
// followed out of it; an entry that would need that fails with an error
// naming it. File modes keep only the permission bits: no set-uid, no
// devices, no ownership changes.
func Extract(r io.Reader, compressedSize int64, lim Limits, root *os.Root) error {
	x := &extractor{root: root, written: map[string]bool{}}
	return Walk(r, compressedSize, lim, x)
}

type extractor struct {
	root *os.Root
	// written holds the paths this layer created, so that an opaque
	// whiteout only hides what came from lower layers.
	written map[string]bool
}

func (x *extractor) Entry(e *Entry, content io.Reader) error {
	if dir := path.Dir(e.Path); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %q: %w", dir, err)
		}
	}
	x.written[e.Path] = true
	perm := e.Mode.Perm()
	switch e.Kind {
	case KindDir:
		fi, err := x.root.Lstat(e.Path)
		if err == nil && !fi.IsDir() {
			if err := x.root.Remove(e.Path); err != nil {
				return err
			}
		}
		if err := x.root.MkdirAll(e.Path, perm|0o700); err != nil {
			return err
		}
		return x.root.Chmod(e.Path, perm|0o700)
	case KindFile:
		if err := x.replace(e.Path); err != nil {
			return err
		}
		f, err := x.root.OpenFile(e.Path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, perm|0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case KindSymlink:
		if err := x.replace(e.Path); err != nil {
			return err
		}
		return x.root.Symlink(e.Link, e.Path)
	case KindHardlink:
		if err := x.replace(e.Path); err != nil {
			return err
		}
		return x.root.Link(e.Link, e.Path)
	default:
		return nil // devices and FIFOs are not recreated
	}
}

// replace removes whatever a lower layer left at p, unless it is a
// directory, which an entry of this layer may not silently wipe.
func (x *extractor) replace(p string) error {
	fi, err := x.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return x.root.RemoveAll(p)
	}
	return x.root.Remove(p)
}

func (x *extractor) Whiteout(w Whiteout) error {
	if !w.Opaque {
		err := x.root.RemoveAll(w.Path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	d, err := x.root.Open(w.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(w.Path, n)
		if x.written[p] {
			continue
		}
		if err := x.root.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}
