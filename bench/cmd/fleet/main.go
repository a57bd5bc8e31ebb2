// Command fleet fills a socle store with a synthetic fleet built from
// real package data and measures what issue 3 asks: the latency of the
// "affected by CVE" query, the ingest rate, and the API's p99 under load
// (with wrk). bench/serve.sh runs it.
//
// The fleet: every image holds the 88 packages of the real Debian
// bookworm minbase (one of 20 base variants, some with the real
// bookworm-security fixes applied), plus 112 PyPI packages drawn from the
// real PyPA advisory database, at versions its records list. Advisories:
// the real PyPA records, and OSV records DERIVED from real Debian
// changelogs (labelled as such).
package main

import (
	"archive/tar"
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"gopkg.in/yaml.v3"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/postgres"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

func main() {
	var (
		dataDir    = flag.String("data", "", "shared data directory")
		db         = flag.String("db", "", "postgres:// URL, or empty for a SQLite file in -work")
		work       = flag.String("work", os.TempDir(), "working directory")
		images     = flag.Int("images", 10000, "images to ingest")
		pkgs       = flag.Int("packages", 200, "packages per image")
		bases      = flag.Int("bases", 20, "base image variants")
		wrk        = flag.String("wrk", "wrk", "wrk binary for the API load")
		duration   = flag.Duration("load", 10*time.Second, "API load duration per endpoint")
		profile    = flag.String("cpuprofile", "", "write a CPU profile of the ingest (with -replicas, one a process: FILE.0, FILE.1, ...)")
		conns      = flag.Int("conns", 8, "wrk connections")
		reuse      = flag.Bool("reuse", false, "reuse the SQLite store of an earlier run: skip the import and the ingest")
		reeval     = flag.String("reeval", "", "instead of the query and API load: change these many advisories in turn (10,100,1000) and time the re-evaluation")
		reevalSkip = flag.Int("reeval-skip", 0, "leave out this many changed advisories first (those an earlier -reuse run withdrew)")
		workers    = flag.Int("workers", 8, "images indexed at once, as a registry's concurrent pushes arrive")
		scale      = flag.Bool("scale", false, "the fleet-scale report (bench/fleet.sh): ingest, re-evaluation, socle serve's answers, size, memory, cold start")
		socleBin   = flag.String("socle", "socle", "socle binary for -scale's socle serve")
		replicas   = flag.Int("replicas", 1, "with -scale and PostgreSQL: processes ingesting at once, and socle serve sharing the database")
		queries    = flag.Int("queries", 1000, "with -scale: advisories and images asked")
		jsonOut    = flag.String("json", "", "with -scale: also write the figures here")
		commit     = flag.String("commit", "", "with -scale: the commit measured, for the report")
		part       = flag.String("ingest-part", "", "k/n: ingest the images i with i%n == k and print their latencies (a -replicas child)")
		compare    = flag.String("compare", "", "NEW.json,OLD.json: print the ratios of two -scale runs")
	)
	flag.Parse()
	ctx := context.Background()
	opts := scaleOptions{data: *dataDir, db: *db, work: *work, socle: *socleBin, commit: *commit, jsonOut: *jsonOut, profile: *profile,
		images: *images, pkgs: *pkgs, bases: *bases, replicas: *replicas, workers: *workers, queries: *queries}
	switch {
	case *compare != "":
		paths := strings.Split(*compare, ",")
		if len(paths) != 2 {
			log.Fatal("-compare NEW.json,OLD.json")
		}
		runCompare(paths[0], paths[1])
		return
	case *part != "":
		runIngestPart(ctx, opts, *part)
		return
	case *scale:
		runScale(ctx, opts)
		return
	}
	st, err := openStore(ctx, *db, *work, *reuse)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	pairs, err := testenv.DebianChangelogPairs(filepath.Join(*dataDir, "debian", "derived", "bookworm-minbase-changelog-cves.tsv"))
	if err != nil {
		log.Fatal(err)
	}
	var ingest time.Duration
	var digests []string
	if *reuse {
		imgs, err := st.Images(ctx, store.ImageFilter{Limit: *images})
		if err != nil {
			log.Fatal(err)
		}
		for _, im := range imgs {
			digests = append(digests, im.Digest)
		}
	} else {
		ingest, digests = fill(ctx, st, *dataDir, pairs, *images, *pkgs, *bases, *workers, *profile)
	}
	if *reeval != "" {
		var sizes []int
		for _, f := range strings.Split(*reeval, ",") {
			var n int
			if _, err := fmt.Sscan(f, &n); err != nil || n <= 0 {
				log.Fatalf("-reeval %q: want sizes like 10,100,1000", *reeval)
			}
			sizes = append(sizes, n)
		}
		reevaluate(ctx, st, *dataDir, *work, sizes, *reevalSkip, *images, *bases)
		return
	}
	advisories, _ := st.AdvisoryCount(ctx)
	rate := float64(*images) / ingest.Seconds()
	_ = rate
	qprof := ""
	if *reuse {
		qprof = *profile
	}
	queryAndLoad(ctx, st, pairs, digests, ingest, *images, *pkgs, *bases, advisories, *wrk, *duration, *conns, qprof)
}

// startProfile starts a CPU profile written to path (none if path is
// empty) and returns what stops it.
func startProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func fill(ctx context.Context, st store.Store, dataDir string, pairs []testenv.DebianChangelogPair, images, pkgs, bases, workers int, profile string) (time.Duration, []string) {
	importAdvisories(ctx, st, dataDir, pairs)
	stop := startProfile(profile)
	start := time.Now()
	ingestPart(ctx, st, dataDir, pairs, images, pkgs, bases, workers, 0, 1)
	ingest := time.Since(start)
	stop()
	var digests []string
	for i := range images {
		digests = append(digests, imageDigest(i))
	}
	return ingest, digests
}

func queryAndLoad(ctx context.Context, st store.Store, pairs []testenv.DebianChangelogPair, digests []string, ingest time.Duration,
	images, pkgs, bases, advisories int, wrk string, duration time.Duration, conns int, profile string) {
	rate := float64(images) / ingest.Seconds()

	// The query: every CVE the derived Debian data and a sample of PyPA
	// records make affect the fleet.
	cves := affectingCVEs(ctx, st, pairs)
	var lat []time.Duration
	found := 0
	defer startProfile(profile)()
	for round := 0; round < 5; round++ {
		for _, c := range cves {
			q0 := time.Now()
			rows, err := st.AffectedImages(ctx, store.AffectedQuery{Advisory: c})
			if err != nil {
				log.Fatal(err)
			}
			lat = append(lat, time.Since(q0))
			if round == 0 {
				found += rows.Total
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })

	// The API under load.
	secret, _, err := auth.Create(ctx, st, auth.Spec{Name: "bench", Role: store.RoleViewer}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	srv, err := server.NewAPI(server.Deps{Store: st, Auth: auth.NewAuthenticator(st)})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, srv.Handler())
	base := "http://" + ln.Addr().String()
	loads := map[string]string{
		"affected by CVE":   base + "/api/v1/affected?advisory=" + cves[len(cves)/2],
		"image findings":    base + "/api/v1/images/" + digests[len(digests)/2] + "/findings",
		"healthz (no auth)": base + "/healthz",
	}
	var loadNames []string
	for k := range loads {
		loadNames = append(loadNames, k)
	}
	sort.Strings(loadNames)
	results := map[string]string{}
	for _, name := range loadNames {
		results[name] = runWrk(wrk, loads[name], secret, duration, conns)
	}

	backend := st.Backend()
	fmt.Printf("# socle serve benchmark, %s\n\n", time.Now().UTC().Format("2006-01-02T15:04Z"))
	fmt.Printf("Store: %s. Fleet: %d images x %d packages (%d bases); %d advisories.\n\n", backend, images, pkgs, bases, advisories)
	fmt.Printf("| measure | value | target |\n|---|---|---|\n")
	if ingest > 0 {
		fmt.Printf("| ingest rate | %.0f images/s (%s for %d) | - |\n", rate, ingest.Round(time.Millisecond), images)
	}
	fmt.Printf("| \"affected by CVE\" query p50 | %s | < 50 ms |\n", pct(lat, 50))
	fmt.Printf("| \"affected by CVE\" query p99 | %s | < 50 ms |\n", pct(lat, 99))
	fmt.Printf("| \"affected by CVE\" query max | %s | - |\n", lat[len(lat)-1])
	for _, name := range loadNames {
		fmt.Printf("| API %s p99 (wrk, %d connections) | %s | < 20 ms |\n", name, conns, results[name])
	}
	fmt.Printf("\n%d CVEs queried (%d affected image-package rows in all).\n", len(cves), found)
}

func openStore(ctx context.Context, db, work string, reuse bool) (store.Store, error) {
	if strings.HasPrefix(db, "postgres") {
		return postgres.Open(ctx, db)
	}
	p := filepath.Join(work, "fleet-bench.db")
	if !reuse {
		os.Remove(p)
		os.Remove(p + "-wal")
		os.Remove(p + "-shm")
	}
	return sqlite.Open(ctx, p)
}

type debPkg struct{ name, version, source, sourceVersion, patched string }

// debianPackages reads the real minbase status; for packages the derived
// table has a bookworm-security fix for, it notes the patched version.
func debianPackages(path string, pairs []testenv.DebianChangelogPair) []debPkg {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	fixes := map[string]string{}
	for _, p := range pairs {
		if p.Status == "affected_fix_available" {
			fixes[p.Source] = p.Fixed
		}
	}
	var out []debPkg
	var cur debPkg
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	srcRe := regexp.MustCompile(`^(\S+)(?: \((.*)\))?$`)
	flush := func() {
		if cur.name != "" {
			if cur.source == "" {
				cur.source = cur.name
			}
			if cur.sourceVersion == "" {
				cur.sourceVersion = cur.version
			}
			cur.patched = fixes[cur.source]
			out = append(out, cur)
		}
		cur = debPkg{}
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			flush()
		case strings.HasPrefix(line, "Package: "):
			cur.name = strings.TrimPrefix(line, "Package: ")
		case strings.HasPrefix(line, "Version: "):
			cur.version = strings.TrimPrefix(line, "Version: ")
		case strings.HasPrefix(line, "Source: "):
			m := srcRe.FindStringSubmatch(strings.TrimPrefix(line, "Source: "))
			if m != nil {
				cur.source, cur.sourceVersion = m[1], m[2]
			}
		}
	}
	flush()
	return out
}

// eachPyPA calls fn with each YAML record of the PyPA advisory tarball.
func eachPyPA(path string, fn func(record []byte)) {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		log.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		if !strings.HasSuffix(h.Name, ".yaml") {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			log.Fatal(err)
		}
		fn(b)
	}
}

