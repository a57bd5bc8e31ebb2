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
	Origin   string
	Suite    string
	Codename string
	Version  string
	Date     time.Time
	// ValidUntil is when the Release expires; zero when it names none.
	ValidUntil    time.Time
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
			t, err := parseDate(v)
			if err != nil {
				return nil, fmt.Errorf("Release: Date: %w", err)
			}
			r.Date = t
		case "valid-until":
			t, err := parseDate(v)
			if err != nil {
				return nil, fmt.Errorf("Release: Valid-Until: %w", err)
			}
			r.ValidUntil = t
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

// parseDate reads a Release date, RFC 2822 style as apt writes it
// ("Sat, 09 Nov 2024 10:12:56 UTC").
func parseDate(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC1123, strings.Replace(v, "UTC", "GMT", 1)); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.RFC1123Z, v); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 2822 date", v)
}

// Errors of a correctly signed Release that must still be refused.
var (
	ErrForeignSuite = errors.New("Release names another suite")
	ErrExpired      = errors.New("Release is past its Valid-Until")
	ErrRollback     = errors.New("Release is older than one already accepted")
	ErrNotYetValid  = errors.New("Release is dated in the future")
)

// clockSkew is how far in the future a Release's Date may be.
const clockSkew = 10 * time.Minute

// Check refuses a Release that does not name suite (as Suite or
// Codename), that is past its Valid-Until or dated in the future at now,
// or that is older than last, the Date of the Release accepted before
// for this suite (zero when none): what apt refuses too.
func (r *Release) Check(suite string, now, last time.Time) error {
	if r.Suite != suite && r.Codename != suite {
		return fmt.Errorf("%w: asked for %s, got Suite %q Codename %q", ErrForeignSuite, suite, r.Suite, r.Codename)
	}
	if !r.ValidUntil.IsZero() && now.After(r.ValidUntil) {
		return fmt.Errorf("%w (%s)", ErrExpired, r.ValidUntil.Format(time.RFC3339))
	}
	if r.Date.IsZero() {
		return errors.New("Release has no Date")
	}
	if r.Date.After(now.Add(clockSkew)) {
		return fmt.Errorf("%w (%s)", ErrNotYetValid, r.Date.Format(time.RFC3339))
	}
	if r.Date.Before(last) {
		return fmt.Errorf("%w: dated %s, accepted %s before", ErrRollback, r.Date.Format(time.RFC3339), last.Format(time.RFC3339))
	}
	return nil
}
