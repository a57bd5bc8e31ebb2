package apt_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"testing"

	"github.com/socle-dev/socle/internal/apt"
)

func FuzzParsePackages(f *testing.F) {
	// Hand-made stanzas, well and badly formed; TestRealArchive parses the
	// real index.
	f.Add([]byte("Package: apt\nVersion: 2.6.1\nArchitecture: amd64\nDepends: libc6 (>= 2.34), adduser | passwd\nFilename: pool/main/a/apt/apt_2.6.1_amd64.deb\nSize: 10\nSHA256: " + string(bytes.Repeat([]byte("a"), 64)) + "\n\n"))
	f.Add([]byte("Package: x\nVersion: 1\nFilename: ../../etc/passwd\n"))
	f.Add([]byte(" continuation\n"))
	f.Add([]byte("Package: x\nVersion: 1\nDepends: a (>= \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := apt.ParsePackages(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("accepted a stanza without name or version: %+v", p)
			}
			if bytes.Contains([]byte(p.Filename), []byte("..")) {
				t.Fatalf("accepted Filename %q", p.Filename)
			}
		}
	})
}

func FuzzParseRelease(f *testing.F) {
	f.Add([]byte("Suite: stable\nCodename: bookworm\nDate: Sat, 11 Jul 2026 10:16:37 UTC\nSHA256:\n " + string(bytes.Repeat([]byte("b"), 64)) + " 123 main/binary-amd64/Packages.xz\n"))
	f.Add([]byte("Codename: x\nSHA256:\n zz 1 a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := apt.ParseRelease(data)
		if err != nil {
			return
		}
		for p, fh := range r.Files {
			if len(fh.SHA256) != 64 || fh.Size < 0 || p == "" {
				t.Fatalf("accepted %q %+v", p, fh)
			}
		}
	})
}

func FuzzParseRelations(f *testing.F) {
	f.Add("libc6 (>= 2.34), a | b:any, c [amd64] <!nocheck>")
	f.Fuzz(func(t *testing.T, s string) {
		rels, err := apt.ParseRelations(s)
		if err != nil {
			return
		}
		for _, alts := range rels {
			for _, r := range alts {
				if r.Name == "" {
					t.Fatalf("empty name from %q", s)
				}
			}
		}
	})
}

// handMadeDeb writes a hand-made .deb: an ar archive with debian-binary,
// control.tar.gz and data.tar.
func handMadeDeb(t testing.TB) []byte {
	t.Helper()
	tarOf := func(name string, data []byte) []byte {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
		tw.Close()
		return b.Bytes()
	}
	var ctl bytes.Buffer
	zw := gzip.NewWriter(&ctl)
	zw.Write(tarOf("./control", []byte("Package: hand-made\nVersion: 1.0\nArchitecture: all\n")))
	zw.Close()
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	member := func(name string, data []byte) {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", name, 0, 0, 0, "100644", len(data))
		ar.Write(data)
		if len(data)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	member("debian-binary", []byte("2.0\n"))
	member("control.tar.gz", ctl.Bytes())
	member("data.tar", tarOf("./usr/share/doc/hand-made/README", []byte("hand-made\n")))
	return ar.Bytes()
}

func FuzzOpenDeb(f *testing.F) {
	f.Add(handMadeDeb(f))
	f.Add([]byte("!<arch>\n"))
	f.Add([]byte("!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := apt.OpenDeb(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		r, closeData, err := d.Data()
		if err != nil {
			return
		}
		defer closeData()
		io.Copy(io.Discard, io.LimitReader(r, 1<<20))
	})
}

func TestHandMadeDeb(t *testing.T) {
	b := handMadeDeb(t)
	d, err := apt.OpenDeb(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(d.Control, []byte("Package: hand-made")) {
		t.Fatalf("control %q", d.Control)
	}
}