type pyPkg struct {
	name, version string
	// nameIdx numbers the pool's names (the pool is in name order).
	nameIdx  int
	affected bool
	// pkg is the package an image holds of it, but for its layer.
	pkg *sbom.Package
}

// pypiPool lists real (name, version) pairs from the PyPA records:
// versions their lists name as affected, and for each package the newest
// version a range names as fixed.
func pypiPool(path string) []pyPkg {
	seen := map[pyPkg]bool{}
	latestFix := map[string]string{}
	var out []pyPkg
	eachPyPA(path, func(b []byte) {
		var rec struct {
			Affected []struct {
				Package  struct{ Name string } `yaml:"package"`
				Versions []string              `yaml:"versions"`
				Ranges   []struct {
					Events []map[string]string `yaml:"events"`
				} `yaml:"ranges"`
			} `yaml:"affected"`
		}
		if yaml.Unmarshal(b, &rec) != nil {
			return
		}
		for _, a := range rec.Affected {
			vs := a.Versions
			if len(vs) > 3 {
				vs = vs[len(vs)-3:]
			}
			for _, v := range vs {
				p := pyPkg{name: a.Package.Name, version: v, affected: true}
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					if f := e["fixed"]; f != "" {
						if cur, ok := latestFix[a.Package.Name]; !ok || vuln.LessVersion("PyPI", cur, f) {
							latestFix[a.Package.Name] = f
						}
					}
				}
			}
		}
	})
	// The newest fix of each package is the version a maintained image
	// would run.
	for name, v := range latestFix {
		out = append(out, pyPkg{name: name, version: v})
	}
	// In the analyser's order of their packages (type, namespace, name,
	// version, path: here name and version), which synthImage relies on.
	sort.Slice(out, func(i, j int) bool {
		if out[i].name != out[j].name {
			return out[i].name < out[j].name
		}
		return out[i].version < out[j].version
	})
	for i := range out {
		p := &out[i]
		if i > 0 {
			p.nameIdx = out[i-1].nameIdx
			if p.name != out[i-1].name {
				p.nameIdx++
			}
		}
		p.pkg = &sbom.Package{
			Name: p.name, Version: p.version, Type: "pypi", Ecosystem: "PyPI",
			PURL: "pkg:pypi/" + p.name + "@" + p.version, Path: "usr/lib/python3/dist-packages/" + p.name + ".dist-info/METADATA",
			LayerIndex: 1,
		}
	}
	return out
}

