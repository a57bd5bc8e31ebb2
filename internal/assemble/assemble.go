package assemble

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	ggcrmutate "github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/socle-dev/socle/internal/apt"
	"github.com/socle-dev/socle/internal/layer"
	"github.com/socle-dev/socle/internal/mutate"
)

// Spec describes a base image made of Debian packages.
type Spec struct {
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
	Config         mutate.Config
	// Epoch dates every file and the image (SOURCE_DATE_EPOCH).
	Epoch time.Time
}

// CacheDir is where the assembler of a data directory keeps the Debian
// archive's indexes and packages, by hash.
func CacheDir(dataDir string) string { return filepath.Join(dataDir, "apt-cache") }

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

// Options configure an Assembler.
type Options struct {
	// Keyring verifies the archive (default: Debian's archive keyring).
	Keyring string
	// Cache keeps indexes and packages, by hash.
	Cache string
	// Sources are the apt sources (default: the host's).
	Sources []apt.Source
	Logger  *slog.Logger
}

// NewAssembler returns an Assembler.
func New(o Options) (*Assembler, error) {
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
func (a *Assembler) Assemble(ctx context.Context, spec Spec) (v1.Image, *Resolution, error) {
	res, err := a.Resolve(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	img, err := a.AssembleResolved(ctx, spec, res)
	return img, res, err
}

// AssembleResolved builds the image of an existing resolution.
func (a *Assembler) AssembleResolved(ctx context.Context, spec Spec, res *Resolution) (v1.Image, error) {
	spool, err := os.MkdirTemp("", "socle-assemble-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(spool)
	epoch := spec.Epoch.UTC()
	t := layer.NewTree(spool, epoch)
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
		if err := t.AddFile("var/lib/dpkg/info/"+infoName+".list", 0o644, 0, 0, []byte(strings.Join(files, "\n")+"\n"), ""); err != nil {
			return nil, err
		}
		if len(deb.MD5Sums) > 0 {
			if err := t.AddFile("var/lib/dpkg/info/"+infoName+".md5sums", 0o644, 0, 0, deb.MD5Sums, ""); err != nil {
				return nil, err
			}
		}
		writeStatusStanza(&status, deb.Control, deb.Conffiles)
	}
	for _, d := range []string{"bin", "sbin", "lib"} {
		if err := t.AddSymlink(d, "usr/"+d); err != nil {
			return nil, err
		}
	}
	if t.Has("usr/lib64") {
		if err := t.AddSymlink("lib64", "usr/lib64"); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct {
		p    string
		mode int64
	}{{"tmp", 0o1777}, {"root", 0o700}, {"var/tmp", 0o1777}} {
		if err := t.AddDir(d.p, d.mode, 0, 0); err != nil {
			return nil, err
		}
	}
	if err := t.AddFile("var/lib/dpkg/status", 0o644, 0, 0, status.Bytes(), ""); err != nil {
		return nil, err
	}
	if err := addUsers(t); err != nil {
		return nil, err
	}
	if err := addCABundle(t); err != nil {
		return nil, err
	}
	l, err := mutate.TreeLayer(t)
	if err != nil {
		return nil, err
	}
	created := fmt.Sprintf("socle assemble %s: %s", spec.Suite, strings.Join(spec.Packages, " "))
	img, err := ggcrmutate.Append(empty.Image, ggcrmutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: epoch}, CreatedBy: created, Comment: "assembled by socle"}})
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
	if _, ok := cfg.Env["SSL_CERT_FILE"]; !ok && t.Has("etc/ssl/certs/ca-certificates.crt") {
		cfg.Env["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt"
	}
	arch := spec.Arch
	if arch == "" {
		arch = "amd64"
	}
	return mutate.Configure(img, cfg, epoch, arch)
}
