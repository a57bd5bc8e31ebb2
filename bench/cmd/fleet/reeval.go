package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/vuln"
)

// changedAdvisories returns n real PyPA records, changed as a feed
// changes them: withdrawn, with a new modified time. Records whose
// packages the fleet holds come first, so that the change reaches images.
func changedAdvisories(path string, n int, held map[string]bool) [][]byte {
	var hit, other [][]byte
	now := time.Now().UTC().Format(time.RFC3339)
	eachPyPA(path, func(b []byte) {
		var rec map[string]any
		if yaml.Unmarshal(b, &rec) != nil || rec["id"] == nil {
			return
		}
		rec["modified"], rec["withdrawn"] = now, now
		out, err := json.Marshal(rec)
		if err != nil {
			return
		}
		holds := false
		if aff, ok := rec["affected"].([]any); ok {
			for _, a := range aff {
				if m, ok := a.(map[string]any); ok {
					if p, ok := m["package"].(map[string]any); ok && held[fmt.Sprint(p["name"])] {
						holds = true
					}
				}
			}
		}
		if holds {
			hit = append(hit, out)
		} else {
			other = append(other, out)
		}
	})
	all := append(hit, other...)
	if len(all) > n {
		all = all[:n]
	}
	return all
}

// importChanged imports changed records as the PyPA feed's sync would.
func importChanged(ctx context.Context, st store.Store, recs [][]byte) vuln.ImportStats {
	im := vuln.NewImporter(st, "pypa")
	for i, r := range recs {
		if err := im.ImportReader(ctx, fmt.Sprintf("changed-%d.json", i), strings.NewReader(string(r)), time.Now()); err != nil {
			log.Fatal(err)
		}
	}
	stats, err := im.Finish(ctx)
	if err != nil {
		log.Fatal(err)
	}
	return stats
}

// reevaluate applies successive, disjoint sets of changed advisories
// (sizes) and times, for each, socle's incremental re-evaluation and a
// full re-match of the same change on a copy of the store (every stored
// package version, no layer read).
func reevaluate(ctx context.Context, st store.Store, dataDir, work string, sizes []int, skip, images, bases int) {
	pool := pypiPool(dataDir + "/osv/pypi/pypa-advisory-database-vulns.tar.gz")
	held := map[string]bool{}
	total := skip
	for _, p := range pool {
		held[p.name] = true
	}
	for _, n := range sizes {
		total += n
	}
	recs := changedAdvisories(dataDir+"/osv/pypi/pypa-advisory-database-vulns.tar.gz", total, held)[skip:]
	an, err := sbom.NewAnalyzer()
	if err != nil {
		log.Fatal(err)
	}
	sc := scan.New(st, an)
	fmt.Printf("# socle re-evaluation benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02T15:04Z"))
	fmt.Printf("Store: %d images × 200 packages sharing %d bases. Each change: real PyPA records withdrawn (modified time bumped), as a feed sync delivers them; the changes are disjoint and applied one after the other.\n\n", images, bases)
	fmt.Println("| advisories changed | import | socle incremental re-evaluation | package names / versions re-matched | findings closed / opened | images touched | full re-match of the same change | ratio |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, n := range sizes {
		if len(recs) < n {
			log.Printf("only %d records left for a change of %d", len(recs), n)
			n = len(recs)
		}
		batch := recs[:n]
		recs = recs[n:]
		t0 := time.Now()
		stats := importChanged(ctx, st, batch)
		importTime := time.Since(t0)
		fullTime, full := fullRematch(ctx, st, an, work)
		t1 := time.Now()
		re, err := sc.Reevaluate(ctx, st, stats.Packages)
		if err != nil {
			log.Fatal(err)
		}
		reevalTime := time.Since(t1)
		ratio := "-"
		if fullTime > 0 {
			ratio = fmt.Sprintf("%.2f", reevalTime.Seconds()/fullTime.Seconds())
		}
		fmt.Printf("| %d | %s | %s | %d / %d | %d / %d | %d | %s (%d / %d) | %s |\n", n, importTime.Round(time.Millisecond),
			reevalTime.Round(time.Millisecond), re.Names, re.Versions, re.Changes.Closed, re.Changes.Opened, distinct(re.Changes.Images),
			fullTime.Round(time.Millisecond), full.Names, full.Versions, ratio)
	}
	fmt.Println()
	fmt.Println("The full re-match is socle's own index without the change list: it re-matches every stored package version. A rescan")
	fmt.Println("that reads layers again (syft + grype, or socle without its layer cache) must also read every image: bench/scan.sh")
	fmt.Println("measures that per image (socle warm 0.14 s, syft 3.8 s on the Debian minbase), that is 23 min and 10.5 h for 10,000")
	fmt.Println("images before any matching. grype is not run here: it needs its database from the network.")
}

// fullRematch re-matches every stored package version on a copy of a
// SQLite store (zero and nothing for other stores).
func fullRematch(ctx context.Context, st store.Store, an *sbom.Analyzer, work string) (time.Duration, scan.ReevalStats) {
	db, ok := st.(interface{ SQL() *sql.DB })
	if !ok || st.Backend() != "sqlite" {
		return 0, scan.ReevalStats{}
	}
	cp := filepath.Join(work, "fleet-bench-copy.db")
	os.Remove(cp)
	if _, err := db.SQL().ExecContext(ctx, `VACUUM INTO ?`, cp); err != nil {
		log.Fatal(err)
	}
	defer os.Remove(cp)
	other, err := sqlite.Open(ctx, cp)
	if err != nil {
		log.Fatal(err)
	}
	defer other.Close()
	names, err := allPackageNames(ctx, other)
	if err != nil {
		log.Fatal(err)
	}
	t := time.Now()
	full, err := scan.New(other, an).Reevaluate(ctx, other, names)
	if err != nil {
		log.Fatal(err)
	}
	return time.Since(t), full
}

func distinct(s []string) int {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return len(m)
}

func allPackageNames(ctx context.Context, st store.Store) ([]store.PackageName, error) {
	db, ok := st.(interface {
		PackageNames(ctx context.Context) ([]store.PackageName, error)
	})
	if ok {
		return db.PackageNames(ctx)
	}
	return nil, fmt.Errorf("the store cannot list package names")
}