// imageDigest is the digest of the fleet's image i.
func imageDigest(i int) string { return fmt.Sprintf("sha256:%064x", i+1) }

// synthImage makes image i: its base's Debian packages (at their patched
// versions on odd bases) in a layer shared by the base's images, and
// nApp PyPI packages picked at random in a layer of its own. The parts
// are made and sorted once (the base's packages, the pool), so that the
// ingesting processes' CPU is mostly socle's.
func synthImage(i, base int, debs []debPkg, pypi []pyPkg, nApp int, rng *rand.Rand) *sbom.Inventory {
	digest := imageDigest(i)
	baseLayer, basePkgs := baseLayerOf(base, debs)
	appLayer := fmt.Sprintf("sha256:%064x", 1<<41+i)
	inv := &sbom.Inventory{
		Digest: digest, MediaType: "application/vnd.oci.image.manifest.v1+json", Platform: "linux/amd64",
		Created: time.Now().Add(-time.Duration(i) * time.Minute), OS: sbom.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		Layers: []sbom.LayerInfo{{Index: 0, Digest: baseLayer}, {Index: 1, Digest: appLayer}},
	}
	// One version a name: the names picked, by their index (a map of the
	// names was a third of the generator's time).
	picked := make([]bool, pypi[len(pypi)-1].nameIdx+1)
	app := make([]int, 0, nApp)
	for len(app) < nApp {
		k := rng.IntN(len(pypi))
		p := &pypi[k]
		// About one package in five at a version its advisory lists as
		// affected, the rest at a version a fix names.
		if picked[p.nameIdx] || p.affected != (rng.IntN(5) == 0) {
			continue
		}
		picked[p.nameIdx] = true
		app = append(app, k)
	}
	// In the order socle's analyser lists an image's packages: the pool
	// is in that order and the picks' names differ, so the picks sorted
	// by index are; merged with the base's, the base's first on ties (a
	// stable sort of the two lists one after the other).
	sort.Ints(app)
	inv.Packages = make([]sbom.Package, 0, len(basePkgs)+len(app))
	j := 0
	add := func(k int) {
		inv.Packages = append(inv.Packages, *pypi[k].pkg)
		inv.Packages[len(inv.Packages)-1].Layer = appLayer
	}
	for b := range basePkgs {
		for ; j < len(app) && sbom.LessPackage(pypi[app[j]].pkg, &basePkgs[b]); j++ {
			add(app[j])
		}
		inv.Packages = append(inv.Packages, basePkgs[b])
	}
	for _, k := range app[j:] {
		add(k)
	}
	return inv
}

