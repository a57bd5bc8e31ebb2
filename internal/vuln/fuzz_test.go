package vuln_test

import (
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

// FuzzParseOSV: any input is parsed or refused; a parsed record converts
// to a store record with a valid ID.
func FuzzParseOSV(f *testing.F) {
	for _, n := range []string{"GHSA-j8r2-6x86-q33q.json", "GHSA-jfh8-c2jp-5v3q.json", "GHSA-p6mc-m468-83gw.json", "GHSA-xvch-5gv4-984h.json"} {
		f.Add(testenv.ReadShared(f, "osv", "ghsa", n))
	}
	f.Add([]byte(`{"id":"X-1","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Debian:12","name":"a"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1:2.0-1"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := vuln.ParseOSV(data)
		if err != nil {
			return
		}
		a, err := vuln.ToAdvisory(v, "fuzz")
		if err != nil {
			return
		}
		if a.ID == "" {
			t.Fatal("record without ID accepted")
		}
		for _, af := range a.Affected {
			spec, err := vuln.DecodeSpec(af.Spec)
			if err != nil {
				t.Fatalf("stored spec does not decode: %v", err)
			}
			vuln.Affects(spec, af.Ecosystem, "1.0.0")
		}
	})
}

func FuzzParseOSVYAML(f *testing.F) {
	f.Add([]byte("id: PYSEC-1\nmodified: 2024-01-01T00:00:00Z\naffected:\n- package:\n    ecosystem: PyPI\n    name: x\n  versions:\n  - 1.0\n"))
	f.Add([]byte("id: &a X\nx: *a\n"))
	f.Add([]byte("- - - - -"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = vuln.ParseOSVYAML(data)
	})
}

func FuzzParseSecDB(f *testing.F) {
	f.Add(testenv.ReadShared(f, "alpine", "vuln-list-alpine-3.10", "musl.json"), true)
	f.Add(testenv.ReadShared(f, "alpine", "alpine-secdb-v3.10", "main.yaml"), false)
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		d, err := vuln.ParseSecDB(data, isJSON)
		if err != nil {
			return
		}
		for _, v := range vuln.SecDBToOSV([]*vuln.SecDB{d}, testTime) {
			if _, err := vuln.ToAdvisory(v, "fuzz"); err != nil {
				t.Fatalf("converted record does not store: %v", err)
			}
		}
	})
}

func FuzzParseOpenVEX(f *testing.F) {
	f.Add([]byte(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"pkg:apk/alpine/musl"}],"status":"not_affected"}]}`))
	f.Add([]byte(`{"@context":"https://openvex.dev/ns","statements":[{"vulnerability":"CVE-1","products":["pkg:oci/x@sha256%3Aab"],"subcomponents":["pkg:deb/debian/a"],"status":"fixed"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := &vuln.VEX{}
		if err := v.ParseOpenVEX(data); err != nil {
			return
		}
		v.Apply(digest, []vuln.Finding{finding("CVE-1", nil, "pkg:apk/alpine/musl@1")})
	})
}

var testTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
