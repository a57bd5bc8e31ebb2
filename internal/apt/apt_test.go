package apt_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/apt"
)

var ctx = context.Background()

func TestParseSources(t *testing.T) {
	// Hand-made apt configuration in both formats.
	one := apt.ParseOneLine(`# comment
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian bookworm main contrib
deb-src http://mirror.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main # trailing
`)
	if len(one) != 2 || one[0].URI != "http://mirror.example/debian" || one[0].SignedBy != "/usr/share/keyrings/k.gpg" ||
		strings.Join(one[0].Components, ",") != "main,contrib" || one[1].Suites[0] != "bookworm-security" {
		t.Fatalf("one-line: %+v", one)
	}
	d := apt.ParseDeb822(`Types: deb
# a comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://mirror.example/other
Suites: x
Enabled: no
`)
	if len(d) != 1 || strings.Join(d[0].Suites, ",") != "bookworm,bookworm-updates" {
		t.Fatalf("deb822: %+v", d)
	}
	if m, ok := apt.MirrorFor(append(one, d...), "bookworm-security"); !ok || m != "http://security.example/debian-security" {
		t.Fatalf("MirrorFor = %q", m)
	}
}

func TestParseRelations(t *testing.T) {
	rels, err := apt.ParseRelations("libc6 (>= 2.34), libssl3 (>= 3.0.0) | libssl1.1, perl:any, debconf (>= 0.5) | debconf-2.0, foo [amd64] <!nocheck>")
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 5 || rels[0][0].Name != "libc6" || rels[0][0].Op != ">=" || rels[0][0].Version != "2.34" ||
		len(rels[1]) != 2 || rels[1][1].Name != "libssl1.1" || rels[2][0].Name != "perl" || rels[2][0].Arch != "any" || rels[4][0].Name != "foo" {
		t.Fatalf("relations: %+v", rels)
	}
	for _, bad := range []string{"a (>= )", "a (1.0", ", (>= 1)", "a b"} {
		if _, err := apt.ParseRelations(bad); err == nil {
			t.Errorf("ParseRelations(%q) accepted", bad)
		}
	}
}

// hostArchive returns the host's Debian mirror, as apt is configured.
func hostArchive(t testing.TB, suite string) *apt.Archive {
	t.Helper()
	srcs, err := apt.HostSources("")
	if err != nil {
		t.Fatal(err)
	}
	mirror, ok := apt.MirrorFor(srcs, suite)
	if !ok {
		t.Fatalf("the host's apt configuration has no source for %s", suite)
	}
	kr, err := apt.ReadKeyring(apt.DefaultKeyring)
	if err != nil {
		t.Fatal(err)
	}
	return &apt.Archive{Mirror: mirror, Suite: suite, Keyring: kr, Cache: sharedCache(t)}
}

var cacheOnce sync.Once
var cacheDir string

// sharedCache keeps downloads across the tests of one run.
func sharedCache(t testing.TB) string {
	cacheOnce.Do(func() {
		cacheDir = filepath.Join(os.TempDir(), "socle-apt-test-cache")
	})
	return cacheDir
}

// TestRealArchive reads the host's Debian mirror: signature, indexes,
// one package.
func TestRealArchive(t *testing.T) {
	a := hostArchive(t, "bookworm")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rel, pkgs, err := a.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Codename != "bookworm" || len(pkgs) < 10000 {
		t.Fatalf("release %+v with %d packages", rel.Codename, len(pkgs))
	}
	var bf *apt.Package
	for i := range pkgs {
		if pkgs[i].Name == "base-files" {
			bf = &pkgs[i]
		}
	}
	if bf == nil {
		t.Fatal("no base-files in bookworm")
	}
	path, err := a.Fetch(ctx, bf)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	deb, err := apt.OpenDeb(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(deb.Control, []byte("Package: base-files")) || !bytes.Contains(deb.Control, []byte("Version: "+bf.Version)) {
		t.Fatalf("control: %s", deb.Control)
	}
	data, closeData, err := deb.Data()
	if err != nil {
		t.Fatal(err)
	}
	defer closeData()
	buf := make([]byte, 512)
	if _, err := data.Read(buf); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedReleaseRefused(t *testing.T) {
	a := hostArchive(t, "bookworm")
	// Fetch the real InRelease, change one byte of the signed text.
	a.Suite = "bookworm"
	srv := tamperingMirror(t, a.Mirror)
	a.Mirror = srv
	if _, _, err := a.Index(ctx); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("tampered InRelease: %v", err)
	}
}

// TestIndexKeepsVerifiedPlainIndex checks that the uncompressed Packages
// index is cached under the hash the signed Release gives for it, so a
// warm index read does not decompress xz again, and gives the same data.
func TestIndexKeepsVerifiedPlainIndex(t *testing.T) {
	a := hostArchive(t, "bookworm")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	rel, pkgs, err := a.Index(ctx)
	if err != nil {
		t.Fatal(err)
	}
	plain, ok := rel.Files["main/binary-amd64/Packages"]
	if !ok {
		t.Skip("this Release lists no uncompressed index hash")
	}
	f, err := os.Open(filepath.Join(a.Cache, "sha256", plain.SHA256))
	if err != nil {
		t.Fatalf("no verified plain index in the cache: %v", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	f.Close()
	if err != nil || n != plain.Size || hex.EncodeToString(h.Sum(nil)) != plain.SHA256 {
		t.Fatalf("cached plain index: %d bytes, %x, %v", n, h.Sum(nil), err)
	}
	_, again, err := a.Index(ctx)
	if err != nil || len(again) != len(pkgs) {
		t.Fatalf("warm index: %d packages (cold %d), %v", len(again), len(pkgs), err)
	}
}
