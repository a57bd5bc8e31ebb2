package vuln_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

// debPkg is a hand-made Debian package of a release, for matching.
func debPkg(release, source, version string) sbom.Package {
	return sbom.Package{Type: "deb", Ecosystem: "Debian:" + release, Name: source, SourceName: source, Version: version,
		PURL: "pkg:deb/debian/" + source + "@" + version}
}

func findingsOf(t *testing.T, m *vuln.Matcher, p sbom.Package) map[string]vuln.Finding {
	t.Helper()
	fs, _, err := vuln.FindingsFor(ctx, m, []sbom.Package{p})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]vuln.Finding{}
	for _, f := range fs {
		out[f.ID] = f
	}
	return out
}

// TestDebianTrackerStates: the real security-tracker records (trivy's
// vuln-list-debian sample) keep the tracker's states per release, so a
// finding says whether a fix may come. cloud-init's CVE-2020-8631 is
// <no-dsa> in bullseye (no fix yet) and fixed in 19.4-2 elsewhere; dacs's
// CVE-2021-29629 is <ignored> in buster (won't be fixed), <not-affected>
// in stretch and <unfixed> (unimportant) in later releases; curl's
// CVE-2016-4606 is <not-affected> everywhere.
func TestDebianTrackerStates(t *testing.T) {
	s := newStore(t)
	stats := importPath(t, s, "debian-tracker", testenv.SharedData(t, "debian", "trivy-db-vuln-list-debian-sample", "vuln-list-debian", "tracker"))
	if stats.Records == 0 || stats.Skipped != 0 {
		t.Fatalf("import: %+v", stats)
	}
	m := vuln.NewMatcher(s)
	cases := []struct {
		pkg      sbom.Package
		id       string
		affected bool
		state    string
		fixed    string
	}{
		{debPkg("11", "cloud-init", "19.3-1"), "CVE-2020-8631", true, vuln.FixStateNoFixYet, ""},
		{debPkg("12", "cloud-init", "19.3-1"), "CVE-2020-8631", true, vuln.FixStateFixed, "19.4-2"},
		{debPkg("12", "cloud-init", "19.4-2"), "CVE-2020-8631", false, "", ""},
		{debPkg("10", "dacs", "1.4.40-1"), "CVE-2021-29629", true, vuln.FixStateWontFix, ""},
		{debPkg("9", "dacs", "1.4.38a-2"), "CVE-2021-29629", false, "", ""},
		{debPkg("11", "dacs", "1.4.40-1"), "CVE-2021-29629", true, vuln.FixStateNoFixYet, ""},
		{debPkg("11", "curl", "7.74.0-1.3"), "CVE-2016-4606", false, "", ""},
	}
	for _, c := range cases {
		f, ok := findingsOf(t, m, c.pkg)[c.id]
		if ok != c.affected {
			t.Errorf("%s %s %s: affected %v, want %v", c.pkg.Ecosystem, c.pkg.Name, c.pkg.Version, ok, c.affected)
			continue
		}
		if ok && (f.FixState != c.state || f.FixedVersion != c.fixed) {
			t.Errorf("%s %s: state %q fixed %q, want %q %q", c.pkg.Ecosystem, c.pkg.Name, f.FixState, f.FixedVersion, c.state, c.fixed)
		}
	}
	// The tracker's "unimportant" becomes the vendor's LOW.
	if f := findingsOf(t, m, debPkg("11", "dacs", "1.4.40-1"))["CVE-2021-29629"]; f.Severity != vuln.SeverityLow || f.SeveritySource != vuln.SourceVendor {
		t.Errorf("dacs severity %s from %q", f.Severity, f.SeveritySource)
	}
}

// TestOSVDebianRecordForms: the real osv.dev records of every form
// parse and match: a DSA with aliases (old shape), a DTSA with related
// CVEs and a purl, a DLA whose file name and id disagree, a DLA with an
// empty affected list, and an NVD-converted record that covers Alpine
// and Debian releases at once. Expected fixed versions are read from
// the records.
func TestOSVDebianRecordForms(t *testing.T) {
	s := newStore(t)
	stats := importPath(t, s, "osv-debian", testenv.SharedData(t, "osv-debian"))
	if stats.Records != 7 || stats.Skipped != 0 {
		t.Fatalf("import: %+v", stats)
	}
	m := vuln.NewMatcher(s)
	fixedIn := func(file, ecosystem string) string {
		b, err := os.ReadFile(testenv.SharedData(t, "osv-debian", file))
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Affected []struct {
				Package struct{ Ecosystem string } `json:"package"`
				Ranges  []struct {
					Events []map[string]string `json:"events"`
				} `json:"ranges"`
			} `json:"affected"`
		}
		json.Unmarshal(b, &rec)
		for _, a := range rec.Affected {
			if a.Package.Ecosystem == ecosystem {
				for _, r := range a.Ranges {
					for _, e := range r.Events {
						if e["fixed"] != "" {
							return e["fixed"]
						}
					}
				}
			}
		}
		return ""
	}
	// DSA-3029-1 names CVE-2014-3616 in "aliases": one finding, the CVE.
	nginx := findingsOf(t, m, debPkg("7", "nginx", "1.2.1-2.2+wheezy2"))
	if f, ok := nginx["CVE-2014-3616"]; !ok || f.FixedVersion != fixedIn("debian/DSA-3029-1.json", "Debian:7") {
		t.Errorf("nginx: %+v", nginx)
	}
	// DTSA-1-1: kismet in Debian 4.0 (etch).
	kismet := findingsOf(t, m, sbom.Package{Type: "deb", Ecosystem: "Debian:4.0", Name: "kismet", Version: "2005.04.R1-1"})
	if f, ok := kismet["DTSA-1-1"]; !ok || f.FixedVersion != fixedIn("debian/DTSA-1-1.json", "Debian:4.0") {
		t.Errorf("kismet: %+v", kismet)
	}
	// CVE-2024-10524: Alpine has a fix, Debian 12 has none yet.
	wgetAlpine := findingsOf(t, m, sbom.Package{Type: "apk", Ecosystem: "Alpine:v3.21", Name: "wget", Version: "1.24.5-r0"})
	if f, ok := wgetAlpine["CVE-2024-10524"]; !ok || f.FixedVersion != fixedIn("alpine/CVE-2024-10524.json", "Alpine:v3.21") {
		t.Errorf("wget on Alpine: %+v", wgetAlpine)
	}
	wgetDebian := findingsOf(t, m, debPkg("12", "wget", "1.21.3-1+b2"))
	if f, ok := wgetDebian["CVE-2024-10524"]; !ok || f.FixedVersion != "" || f.FixState != vuln.FixStateNoFixYet {
		t.Errorf("wget on Debian 12: %+v", wgetDebian)
	}
}
