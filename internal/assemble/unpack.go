package assemble

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/socle-dev/socle/internal/apt"
	"github.com/socle-dev/socle/internal/layer"
)

// unpack adds a package's files to the tree and returns their paths, as
// dpkg lists them.
func (a *Assembler) unpack(t *layer.Tree, file string, p *apt.Package) ([]string, *apt.Deb, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	deb, err := apt.OpenDeb(f, fi.Size())
	if err != nil {
		return nil, nil, err
	}
	data, err := a.dataTar(deb, p)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p.Name, err)
	}
	defer data.Close()
	tr := tar.NewReader(bufio.NewReaderSize(data, 1<<20))
	var files []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("data.tar: %w", err)
		}
		name := usrMerge(h.Name)
		if name == "" {
			continue
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = usrMerge(h.Linkname)
		}
		h.Name = name
		if err := t.Add(*h, tr, p.Name); err != nil {
			return nil, nil, err
		}
		files = append(files, "/"+strings.TrimSuffix(name, "/"))
	}
	return files, deb, nil
}

// maxDataTar bounds a package's uncompressed data.tar.
const maxDataTar = 8 << 30

// dataTar opens a package's data.tar, uncompressed. The uncompressed
// tar is kept in the cache next to the .deb (named by the .deb's
// verified hash), so that a warm assembly does not decompress xz again.
func (a *Assembler) dataTar(deb *apt.Deb, p *apt.Package) (io.ReadCloser, error) {
	cached := filepath.Join(a.cache, "data", p.SHA256+".tar")
	if f, err := os.Open(cached); err == nil {
		return f, nil
	}
	data, closeData, err := deb.Data()
	if err != nil {
		return nil, err
	}
	defer closeData()
	if err := os.MkdirAll(filepath.Dir(cached), 0o750); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(cached), "data-*")
	if err != nil {
		return nil, err
	}
	n, err := io.Copy(tmp, io.LimitReader(data, maxDataTar+1))
	if err == nil && n > maxDataTar {
		err = fmt.Errorf("data.tar is larger than %d bytes", int64(maxDataTar))
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), cached)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, err
	}
	return os.Open(cached)
}

// usrMerge cleans a data.tar path and moves /bin, /lib... under /usr.
func usrMerge(name string) string {
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	if p == "." || p == "" || strings.HasPrefix(p, "..") {
		return ""
	}
	top, rest, _ := strings.Cut(p, "/")
	for _, d := range mergedUsr {
		if top == d {
			if rest == "" {
				return "usr/" + d
			}
			return "usr/" + d + "/" + rest
		}
	}
	return p
}

// writeStatusStanza writes a package's control file as an installed
// entry of /var/lib/dpkg/status.
func writeStatusStanza(w *bytes.Buffer, control []byte, conffiles []string) {
	lines := strings.Split(strings.TrimRight(string(control), "\n"), "\n")
	for i, l := range lines {
		w.WriteString(l)
		w.WriteByte('\n')
		if i == 0 && strings.HasPrefix(l, "Package:") {
			w.WriteString("Status: install ok installed\n")
		}
	}
	if len(conffiles) > 0 {
		w.WriteString("Conffiles:\n")
		for _, c := range conffiles {
			w.WriteString(" " + c + " newconffile\n")
		}
	}
	w.WriteByte('\n')
}
