package apt_test

import (
	"bytes"
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
