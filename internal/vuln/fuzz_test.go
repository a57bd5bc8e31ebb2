package vuln_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
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

// FuzzParseNVD: an NVD record or feed is read or refused; a rating read
// names a CVE and has a severity of the scale.
func FuzzParseNVD(f *testing.F) {
	for _, p := range []string{"CVE-2021/CVE-2021-34xx/CVE-2021-3449.json", "CVE-2023/CVE-2023-49xx/CVE-2023-4911.json", "CVE-2020/CVE-2020-19xx/CVE-2020-1967.json"} {
		f.Add(seed(f, testenv.ReadShared(f, append([]string{"nvd"}, strings.Split(p, "/")...)...), "descriptions", "references", "configurations", "weaknesses", "cveTags"))
	}
	f.Add([]byte(`{"format":"NVD_CVE","vulnerabilities":[{"cve":{"id":"CVE-2024-1","metrics":{"cvssMetricV40":[{"type":"Primary","cvssData":{"vectorString":"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"}}]}}}]}`)) // hand-made
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(r store.Rating) {
			if !strings.HasPrefix(r.ID, "CVE-") || vuln.SeverityRank(r.Severity) == 0 && r.Severity != vuln.SeverityUnknown {
				t.Fatalf("rating %+v", r)
			}
		}
		if r, ok, err := vuln.ParseNVD(data); err == nil && ok {
			check(r)
		}
		_, _ = vuln.ParseNVDFeed(bytes.NewReader(data), func(r store.Rating) error { check(r); return nil })
	})
}

// FuzzParseKEV: the KEV catalog is read or refused; entries name CVEs.
func FuzzParseKEV(f *testing.F) {
	f.Add(testenv.ReadShared(f, "kev", "known_exploited_vulnerabilities.json")[:4096])                                                                                          // a cut catalog: refused
	f.Add([]byte(`{"catalogVersion":"1","vulnerabilities":[{"cveID":"CVE-2021-44228","dateAdded":"2021-12-10","dueDate":"2021-12-24","knownRansomwareCampaignUse":"Known"}]}`)) // hand-made
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := vuln.ParseKEV(data)
		if err != nil {
			return
		}
		for _, e := range es {
			if !strings.HasPrefix(e.ID, "CVE-") || e.KEVAdded.IsZero() {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}

// FuzzParseEPSS: EPSS CSV is read or refused; scores are probabilities.
func FuzzParseEPSS(f *testing.F) {
	f.Add([]byte("#model_version:v2025.03.14,score_date:2025-08-25T00:00:00+0000\ncve,epss,percentile\nCVE-2021-44228,0.94358,0.99957\n")) // hand-made, in FIRST's layout
	f.Add([]byte("cve,epss,percentile\nCVE-1999-0001,0.01,0.5\nCVE-1999-0002,x,0.5\n"))                                                    // hand-made
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = vuln.ParseEPSS(bytes.NewReader(data), 2, func(es []store.Exploit) error {
			for _, e := range es {
				if e.EPSS < 0 || e.EPSS > 1 || e.Percentile < 0 || e.Percentile > 1 || !strings.HasPrefix(e.ID, "CVE-") {
					t.Fatalf("score %+v", e)
				}
			}
			return nil
		})
	})
}

// FuzzParseCSAF: a CSAF document is read or refused, and its statements
// apply to a finding without failing.
func FuzzParseCSAF(f *testing.F) {
	f.Add(seed(f, testenv.ReadShared(f, "csaf", "redhat-vex-via-claircore", "cve-2024-24786-simple.json")))
	f.Add(seed(f, testenv.ReadShared(f, "csaf", "oasis-csaf-2.0", "vex", "2022-evd-uc-03-ms-001.json")))
	f.Fuzz(func(t *testing.T, data []byte) {
		v := &vuln.VEX{}
		if _, err := v.ParseCSAF(data); err != nil {
			return
		}
		v.Apply("sha256:"+strings.Repeat("0", 64), []vuln.Finding{{ID: "CVE-2024-24786", Advisories: []string{"CVE-2024-24786"},
			Package: sbom.Package{Type: "rpm", Name: "cri-tools", Version: "1", PURL: "pkg:rpm/redhat/cri-tools@1"}}})
	})
}

// FuzzParseTracker: a Debian tracker record is read or refused; its
// conversion is a valid OSV record.
func FuzzParseTracker(f *testing.F) {
	for _, n := range []string{"CVE-2021-29629.json", "CVE-2020-8631.json", "CVE-2021-3450.json"} {
		f.Add(seed(f, testenv.ReadShared(f, "debian", "trivy-db-vuln-list-debian-sample", "vuln-list-debian", "tracker", "CVE", n)))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := vuln.ParseTracker(data)
		if err != nil {
			return
		}
		if _, err := vuln.ToAdvisory(vuln.TrackerToOSV(r, map[string]string{"bookworm": "12"}), "fuzz"); err != nil {
			t.Fatalf("conversion does not store: %v", err)
		}
	})
}

// seed makes a fuzz seed of a real document: without the top-level keys
// drop names, without the prose fields (notes, details, "Original" lines)
// at any depth, compact. Go's fuzzer stalls on seeds of several kilobytes
// (a few execs a minute here); the ordinary tests read the documents
// whole.
func seed(f *testing.F, doc []byte, drop ...string) []byte {
	f.Helper()
	var v map[string]any
	if err := json.Unmarshal(doc, &v); err != nil {
		f.Fatal(err)
	}
	for _, k := range drop {
		delete(v, k)
	}
	var strip func(x any)
	strip = func(x any) {
		switch t := x.(type) {
		case map[string]any:
			for _, k := range []string{"notes", "details", "Original", "Line", "references", "title", "text", "Description"} {
				delete(t, k)
			}
			for _, c := range t {
				strip(c)
			}
		case []any:
			for _, c := range t {
				strip(c)
			}
		}
	}
	strip(v)
	b, err := json.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
