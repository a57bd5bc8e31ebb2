package scan_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

// TestAgreesWithOSVScanner scans every image of the shared data with
// socle and with the real osv-scanner, offline, on the same OSV records:
// the Alpine 3.10 secdb converted as socle imports it, written as
// osv.dev's Alpine/all.zip in osv-scanner's local database directory.
// Both report the same (source package, record) pairs. osv-scanner names
// Alpine packages by their origin (openssl, not libssl1.1), socle by the
// binary package with the source it matched on; the comparison is on the
// source. hello-world has no package: osv-scanner finds no package source
// (exit status 128), socle no finding.
func TestAgreesWithOSVScanner(t *testing.T) {
	bin := testenv.OSVScanner(t)
	ctx := context.Background()
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(testenv.SharedData(t, "alpine", "vuln-list-alpine-3.10"), "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("secdb files: %v", err)
	}
	var docs []*vuln.SecDB
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := vuln.ParseSecDB(b, true)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	db := filepath.Join(dir, "db")
	if err := vuln.WriteEcosystemZips(filepath.Join(db, "osv-scalibr"), vuln.SecDBToOSV(docs, time.Unix(0, 0))); err != nil {
		t.Fatal(err)
	}
	_, sc := alpineStore(t)
	alpine := filepath.Join(dir, "alpine-310.tar")
	gunzipTo(t, testenv.SharedData(t, "images", "alpine-310.tar.gz"), alpine)
	for _, img := range []string{alpine, testenv.SharedData(t, "images", "hello-world-v25.tar")} {
		theirs := osvScannerPairs(t, bin, db, img)
		ref, _ := oci.ParseImageRef("docker-archive:" + img)
		src, err := source.Open(ctx, ref, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := sc.Scan(ctx, src, scan.Options{})
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		ours := map[string]bool{}
		for _, f := range res.Findings {
			for _, a := range f.Advisories {
				ours[f.Key.Name+" "+a] = true
			}
		}
		if a, b := sortedKeys(ours), sortedKeys(theirs); strings.Join(a, "\n") != strings.Join(b, "\n") {
			t.Errorf("%s: socle and osv-scanner disagree\nsocle:\n%s\nosv-scanner:\n%s", filepath.Base(img), strings.Join(a, "\n"), strings.Join(b, "\n"))
		}
		t.Logf("%s: %d (package, record) pairs agree", filepath.Base(img), len(ours))
	}
}

// osvScannerPairs runs osv-scanner offline on a docker-save tarball and
// returns its (package, record ID) pairs.
func osvScannerPairs(t *testing.T, bin, db, tarball string) map[string]bool {
	t.Helper()
	cmd := exec.Command(bin, "scan", "image", "--archive", "--offline", "--offline-vulnerabilities", "--format", "json", tarball)
	cmd.Env = append(os.Environ(), "OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY="+db, "HOME="+t.TempDir())
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode() == 1: // vulnerabilities found
	case errors.As(err, &exit) && exit.ExitCode() == 128: // no package sources found
		return map[string]bool{}
	default:
		t.Fatalf("osv-scanner: %v\n%s", err, out)
	}
	var doc struct {
		Results []struct {
			Packages []struct {
				Package struct {
					Name string `json:"name"`
				} `json:"package"`
				Vulnerabilities []struct {
					ID string `json:"id"`
				} `json:"vulnerabilities"`
			} `json:"packages"`
		} `json:"results"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("osv-scanner's JSON: %v", err)
	}
	pairs := map[string]bool{}
	for _, r := range doc.Results {
		for _, p := range r.Packages {
			for _, v := range p.Vulnerabilities {
				pairs[p.Package.Name+" "+v.ID] = true
			}
		}
	}
	return pairs
}

func gunzipTo(t *testing.T, src, dst string) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
