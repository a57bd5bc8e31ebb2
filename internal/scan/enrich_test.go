package scan_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

func importAll(t *testing.T, st store.Store, source string, paths ...string) vuln.ImportStats {
	t.Helper()
	im := vuln.NewImporter(st, source)
	for _, p := range paths {
		if err := im.ImportPath(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	stats, err := im.Finish(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return stats
}

func scanAlpine(t *testing.T, sc *scan.Scanner) *scan.Result {
	t.Helper()
	ref, _ := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz"))
	img, err := source.Open(context.Background(), ref, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	res, err := sc.Scan(context.Background(), img, scan.Options{Index: true})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// nvdPrimaryV31 reads the vector NVD itself (type Primary) gives a CVE
// in the shared record, and the base score it states.
func nvdPrimaryV31(t *testing.T, cve string) (string, float64, bool) {
	t.Helper()
	year := strings.Split(cve, "-")[1]
	num := strings.Split(cve, "-")[2]
	p := testenv.SharedData(t, "nvd", "CVE-"+year, "CVE-"+year+"-"+num[:len(num)-2]+"xx", cve+".json")
	b, err := os.ReadFile(p)
	if err != nil {
		return "", 0, false
	}
	var rec struct {
		Metrics struct {
			V31 []struct {
				Type     string `json:"type"`
				CVSSData struct {
					Vector string  `json:"vectorString"`
					Score  float64 `json:"baseScore"`
				} `json:"cvssData"`
			} `json:"cvssMetricV31"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	for _, m := range rec.Metrics.V31 {
		if m.Type == "Primary" {
			return m.CVSSData.Vector, m.CVSSData.Score, true
		}
	}
	return "", 0, false
}

// TestNVDSeveritiesOnAlpine: the Alpine secdb states no severity, so the
// openssl findings of the real Alpine 3.10 image read UNKNOWN; once the
// real NVD records and the KEV catalog are imported, they carry NVD's
// CVSS (the score go-cvss computes from NVD's vector, which is the score
// NVD states), with the source named, without the image being scanned
// again; none of them is in the KEV catalog (as the MANIFEST says), and
// none is flagged.
func TestNVDSeveritiesOnAlpine(t *testing.T) {
	ctx := context.Background()
	st, sc := alpineStore(t)
	res := scanAlpine(t, sc)
	openssl := 0
	for _, f := range res.Findings {
		if f.Package.SourceName == "openssl" || f.Package.Name == "openssl" {
			openssl++
			if f.Severity != vuln.SeverityUnknown {
				t.Fatalf("%s before NVD: %s", f.ID, f.Severity)
			}
		}
	}
	if openssl == 0 {
		t.Fatal("no openssl finding")
	}
	stats := importAll(t, st, "nvd", testenv.SharedData(t, "nvd"), testenv.SharedData(t, "kev", "known_exploited_vulnerabilities.json"))
	if stats.NVD == 0 || stats.KEV == 0 || stats.Rated == 0 {
		t.Fatalf("import: %+v", stats)
	}
	rows, err := st.ImageFindings(ctx, res.Inventory.Digest)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range vuln.FromStore(rows) {
		if f.Key.Name != "openssl" {
			continue
		}
		vector, stated, ok := nvdPrimaryV31(t, f.ID)
		if !ok {
			continue
		}
		computed, err := vuln.CVSSScore(vector)
		if err != nil {
			t.Fatal(err)
		}
		if computed != stated {
			t.Errorf("%s: go-cvss scores %s %.1f, NVD states %.1f", f.ID, vector, computed, stated)
		}
		if f.SeveritySource != vuln.SourceNVD || f.Score != computed || f.Severity != vuln.Rating(computed) {
			t.Errorf("%s: %s %.1f from %q, want NVD's %.1f", f.ID, f.Severity, f.Score, f.SeveritySource, computed)
		}
		if !f.KEV.IsZero() {
			t.Errorf("%s flagged as known exploited", f.ID)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no openssl finding had an NVD record")
	}
}

// TestSeveritySourceOrder: a lodash finding is rated by both GHSA (its
// record) and NVD (the real NVD record of its CVE alias). The default
// order takes NVD's; --severity-source ghsa takes GHSA's; both stay
// listed in the finding's ratings.
func TestSeveritySourceOrder(t *testing.T) {
	ctx := context.Background()
	st, _ := alpineStore(t)
	importAll(t, st, "ghsa", testenv.SharedData(t, "osv", "ghsa", "GHSA-p6mc-m468-83gw.json"), testenv.SharedData(t, "nvd"))
	// Hand-made: lodash 4.17.15, which the record says is affected.
	fs, _, err := vuln.FindingsFor(ctx, vuln.NewMatcher(st), sbomPackage("npm", "npm", "", "lodash", "4.17.15"))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || len(fs[0].Ratings) != 2 {
		t.Fatalf("findings %+v", fs)
	}
	f := fs[0]
	if f.SeveritySource != vuln.SourceNVD {
		t.Fatalf("default order took %q", f.SeveritySource)
	}
	order, err := vuln.ParseSeverityOrder("ghsa")
	if err != nil {
		t.Fatal(err)
	}
	vuln.Reorder(fs, order)
	var ghsa store.Rating
	for _, r := range f.Ratings {
		if r.Source == vuln.SourceGHSA {
			ghsa = r
		}
	}
	if fs[0].SeveritySource != vuln.SourceGHSA || fs[0].Severity != ghsa.Severity || fs[0].Score != ghsa.Score {
		t.Fatalf("ghsa order: %s %.1f from %s, GHSA rates %+v", fs[0].Severity, fs[0].Score, fs[0].SeveritySource, ghsa)
	}
	if _, err := vuln.ParseSeverityOrder("nvd,mystery"); err == nil {
		t.Fatal("unknown source accepted")
	}
}

// TestKEVFlagsAFinding: the real log4j GHSA record and the real KEV
// catalog flag a log4j-core finding (CVE-2021-44228 is listed), with the
// date CISA added it; its risk is highest where it runs in prod.
func TestKEVFlagsAFinding(t *testing.T) {
	ctx := context.Background()
	st, _ := alpineStore(t)
	importAll(t, st, "ghsa", testenv.SharedData(t, "osv", "ghsa", "GHSA-jfh8-c2jp-5v3q.json"),
		testenv.SharedData(t, "kev", "known_exploited_vulnerabilities.json"))
	m := vuln.NewMatcher(st)
	// Hand-made: a log4j-core 2.14.1 package, as a Java image carries it.
	pkg := sbomPackage("maven", "Maven", "org.apache.logging.log4j", "log4j-core", "2.14.1")
	fs, _, err := vuln.FindingsFor(ctx, m, pkg)
	if err != nil {
		t.Fatal(err)
	}
	var kev *vuln.Finding
	for i := range fs {
		if fs[i].ID == "CVE-2021-44228" {
			kev = &fs[i]
		}
	}
	if kev == nil || kev.KEV.IsZero() {
		t.Fatalf("CVE-2021-44228 not flagged: %+v", fs)
	}
	added := kevDateAdded(t, "CVE-2021-44228")
	if !kev.KEV.Equal(added) {
		t.Fatalf("KEV date %s, the catalog says %s", kev.KEV, added)
	}
	order := []string{"dev", "staging", "prod"}
	inProd, inDev, nowhere := *kev, *kev, *kev
	vuln.SetRisk(&inProd, vuln.ExposureOf([]string{"dev", "prod"}, order))
	vuln.SetRisk(&inDev, vuln.ExposureOf([]string{"dev"}, order))
	vuln.SetRisk(&nowhere, vuln.ExposureOf(nil, order))
	if !(inProd.Risk > inDev.Risk && inDev.Risk > nowhere.Risk) || inProd.Exposure != "prod" {
		t.Fatalf("risk prod %.1f dev %.1f nowhere %.1f", inProd.Risk, inDev.Risk, nowhere.Risk)
	}
}

func kevDateAdded(t *testing.T, cve string) time.Time {
	t.Helper()
	b, err := os.ReadFile(testenv.SharedData(t, "kev", "known_exploited_vulnerabilities.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vulnerabilities []struct {
			CVE   string `json:"cveID"`
			Added string `json:"dateAdded"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, v := range doc.Vulnerabilities {
		if v.CVE == cve {
			d, _ := time.Parse(time.DateOnly, v.Added)
			return d
		}
	}
	t.Fatalf("%s not in the catalog", cve)
	return time.Time{}
}

// sbomPackage is a hand-made package for matching.
func sbomPackage(typ, ecosystem, namespace, name, version string) []sbom.Package {
	return []sbom.Package{{Type: typ, Ecosystem: ecosystem, Namespace: namespace, Name: name, Version: version,
		PURL: "pkg:" + typ + "/" + namespace + "/" + name + "@" + version}}
}
