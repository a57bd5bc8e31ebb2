package apt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
)

// Archive is one suite of a Debian mirror.
type Archive struct {
	// Mirror is the archive root (the URI of an apt source).
	Mirror string
	// Suite is the distribution, e.g. bookworm or bookworm-security.
	Suite      string
	Components []string
	Arch       string
	Keyring    openpgp.EntityList
	Client     *http.Client
	// Cache holds verified downloads, named by their SHA-256, and the
	// Date of the last Release accepted for each mirror and suite.
	Cache string
	// Now is the clock Release validity is checked against; nil is
	// time.Now.
	Now func() time.Time
}

// DefaultKeyring is where Debian's archive keyring is installed.
const DefaultKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

const (
	maxIndex = 1 << 30
	maxDeb   = 2 << 30
)

func (a *Archive) client() *http.Client {
	if a.Client != nil {
		return a.Client
	}
	return http.DefaultClient
}

// Index fetches and verifies the suite's Release and Packages indexes.
func (a *Archive) Index(ctx context.Context) (*Release, []Package, error) {
	if len(a.Keyring) == 0 {
		return nil, nil, errors.New("apt: no keyring to verify the archive with")
	}
	inrel, err := a.get(ctx, a.Mirror+"/dists/"+a.Suite+"/InRelease", maxRelease)
	if err != nil {
		return nil, nil, err
	}
	text, err := VerifyInRelease(inrel, a.Keyring)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", a.Mirror, a.Suite, err)
	}
	rel, err := ParseRelease(text)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", a.Mirror, a.Suite, err)
	}
	if err := rel.Check(a.Suite, a.now(), a.lastAccepted()); err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", a.Mirror, a.Suite, err)
	}
	comps := a.Components
	if len(comps) == 0 {
		comps = []string{"main"}
	}
	arch := a.Arch
	if arch == "" {
		arch = "amd64"
	}
	var pkgs []Package
	for _, comp := range comps {
		base := comp + "/binary-" + arch + "/Packages"
		path, fh, ok := pickIndex(rel, base)
		if !ok {
			return nil, nil, fmt.Errorf("%s %s: Release lists no %s", a.Mirror, a.Suite, base)
		}
		f, err := a.fetchVerified(ctx, a.Mirror+"/dists/"+a.Suite+"/"+path, fh, maxIndex)
		if err != nil {
			return nil, nil, err
		}
		// The Release also gives the hash of the uncompressed index: keep
		// that, verified, so that a warm cache reads plain text instead
		// of decompressing xz again (most of a warm assembly's time).
		if plain, ok := rel.Files[base]; ok && path != base && len(plain.SHA256) == 64 {
			pf, err := a.decompressVerified(f, path, plain)
			f.Close()
			if err != nil {
				return nil, nil, fmt.Errorf("%s %s %s: %w", a.Mirror, a.Suite, path, err)
			}
			f, path = pf, base
		}
		ps, err := parseIndexFile(f, path, a.Suite)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s %s: %w", a.Mirror, a.Suite, path, err)
		}
		pkgs = append(pkgs, ps...)
	}
	if err := a.accept(rel); err != nil {
		return nil, nil, err
	}
	return rel, pkgs, nil
}

func (a *Archive) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// acceptedPath is the file holding the Date of the last Release
// accepted for this mirror and suite.
func (a *Archive) acceptedPath() string {
	sum := sha256.Sum256([]byte(a.Mirror + "\x00" + a.Suite))
	return filepath.Join(a.Cache, "accepted", hex.EncodeToString(sum[:16]))
}

// lastAccepted is the Date of the Release accepted before, zero when
// none was (or the archive has no cache to remember it in).
func (a *Archive) lastAccepted() time.Time {
	if a.Cache == "" {
		return time.Time{}
	}
	b, err := os.ReadFile(a.acceptedPath())
	if err != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}
	}
	return t
}