// baseParts is a base's layer digest and its packages in the analyser's
// order.
type baseParts struct {
	layer string
	pkgs  []sbom.Package
}

var baseCache struct {
	sync.Mutex
	parts map[int]baseParts
}

// baseLayerOf returns base's layer digest and packages, made once a base:
// the Debian packages, at their patched versions on odd bases. (sort, not
// internal/order: the bench is also built against earlier commits, which
// lack it.)
func baseLayerOf(base int, debs []debPkg) (string, []sbom.Package) {
	baseCache.Lock()
	defer baseCache.Unlock()
	if p, ok := baseCache.parts[base]; ok {
		return p.layer, p.pkgs
	}
	layer := fmt.Sprintf("sha256:%064x", 1<<40+base)
	patched := base%2 == 1
	var pkgs []sbom.Package
	for _, d := range debs {
		v, sv := d.version, d.sourceVersion
		if patched && d.patched != "" {
			v, sv = d.patched, d.patched
		}
		pkgs = append(pkgs, sbom.Package{
			Name: d.name, Version: v, Type: "deb", SourceName: d.source, SourceVersion: sv, Ecosystem: "Debian:12",
			PURL: "pkg:deb/debian/" + d.name + "@" + v, Path: "var/lib/dpkg/status", Layer: layer, LayerIndex: 0,
		})
	}
	sort.SliceStable(pkgs, func(a, b int) bool { return sbom.LessPackage(&pkgs[a], &pkgs[b]) })
	if baseCache.parts == nil {
		baseCache.parts = map[int]baseParts{}
	}
	baseCache.parts[base] = baseParts{layer, pkgs}
	return layer, pkgs
}

