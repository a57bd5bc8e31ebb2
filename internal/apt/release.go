package apt

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// Release is a suite's Release file.
type Release struct {
	Origin        string
	Suite         string
	Codename      string
	Version       string
	Date          time.Time
	Architectures []string
	Components    []string
	// Files maps an index path ("main/binary-amd64/Packages.xz") to its
	// size and SHA-256.
	Files map[string]FileHash
}

// FileHash is a file's size and SHA-256 as a Release file lists it.
type FileHash struct {
	Size   int64
	SHA256 string
}

// ErrBadSignature is returned when InRelease is not signed by the keyring.
var ErrBadSignature = errors.New("InRelease signature does not verify")

// ReadKeyring reads an OpenPGP keyring, binary or armored.
func ReadKeyring(path string) (openpgp.EntityList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the archive keyring: %w", err)
	}
	if bytes.Contains(b[:min(len(b), 64)], []byte("-----BEGIN PGP")) {
		return openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	}
	return openpgp.ReadKeyRing(bytes.NewReader(b))
}

// VerifyInRelease checks a clear-signed InRelease against keyring and
// returns the signed text.
func VerifyInRelease(data []byte, keyring openpgp.EntityList) ([]byte, error) {
	block, _ := clearsign.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: not a clear-signed document", ErrBadSignature)
	}
	if _, err := block.VerifySignature(keyring, nil); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return block.Plaintext, nil
}

const maxRelease = 32 << 20

// ParseRelease parses the text of a Release file.
func ParseRelease(data []byte) (*Release, error) {
	if len(data) > maxRelease {
		return nil, fmt.Errorf("Release file of %d bytes is too large", len(data))
	}
	r := &Release{Files: map[string]FileHash{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	section := ""
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") {
			if section != "sha256" {
				continue
			}
			f := strings.Fields(line)
			if len(f) != 3 {
				return nil, fmt.Errorf("Release: bad SHA256 line %q", line)
			}
			size, err := strconv.ParseInt(f[1], 10, 64)
			if _, herr := hex.DecodeString(f[0]); err != nil || herr != nil || size < 0 || len(f[0]) != 64 {
				return nil, fmt.Errorf("Release: bad SHA256 line %q", line)
			}
			r.Files[f[2]] = FileHash{Size: size, SHA256: strings.ToLower(f[0])}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		section = strings.ToLower(k)
		switch section {
		case "origin":
			r.Origin = v
		case "suite":
			r.Suite = v
		case "codename":
			r.Codename = v
		case "version":
			r.Version = v
		case "architectures":
			r.Architectures = strings.Fields(v)
		case "components":
			r.Components = strings.Fields(v)
		case "date":
			if t, err := time.Parse(time.RFC1123, strings.Replace(v, "UTC", "GMT", 1)); err == nil {
				r.Date = t.UTC()
			} else if t, err := time.Parse(time.RFC1123Z, v); err == nil {
				r.Date = t.UTC()
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("Release: %w", err)
	}
	if r.Suite == "" && r.Codename == "" {
		return nil, errors.New("Release: no Suite or Codename")
	}
	if len(r.Files) == 0 {
		return nil, errors.New("Release: no SHA256 file list")
	}
	return r, nil
}
