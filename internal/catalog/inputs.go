package catalog

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Inputs identify what a build was made from, apart from its parent and
// the packages the archive offers: the catalog entry, and the files it
// names.
type Inputs struct {
	// Entry hashes the catalog entry; Files the local files it names.
	Entry, Files string
}

// String is how Inputs are recorded: "entry=… files=…".
func (in Inputs) String() string { return "entry=" + in.Entry + " files=" + in.Files }

// ParseInputs reads a recorded Inputs.
func ParseInputs(s string) Inputs {
	var in Inputs
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "entry":
			in.Entry = v
		case "files":
			in.Files = v
		}
	}
	return in
}

// maxInputBytes bounds what one build hashes of local files.
const maxInputBytes = 8 << 30

// InputsOf hashes im's entry and files.
func (c *Catalog) InputsOf(im *Image) (Inputs, error) {
	entry, err := json.Marshal(im.Image)
	if err != nil {
		return Inputs{}, err
	}
	sum := sha256.Sum256(entry)
	in := Inputs{Entry: hex.EncodeToString(sum[:])[:32]}
	h := sha256.New()
	var roots []string
	switch im.Kind {
	case KindAppend:
		for _, l := range im.Build.Append.Layers {
			roots = append(roots, c.Path(l.From))
		}
	case KindDockerfile:
		roots = append(roots, c.Path(im.Build.Dockerfile.Context))
	}
	var total int64
	for _, r := range roots {
		if err := hashTree(h, r, &total); err != nil {
			return in, fmt.Errorf("hashing the inputs of %s: %w", im.Name, err)
		}
	}
	in.Files = hex.EncodeToString(h.Sum(nil))[:32]
	return in, nil
}

// Path resolves a path of socle.yaml against its directory.
func (c *Catalog) Path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// hashTree hashes names, modes, link targets and contents under root in
// a fixed order.
func hashTree(h io.Writer, root string, total *int64) error {
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s\x00%o\x00", filepath.ToSlash(rel), fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s\x00", target)
		case fi.Mode().IsRegular():
			*total += fi.Size()
			if *total > maxInputBytes {
				return fmt.Errorf("more than %d bytes of inputs", int64(maxInputBytes))
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return nil
}
