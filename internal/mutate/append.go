package mutate

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrmutate "github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/socle-dev/socle/internal/layer"
	"github.com/socle-dev/socle/internal/oci"
)

// AppendSpec adds files as layers on a parent image.
type AppendSpec struct {
	Layers []AppendLayer
	Config Config
	// Epoch dates the files and the image.
	Epoch time.Time
}

// AppendLayer is one layer: a file or a directory copied to a path.
type AppendLayer struct {
	// From is a local file or directory.
	From string
	// To is where it goes in the image: the directory's new name, or
	// the file's path (a trailing / puts the file inside).
	To string
	// UID and GID own the files (default 0).
	UID, GID int
}

// Base names the parent an image is built on.
type Base struct {
	Image v1.Image
	// Name is the parent's reference, as the base.name annotation
	// records it (registry/repo:tag).
	Name string
}

// Append builds parent + one layer per AppendLayer, with the config
// changes and the base annotations. Layers are reproducible: the same
// files give the same digests.
func Append(ctx context.Context, base Base, spec AppendSpec) (v1.Image, error) {
	img := base.Image
	for i, al := range spec.Layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		layer, err := localLayer(al, spec.Epoch)
		if err != nil {
			return nil, fmt.Errorf("append layer %d (%s): %w", i, al.From, err)
		}
		img, err = ggcrmutate.Append(img, ggcrmutate.Addendum{Layer: layer, History: v1.History{
			Created: v1.Time{Time: spec.Epoch.UTC()}, CreatedBy: fmt.Sprintf("socle append %s %s", filepath.Base(al.From), al.To),
		}})
		if err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: spec.Epoch.UTC()}
	applyConfig(&cf.Config, spec.Config)
	img, err = ggcrmutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return AnnotateBase(img, base)
}

// AnnotateBase records the parent in the manifest annotations.
func AnnotateBase(img v1.Image, base Base) (v1.Image, error) {
	d, err := base.Image.Digest()
	if err != nil {
		return nil, err
	}
	ann := map[string]string{oci.AnnotationBaseDigest: d.String()}
	if base.Name != "" {
		ann[oci.AnnotationBaseName] = base.Name
	}
	return ggcrmutate.Annotations(img, ann).(v1.Image), nil
}

// localLayer makes a layer of a local file or directory.
func localLayer(al AppendLayer, epoch time.Time) (v1.Layer, error) {
	if al.To == "" || !strings.HasPrefix(al.To, "/") {
		return nil, fmt.Errorf("destination %q must be an absolute path in the image", al.To)
	}
	fi, err := os.Lstat(al.From)
	if err != nil {
		return nil, err
	}
	spool, err := os.MkdirTemp("", "socle-append-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(spool)
	t := layer.NewTree(spool, epoch.UTC())
	dst := strings.TrimPrefix(path.Clean(al.To), "/")
	if fi.IsDir() {
		root := al.From
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			target := path.Join(dst, filepath.ToSlash(rel))
			return addLocal(t, p, target, al)
		})
	} else {
		if strings.HasSuffix(al.To, "/") {
			dst = path.Join(dst, filepath.Base(al.From))
		}
		err = addLocal(t, al.From, dst, al)
	}
	if err != nil {
		return nil, err
	}
	return TreeLayer(t)
}

// LayerDir is where built layers are kept, named by their DiffID, until
// they are a day old: a layer is written to disk, never held in memory,
// and read again when it is pushed.
func LayerDir() string { return filepath.Join(os.TempDir(), "socle-layers") }

// TreeLayer writes the layer a tree makes to LayerDir and returns it.
func TreeLayer(t *layer.Tree) (v1.Layer, error) {
	dir := LayerDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pruneLayers(dir, 24*time.Hour)
	f, err := os.CreateTemp(dir, "building-*")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	err = t.WriteTar(io.MultiWriter(f, h))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("writing a layer: %w", err)
	}
	path := filepath.Join(dir, hex.EncodeToString(h.Sum(nil))+".tar")
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	now := time.Now()
	_ = os.Chtimes(path, now, now) // in use: kept another day
	return tarball.LayerFromFile(path)
}

// pruneLayers removes built layers older than age.
func pruneLayers(dir string, age time.Duration) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > age {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// addLocal adds one local path; symbolic links are kept as links, and a
// link whose target leaves the copied tree is refused.
func addLocal(t *layer.Tree, local, target string, al AppendLayer) error {
	fi, err := os.Lstat(local)
	if err != nil {
		return err
	}
	mode := int64(fi.Mode().Perm())
	switch {
	case fi.IsDir():
		return t.AddDir(target, mode, al.UID, al.GID)
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(local)
		if err != nil {
			return err
		}
		if filepath.IsAbs(link) {
			return fmt.Errorf("%s: absolute symbolic link %q would not point into the image as on disk", local, link)
		}
		return t.Add(tar.Header{Typeflag: tar.TypeSymlink, Name: target, Linkname: link, Mode: 0o777, Uid: al.UID, Gid: al.GID}, nil, "")
	case fi.Mode().IsRegular():
		f, err := os.Open(local)
		if err != nil {
			return err
		}
		defer f.Close()
		return t.Add(tar.Header{Typeflag: tar.TypeReg, Name: target, Size: fi.Size(), Mode: mode, Uid: al.UID, Gid: al.GID}, f, "")
	}
	return errors.New(local + ": not a file, directory or link")
}

// Rebase moves img's own layers from oldBase onto newBase with
// go-containerregistry's mutate.Rebase, after checking that oldBase is
// what img was built on (by its base annotation when present, and by its
// layers in any case), and records the new base.
func Rebase(img, oldBase v1.Image, newBase Base) (v1.Image, error) {
	od, err := oldBase.Digest()
	if err != nil {
		return nil, err
	}
	if mf, err := img.Manifest(); err == nil {
		if d := mf.Annotations[oci.AnnotationBaseDigest]; d != "" && d != od.String() {
			return nil, fmt.Errorf("rebase: the image says it was built on %s, not on %s", d, od)
		}
	}
	ok, err := LayersPrefix(oldBase, img)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("rebase: the old base's layers are not the bottom of the image's")
	}
	rebased, err := ggcrmutate.Rebase(img, oldBase, newBase.Image)
	if err != nil {
		return nil, fmt.Errorf("rebase: %w", err)
	}
	return AnnotateBase(rebased, newBase)
}

// LayersPrefix reports whether base's layers are the first layers of img.
func LayersPrefix(base, img v1.Image) (bool, error) {
	bc, err := base.ConfigFile()
	if err != nil {
		return false, err
	}
	ic, err := img.ConfigFile()
	if err != nil {
		return false, err
	}
	b, i := bc.RootFS.DiffIDs, ic.RootFS.DiffIDs
	if len(b) > len(i) {
		return false, nil
	}
	for k := range b {
		if b[k] != i[k] {
			return false, nil
		}
	}
	return true, nil
}
