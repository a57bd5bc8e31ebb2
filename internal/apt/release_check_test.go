package apt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"github.com/socle-dev/socle/internal/apt"
)

// TestForeignSuiteRefused serves the real, correctly signed InRelease of
// bookworm-updates where bookworm's belongs: the signature verifies, the
// suite does not.
func TestForeignSuiteRefused(t *testing.T) {
	a := hostArchive(t, "bookworm")
	upstream := a.Mirror
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.Replace(r.URL.Path, "/dists/bookworm/", "/dists/bookworm-updates/", 1)
		resp, err := http.Get(upstream + path)
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer srv.Close()
	a.Mirror = srv.URL
	_, _, err := a.Index(ctx)
	if !errors.Is(err, apt.ErrForeignSuite) {
		t.Fatalf("bookworm-updates served as bookworm: %v", err)
	}
}

// handMadeArchive is a one-suite archive signed by a key generated here
// (hand-made test data): it serves whichever InRelease is current.
type handMadeArchive struct {
	key      *openpgp.Entity
	packages []byte
	mu       sync.Mutex
	inrel    []byte
}

func newHandMadeArchive(t *testing.T) (*handMadeArchive, *httptest.Server) {
	t.Helper()
	key, err := openpgp.NewEntity("socle test archive", "hand-made", "archive@test.invalid", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &handMadeArchive{key: key, packages: []byte("Package: hand-made\nVersion: 1.0\nArchitecture: all\nFilename: pool/h/hand-made_1.0_all.deb\nSize: 1\nSHA256: " + strings.Repeat("0", 64) + "\n\n")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/InRelease"):
			w.Write(h.inrel)
		case strings.HasSuffix(r.URL.Path, "/main/binary-amd64/Packages"):
			w.Write(h.packages)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return h, srv
}

// publish signs and serves a Release naming suite, dated date, valid
// until validUntil (none when zero).
func (h *handMadeArchive) publish(t *testing.T, suite string, date, validUntil time.Time) {
	t.Helper()
	sum := sha256.Sum256(h.packages)
	var rel strings.Builder
	fmt.Fprintf(&rel, "Origin: hand-made\nSuite: %s\nCodename: %s\nDate: %s\n", suite, suite, date.UTC().Format(time.RFC1123))
	if !validUntil.IsZero() {
		fmt.Fprintf(&rel, "Valid-Until: %s\n", validUntil.UTC().Format(time.RFC1123))
	}
	fmt.Fprintf(&rel, "Architectures: amd64\nComponents: main\nSHA256:\n %s %d main/binary-amd64/Packages\n", hex.EncodeToString(sum[:]), len(h.packages))
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, h.key.PrivateKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, rel.String())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.inrel = buf.Bytes()
	h.mu.Unlock()
}

// TestReleaseChecks signs every Release correctly with the archive's own
// key: what is refused is refused for its content, as apt refuses it.
func TestReleaseChecks(t *testing.T) {
	h, srv := newHandMadeArchive(t)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	a := &apt.Archive{
		Mirror: srv.URL, Suite: "stable", Keyring: openpgp.EntityList{h.key},
		Cache: t.TempDir(), Now: func() time.Time { return now },
	}
	steps := []struct {
		name        string
		suite       string
		date, until time.Time
		want        error
	}{
		{"current release accepted", "stable", now.Add(-24 * time.Hour), now.Add(6 * 24 * time.Hour), nil},
		{"another suite's release", "oldstable", now.Add(-time.Hour), time.Time{}, apt.ErrForeignSuite},
		{"expired release", "stable", now.Add(-time.Hour), now.Add(-time.Minute), apt.ErrExpired},
		{"release from the future", "stable", now.Add(time.Hour), time.Time{}, apt.ErrNotYetValid},
		{"newer release accepted", "stable", now.Add(-time.Hour), now.Add(24 * time.Hour), nil},
		{"replay of the first release", "stable", now.Add(-24 * time.Hour), now.Add(6 * 24 * time.Hour), apt.ErrRollback},
		{"same release again", "stable", now.Add(-time.Hour), now.Add(24 * time.Hour), nil},
	}
	for _, s := range steps {
		h.publish(t, s.suite, s.date, s.until)
		rel, pkgs, err := a.Index(ctx)
		if s.want == nil {
			if err != nil || len(pkgs) != 1 || !rel.Date.Equal(s.date.Truncate(time.Second)) {
				t.Fatalf("%s: %v (%d packages)", s.name, err, len(pkgs))
			}
			continue
		}
		if !errors.Is(err, s.want) {
			t.Fatalf("%s: got %v, want %v", s.name, err, s.want)
		}
	}

	// A fresh cache remembers nothing, so the replay is only refused
	// where socle accepted the newer one: the state lives in the cache.
	b := *a
	b.Cache = t.TempDir()
	h.publish(t, "stable", now.Add(-24*time.Hour), now.Add(24*time.Hour))
	if _, _, err := b.Index(ctx); err != nil {
		t.Fatalf("first sight of an older release: %v", err)
	}
}
