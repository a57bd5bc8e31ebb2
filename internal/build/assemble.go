package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/osv-scalibr/semantic"

	"github.com/socle-dev/socle/internal/apt"
)

// AssembleSpec describes a base image made of Debian packages.
type AssembleSpec struct {
	// Suite is the Debian release, e.g. bookworm.
	Suite string
	// Packages to install, with their dependencies; NAME=VERSION pins one
	// to a version the archive has (a remediation bumps the pin).
	Packages []string
	// Security adds the suite's security updates (SUITE-security).
	Security bool
	// Mirror and SecurityMirror override the host's apt sources.
	Mirror         string
	SecurityMirror string
	Arch           string
	Config         ImageConfig
	// Epoch dates every file and the image (SOURCE_DATE_EPOCH).
	Epoch time.Time
}

// ImageConfig is what a build sets in the image configuration.
type ImageConfig struct {
	// User runs the image; the assembler creates "nonroot" (65532) and
	// uses it by default.
	User       string
	Env        map[string]string
	Labels     map[string]string
	Entrypoint []string
	Cmd        []string
	WorkingDir string
}

// Resolved is one package chosen for an image.
type Resolved struct {
	*apt.Package
	archive *apt.Archive
}

// Resolution is the package set of an assembled image.
type Resolution struct {
	Packages []Resolved
	// Releases are the Release files the packages were chosen from.
	Releases []*apt.Release
}

// Versions returns name → version of the resolution.
func (r *Resolution) Versions() map[string]string {
	out := make(map[string]string, len(r.Packages))
	for _, p := range r.Packages {
		out[p.Name] = p.Version
	}
	return out
}

// Assembler builds Debian base images without a daemon.
type Assembler struct {
	keyring string
	cache   string
	sources []apt.Source
	log     *slog.Logger
	// indexes caches suite indexes for the life of the assembler.
	indexes map[string]*suiteIndex
}

type suiteIndex struct {
	archive *apt.Archive
	release *apt.Release
	pkgs    []apt.Package
}

// AssemblerOptions configure an Assembler.
type AssemblerOptions struct {
	// Keyring verifies the archive (default: Debian's archive keyring).
	Keyring string
	// Cache keeps indexes and packages, by hash.
	Cache string
	// Sources are the apt sources (default: the host's).
	Sources []apt.Source
	Logger  *slog.Logger
}