// affectingCVEs returns CVEs that affect stored images: the derived
// Debian ones and up to 50 PyPA ones with findings.
func affectingCVEs(ctx context.Context, st store.Store, pairs []testenv.DebianChangelogPair) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range pairs {
		if p.Status == "affected_fix_available" && !seen[p.CVE] {
			seen[p.CVE] = true
			out = append(out, p.CVE)
		}
	}
	imgs, _ := st.Images(ctx, store.ImageFilter{Limit: 20})
	for _, im := range imgs {
		fs, _ := st.ImageFindings(ctx, im.Digest)
		for _, f := range fs {
			for _, a := range f.Aliases {
				if strings.HasPrefix(a, "CVE-") && !seen[a] && len(out) < 80 {
					seen[a] = true
					out = append(out, a)
				}
			}
		}
	}
	return out
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (len(d)*p + 99) / 100
	if i >= len(d) {
		i = len(d) - 1
	}
	return d[i]
}

var wrkP99 = regexp.MustCompile(`(?m)^\s+99%\s+(\S+)`)

// runWrk loads url with wrk for d and returns its p99 latency.
func runWrk(wrk, url, token string, d time.Duration, conns int) string {
	out, err := exec.Command(wrk, "-t2", fmt.Sprintf("-c%d", conns), "-d"+d.String(), "--latency", "-H", "Authorization: Bearer "+token, url).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("wrk failed: %v", err)
	}
	m := wrkP99.FindSubmatch(out)
	if m == nil {
		return "no p99 in wrk output"
	}
	rps := regexp.MustCompile(`Requests/sec:\s+(\S+)`).FindSubmatch(out)
	s := string(m[1])
	if rps != nil {
		s += fmt.Sprintf(" (%s req/s)", rps[1])
	}
	return s
}