// accept records rel's Date as the oldest this suite may go back to.
func (a *Archive) accept(rel *Release) error {
	if a.Cache == "" || !rel.Date.After(a.lastAccepted()) {
		return nil
	}
	p := a.acceptedPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "accepting-*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(rel.Date.Format(time.RFC3339) + "\n")
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// pickIndex prefers the xz index, then gzip, then plain.
func pickIndex(rel *Release, base string) (string, FileHash, bool) {
	for _, ext := range []string{".xz", ".gz", ""} {
		if fh, ok := rel.Files[base+ext]; ok {
			return base + ext, fh, true
		}
	}
	return "", FileHash{}, false
}

func parseIndexFile(f *os.File, path, suite string) ([]Package, error) {
	r, err := decompressor(f, path)
	if err != nil {
		return nil, err
	}
	return ParsePackages(io.LimitReader(r, 4*maxIndex), suite)
}

// decompressVerified returns the cached uncompressed form of the index
// f, writing it when missing; its size and SHA-256 must be the ones the
// Release gives.
func (a *Archive) decompressVerified(f *os.File, path string, plain FileHash) (*os.File, error) {
	if plain.Size > 4*maxIndex {
		return nil, fmt.Errorf("uncompressed index of %d bytes, more than %d", plain.Size, 4*maxIndex)
	}
	cached := filepath.Join(a.Cache, "sha256", plain.SHA256)
	if c, err := os.Open(cached); err == nil {
		return c, nil
	}
	r, err := decompressor(f, path)
	if err != nil {
		return nil, err
	}
	return writeVerified(cached, r, plain, path)
}

// writeVerified copies r to the cache file named by its hash, through a
// temporary file, and keeps it only if the size and hash match.
func writeVerified(cached string, r io.Reader, fh FileHash, what string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(cached), 0o750); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(cached), "download-*")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, fh.Size+1))
	if err == nil && n != fh.Size {
		err = fmt.Errorf("%s: %d bytes, the Release or index says %d", what, n, fh.Size)
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != fh.SHA256 {
		err = fmt.Errorf("%s: SHA-256 mismatch", what)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return nil, err
	}
	if err := os.Rename(tmp.Name(), cached); err != nil {
		os.Remove(tmp.Name())
		return nil, err
	}
	return os.Open(cached)
}

func decompressor(f io.Reader, path string) (io.Reader, error) {
	var r io.Reader = f
	switch {
	case strings.HasSuffix(path, ".xz"):
		xr, err := xz.NewReader(f)
		if err != nil {
			return nil, err
		}
		r = xr
	case strings.HasSuffix(path, ".gz"):
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		r = zr
	}
	return r, nil
}

// Fetch downloads a package, verified against its index entry, and
// returns the cached file.
func (a *Archive) Fetch(ctx context.Context, p *Package) (string, error) {
	if p.SHA256 == "" || p.Filename == "" {
		return "", fmt.Errorf("%s %s: index entry has no Filename or SHA256", p.Name, p.Version)
	}
	f, err := a.fetchVerified(ctx, a.Mirror+"/"+p.Filename, FileHash{Size: p.Size, SHA256: p.SHA256}, maxDeb)
	if err != nil {
		return "", err
	}
	f.Close()
	return f.Name(), nil
}

// fetchVerified returns the cached file with this hash, downloading it
// when missing. A download whose size or hash differs is discarded.
func (a *Archive) fetchVerified(ctx context.Context, url string, fh FileHash, limit int64) (*os.File, error) {
	if len(fh.SHA256) != 64 {
		return nil, fmt.Errorf("%s: no SHA-256 to verify it with", url)
	}
	if fh.Size > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", url, fh.Size, limit)
	}
	cached := filepath.Join(a.Cache, "sha256", fh.SHA256)
	if f, err := os.Open(cached); err == nil {
		return f, nil
	}
	if err := os.MkdirAll(filepath.Dir(cached), 0o750); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: %s", url, resp.Status)
	}
	return writeVerified(cached, resp.Body, fh, "fetching "+url)
}

func (a *Archive) get(ctx context.Context, url string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching %s: %s", url, resp.Status)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(resp.Body, limit+1)); err != nil {
		return nil, fmt.Errorf("fetching %s: %w", url, err)
	}
	if int64(buf.Len()) > limit {
		return nil, fmt.Errorf("fetching %s: more than %d bytes", url, limit)
	}
	return buf.Bytes(), nil
}