// NewAssembler returns an Assembler.
func NewAssembler(o AssemblerOptions) (*Assembler, error) {
	a := &Assembler{keyring: o.Keyring, cache: o.Cache, sources: o.Sources, log: o.Logger, indexes: map[string]*suiteIndex{}}
	if a.keyring == "" {
		a.keyring = apt.DefaultKeyring
	}
	if a.cache == "" {
		return nil, errors.New("assembler: no cache directory")
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if len(a.sources) == 0 {
		srcs, err := apt.HostSources("")
		if err != nil {
			return nil, err
		}
		a.sources = srcs
	}
	return a, nil
}

func (a *Assembler) archive(suite, mirror string) (*apt.Archive, error) {
	if mirror == "" {
		m, ok := apt.MirrorFor(a.sources, suite)
		if !ok {
			return nil, fmt.Errorf("no apt source serves %s: set the mirror in socle.yaml", suite)
		}
		mirror = m
	}
	kr, err := apt.ReadKeyring(a.keyring)
	if err != nil {
		return nil, err
	}
	return &apt.Archive{Mirror: strings.TrimSuffix(mirror, "/"), Suite: suite, Keyring: kr, Cache: a.cache}, nil
}

func (a *Assembler) index(ctx context.Context, suite, mirror, arch string) (*suiteIndex, error) {
	key := suite + "|" + mirror + "|" + arch
	if ix, ok := a.indexes[key]; ok {
		return ix, nil
	}
	ar, err := a.archive(suite, mirror)
	if err != nil {
		return nil, err
	}
	ar.Arch = arch
	rel, pkgs, err := ar.Index(ctx)
	if err != nil {
		return nil, err
	}
	ix := &suiteIndex{archive: ar, release: rel, pkgs: pkgs}
	a.indexes[key] = ix
	a.log.Info("archive index read", "mirror", ar.Mirror, "suite", suite, "packages", len(pkgs))
	return ix, nil
}

// Refresh drops cached indexes, so the next Resolve reads the archive again.
func (a *Assembler) Refresh() { a.indexes = map[string]*suiteIndex{} }

// Resolve chooses the packages of spec and their dependencies from the
// archive: the newest version across the suite and its security suite.
func (a *Assembler) Resolve(ctx context.Context, spec AssembleSpec) (*Resolution, error) {
	if spec.Suite == "" || len(spec.Packages) == 0 {
		return nil, errors.New("assemble: a suite and at least one package are required")
	}
	arch := spec.Arch
	if arch == "" {
		arch = "amd64"
	}
	main, err := a.index(ctx, spec.Suite, spec.Mirror, arch)
	if err != nil {
		return nil, err
	}
	ixs := []*suiteIndex{main}
	if spec.Security {
		sec, err := a.index(ctx, spec.Suite+"-security", spec.SecurityMirror, arch)
		if err != nil {
			return nil, err
		}
		ixs = append(ixs, sec)
	}
	// NAME=VERSION pins a package to a version the archive still has.
	pins := map[string]string{}
	var names []string
	for _, n := range spec.Packages {
		name, version, pinned := strings.Cut(n, "=")
		if pinned {
			pins[name] = version
		}
		names = append(names, name)
	}
	best := map[string]Resolved{}
	provides := map[string][]string{}
	for _, ix := range ixs {
		for i := range ix.pkgs {
			p := &ix.pkgs[i]
			if p.Architecture != arch && p.Architecture != "all" {
				continue
			}
			if pin, ok := pins[p.Name]; ok {
				if p.Version == pin {
					best[p.Name] = Resolved{Package: p, archive: ix.archive}
				}
			} else if cur, ok := best[p.Name]; !ok || debLess(cur.Version, p.Version) {
				best[p.Name] = Resolved{Package: p, archive: ix.archive}
			}
			for _, pr := range p.Provides {
				provides[pr.Name] = append(provides[pr.Name], p.Name)
			}
		}
	}
	chosen := map[string]Resolved{}
	var queue []string
	for _, n := range names {
		if _, ok := best[n]; !ok {
			if pin, ok := pins[n]; ok {
				return nil, fmt.Errorf("assemble: %s %s is not in %s (or its security suite) any more", n, pin, spec.Suite)
			}
			return nil, fmt.Errorf("assemble: no package %q in %s", n, spec.Suite)
		}
		queue = append(queue, n)
	}
	satisfied := func(r apt.Relation) bool {
		if c, ok := chosen[r.Name]; ok && versionOK(c.Version, r) {
			return true
		}
		if r.Op == "" {
			for _, prov := range provides[r.Name] {
				if _, ok := chosen[prov]; ok {
					return true
				}
			}
		}
		return false
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, ok := chosen[name]; ok {
			continue
		}
		p := best[name]
		chosen[name] = p
		for _, group := range append(append([]apt.Alternatives{}, p.PreDepends...), p.Depends...) {
			ok := false
			for _, r := range group {
				if satisfied(r) {
					ok = true
					break
				}
			}
			if ok {
				continue
			}
			pick := ""
			for _, r := range group {
				if c, ok := best[r.Name]; ok && versionOK(c.Version, r) {
					pick = r.Name
					break
				}
				if r.Op == "" && len(provides[r.Name]) > 0 {
					cands := append([]string(nil), provides[r.Name]...)
					sort.Strings(cands)
					pick = cands[0]
					break
				}
			}
			if pick == "" {
				return nil, fmt.Errorf("assemble: %s %s depends on %s, which %s cannot satisfy", p.Name, p.Version, relationsString(group), spec.Suite)
			}
			queue = append(queue, pick)
		}
	}
	res := &Resolution{}
	for _, ix := range ixs {
		res.Releases = append(res.Releases, ix.release)
	}
	for _, p := range chosen {
		res.Packages = append(res.Packages, p)
	}
	sort.Slice(res.Packages, func(i, j int) bool { return res.Packages[i].Name < res.Packages[j].Name })
	return res, nil
}

func relationsString(g apt.Alternatives) string {
	var s []string
	for _, r := range g {
		s = append(s, r.Original)
	}
	return strings.Join(s, " | ")
}

func debLess(a, b string) bool {
	va, err := semantic.Parse(a, "Debian")
	if err != nil {
		return a < b
	}
	c, err := va.CompareStr(b)
	return err == nil && c < 0
}

// versionOK reports whether version satisfies the relation's constraint.
func versionOK(version string, r apt.Relation) bool {
	if r.Op == "" {
		return true
	}
	v, err := semantic.Parse(version, "Debian")
	if err != nil {
		return false
	}
	c, err := v.CompareStr(r.Version)
	if err != nil {
		return false
	}
	switch r.Op {
	case "<<":
		return c < 0
	case "<=":
		return c <= 0
	case "=":
		return c == 0
	case ">=":
		return c >= 0
	case ">>":
		return c > 0
	}
	return false
}

// nonRoot is the user the assembler creates and runs images as.
const (
	nonRootName = "nonroot"
	nonRootID   = 65532
)

// mergedUsr lists the directories Debian merges into /usr.
var mergedUsr = []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"}

// Assemble resolves spec, fetches and verifies each package, and builds
// the image: one layer holding every package's files (merged /usr), a
// dpkg status database listing them, the nonroot user, and the CA
// bundle when ca-certificates is installed. The same spec and archive
// content always give the same digest.
func (a *Assembler) Assemble(ctx context.Context, spec AssembleSpec) (v1.Image, *Resolution, error) {
	res, err := a.Resolve(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	img, err := a.AssembleResolved(ctx, spec, res)
	return img, res, err
}

// AssembleResolved builds the image of an existing resolution.
func (a *Assembler) AssembleResolved(ctx context.Context, spec AssembleSpec, res *Resolution) (v1.Image, error) {
	spool, err := os.MkdirTemp("", "socle-assemble-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(spool)
	epoch := spec.Epoch.UTC()
	t := newTree(spool, epoch)
	var status bytes.Buffer
	for _, p := range res.Packages {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		file, err := p.archive.Fetch(ctx, p.Package)
		if err != nil {
			return nil, fmt.Errorf("assemble: %w", err)
		}
		files, deb, err := a.unpack(t, file, p.Package)
		if err != nil {
			return nil, fmt.Errorf("assemble: %s: %w", p.Name, err)
		}
		infoName := p.Name
		if p.MultiArch == "same" {
			infoName += ":" + p.Architecture
		}
		if err := t.addFile("var/lib/dpkg/info/"+infoName+".list", 0o644, 0, 0, []byte(strings.Join(files, "\n")+"\n"), ""); err != nil {
			return nil, err
		}
		if len(deb.MD5Sums) > 0 {
			if err := t.addFile("var/lib/dpkg/info/"+infoName+".md5sums", 0o644, 0, 0, deb.MD5Sums, ""); err != nil {
				return nil, err
			}
		}
		writeStatusStanza(&status, deb.Control, deb.Conffiles)
	}
	for _, d := range []string{"bin", "sbin", "lib"} {
		if err := t.addSymlink(d, "usr/"+d); err != nil {
			return nil, err
		}
	}
	if _, ok := t.entries["usr/lib64"]; ok {
		if err := t.addSymlink("lib64", "usr/lib64"); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct {
		p    string
		mode int64
	}{{"tmp", 0o1777}, {"root", 0o700}, {"var/tmp", 0o1777}} {
		if err := t.addDir(d.p, d.mode, 0, 0); err != nil {
			return nil, err
		}
	}
	if err := t.addFile("var/lib/dpkg/status", 0o644, 0, 0, status.Bytes(), ""); err != nil {
		return nil, err
	}
	if err := addUsers(t); err != nil {
		return nil, err
	}
	if err := addCABundle(t); err != nil {
		return nil, err
	}
	var layerBuf bytes.Buffer
	if err := t.writeTo(&layerBuf); err != nil {
		return nil, err
	}
	data := layerBuf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, err
	}
	created := fmt.Sprintf("socle assemble %s: %s", spec.Suite, strings.Join(spec.Packages, " "))
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: created, Comment: "assembled by socle"}})
	if err != nil {
		return nil, err
	}
	cfg := spec.Config
	if cfg.User == "" {
		cfg.User = fmt.Sprint(nonRootID)
	}
	if cfg.Env == nil {
		cfg.Env = map[string]string{}
	}
	if _, ok := cfg.Env["PATH"]; !ok {
		cfg.Env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	if _, ok := cfg.Env["SSL_CERT_FILE"]; !ok && t.entries["etc/ssl/certs/ca-certificates.crt"] != nil {
		cfg.Env["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt"
	}
	arch := spec.Arch
	if arch == "" {
		arch = "amd64"
	}
	return configure(img, cfg, epoch, arch)
}

// unpack adds a package's files to the tree and returns their paths, as
// dpkg lists them.
func (a *Assembler) unpack(t *tree, file string, p *apt.Package) ([]string, *apt.Deb, error) {
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
		if err := t.add(*h, tr, p.Name); err != nil {
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

// addUsers writes /etc/passwd and /etc/group: base-passwd's masters
// when it is installed (its postinst would copy them), root otherwise,
// and the nonroot user.
func addUsers(t *tree) error {
	passwd, ok := t.read("usr/share/base-passwd/passwd.master")
	if !ok {
		passwd = []byte("root:x:0:0:root:/root:/bin/sh\n")
	}
	group, ok := t.read("usr/share/base-passwd/group.master")
	if !ok {
		group = []byte("root:x:0:\n")
	}
	passwd = append(append([]byte(nil), passwd...), []byte(fmt.Sprintf("%s:x:%d:%d:nonroot:/home/%s:/sbin/nologin\n", nonRootName, nonRootID, nonRootID, nonRootName))...)
	group = append(append([]byte(nil), group...), []byte(fmt.Sprintf("%s:x:%d:\n", nonRootName, nonRootID))...)
	if err := t.addFile("etc/passwd", 0o644, 0, 0, passwd, ""); err != nil {
		return err
	}
	if err := t.addFile("etc/group", 0o644, 0, 0, group, ""); err != nil {
		return err
	}
	return t.addDir("home/"+nonRootName, 0o700, nonRootID, nonRootID)
}

// addCABundle does what ca-certificates' update-ca-certificates would:
// concatenate the trusted certificates into one bundle.
func addCABundle(t *tree) error {
	var certs []string
	for p, e := range t.entries {
		if e.owner == "ca-certificates" && strings.HasPrefix(p, "usr/share/ca-certificates/") && strings.HasSuffix(p, ".crt") {
			certs = append(certs, p)
		}
	}
	if len(certs) == 0 {
		return nil
	}
	sort.Strings(certs)
	var bundle bytes.Buffer
	for _, c := range certs {
		b, _ := t.read(c)
		bundle.Write(bytes.TrimSpace(b))
		bundle.WriteByte('\n')
	}
	return t.addFile("etc/ssl/certs/ca-certificates.crt", 0o644, 0, 0, bundle.Bytes(), "")
}

// configure sets the image configuration.
func configure(img v1.Image, c ImageConfig, created time.Time, arch string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: created}
	applyConfig(&cf.Config, c)
	return mutate.ConfigFile(img, cf)
}

// applyConfig merges c into a runtime configuration.
func applyConfig(cfg *v1.Config, c ImageConfig) {
	if c.User != "" {
		cfg.User = c.User
	}
	if len(c.Env) > 0 {
		env := map[string]string{}
		var order []string
		for _, e := range cfg.Env {
			k, v, _ := strings.Cut(e, "=")
			if _, ok := env[k]; !ok {
				order = append(order, k)
			}
			env[k] = v
		}
		keys := make([]string, 0, len(c.Env))
		for k := range c.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, ok := env[k]; !ok {
				order = append(order, k)
			}
			env[k] = c.Env[k]
		}
		cfg.Env = nil
		for _, k := range order {
			cfg.Env = append(cfg.Env, k+"="+env[k])
		}
	}
	if len(c.Labels) > 0 {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for k, v := range c.Labels {
			cfg.Labels[k] = v
		}
	}
	if c.Entrypoint != nil {
		cfg.Entrypoint = c.Entrypoint
	}
	if c.Cmd != nil {
		cfg.Cmd = c.Cmd
	}
	if c.WorkingDir != "" {
		cfg.WorkingDir = c.WorkingDir
	}
}
