package main

// The fleet-scale report (bench/fleet.sh): ingest with the layers
// already analysed, re-evaluation after 10, 100 and 1,000 changed
// advisories, the "affected by CVE" and image findings answers of socle
// serve with its answer cache cold and then warm, the store's size, and
// socle serve's cold start and peak memory on that store. With -replicas
// above 1 (PostgreSQL only), that many processes ingest at once and that
// many socle serve share the database.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
	"github.com/socle-dev/socle/internal/vuln"
)

// dist is a latency distribution in milliseconds.
type dist struct {
	N                              int
	Mean, P50, P90, P99, P999, Max float64
}

func distOf(d []time.Duration) dist {
	if len(d) == 0 {
		return dist{}
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, x := range s {
		sum += x
	}
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	return dist{N: len(s), Mean: ms(sum / time.Duration(len(s))), P50: ms(pct(s, 50)), P90: ms(pct(s, 90)),
		P99: ms(pct(s, 99)), P999: ms(s[min(len(s)-1, len(s)*999/1000)]), Max: ms(s[len(s)-1])}
}

func (d dist) String() string {
	return fmt.Sprintf("n %d: mean %.2f, p50 %.2f, p90 %.2f, p99 %.2f, p99.9 %.2f, max %.2f ms", d.N, d.Mean, d.P50, d.P90, d.P99, d.P999, d.Max)
}

type reevalRow struct {
	Changed, Pairs, Versions int
	Seconds                  float64
	Closed, Opened, Images   int
}

type serveRow struct {
	ColdStartSeconds float64
	PeakRSSMiB       float64
}

// scaleResult is one run's figures; fleet.sh compares two of them.
type scaleResult struct {
	Commit, Backend                string
	Images, Replicas, Workers      int
	Advisories                     int
	IngestSeconds, IngestPerSecond float64
	IngestLatency                  dist
	// The same without each process's first 2% of images (in the order
	// they finished): what a store already running gives, without the
	// first images' new package versions and empty caches.
	IngestLatencySteady dist
	// CPU seconds spent during the ingest by the ingesting processes
	// (this one and its replicas) and by the database server's processes
	// on this machine (PostgreSQL; 0 for SQLite, which runs inside).
	IngestCPUClient, IngestCPUServer float64
	Reeval                           []reevalRow
	AffectedCold, AffectedWarm       dist
	AffectedRows                     int
	FindingsCold, FindingsWarm       dist
	// The same questions uncached again once the database settled
	// (settle), and how long that took.
	AffectedSettled, FindingsSettled dist
	SettleSeconds                    float64
	StoreBytes, LinkBytes            int64
	AdvisoryBytes, OtherBytes        int64
	Tables                           map[string]int64
	Serve                            []serveRow
	Settings                         string
}

type scaleOptions struct {
	data, db, work, socle, commit, jsonOut string
	profile                                string
	images, pkgs, bases, replicas, workers int
	queries                                int
}

func runScale(ctx context.Context, o scaleOptions) {
	if o.replicas > 1 && !strings.HasPrefix(o.db, "postgres") {
		log.Fatal("-replicas above 1 needs a PostgreSQL -db")
	}
	if strings.HasPrefix(o.db, "postgres") {
		emptyPostgres(ctx, o.db)
	}
	st, err := openStore(ctx, o.db, o.work, false)
	if err != nil {
		log.Fatal(err)
	}
	res := scaleResult{Commit: o.commit, Backend: st.Backend(), Images: o.images, Replicas: o.replicas, Workers: o.workers,
		Settings: databaseSettings(ctx, st)}
	pairs, err := testenv.DebianChangelogPairs(filepath.Join(o.data, "debian", "derived", "bookworm-minbase-changelog-cves.tsv"))
	if err != nil {
		log.Fatal(err)
	}
	importAdvisories(ctx, st, o.data, pairs)
	res.Advisories, _ = st.AdvisoryCount(ctx)

	// Ingest: in this process, or in -replicas processes at once.
	client0, server0 := ingestCPU()
	t0 := time.Now()
	if o.replicas <= 1 {
		stop := startProfile(o.profile)
		lat := ingestPart(ctx, st, o.data, pairs, o.images, o.pkgs, o.bases, o.workers, 0, 1)
		stop()
		res.IngestLatency, res.IngestLatencySteady = distOf(lat), distOf(lat[len(lat)/50:])
	} else {
		res.IngestLatency, res.IngestLatencySteady = ingestReplicas(o)
	}
	ingest := time.Since(t0)
	client1, server1 := ingestCPU()
	res.IngestCPUClient, res.IngestCPUServer = client1-client0, server1-server0
	res.IngestSeconds, res.IngestPerSecond = ingest.Seconds(), float64(o.images)/ingest.Seconds()
	log.Printf("ingested %d images in %s (%.0f/s; CPU an image: %.3f ms ingesting, %.3f ms PostgreSQL)", o.images, ingest.Round(time.Millisecond),
		res.IngestPerSecond, 1000*res.IngestCPUClient/float64(o.images), 1000*res.IngestCPUServer/float64(o.images))

	seedChecks(ctx, st, o.data, o.images, o.workers)
	res.Reeval = reevalRows(ctx, st, o.data, []int{10, 100, 1000})
	res.StoreBytes, res.LinkBytes, res.AdvisoryBytes, res.Tables = storeSizes(ctx, st)
	res.OtherBytes = res.StoreBytes - res.LinkBytes - res.AdvisoryBytes

	// socle serve on that store.
	secret, _, err := auth.Create(ctx, st, auth.Spec{Name: "fleet-bench", Role: store.RoleViewer}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	advs, digests := querySample(ctx, st, o.queries)
	st.Close()
	servers := startServers(o)
	for i := range servers {
		res.Serve = append(res.Serve, serveRow{ColdStartSeconds: servers[i].ready.Seconds()})
	}
	get := func(i int, path string) time.Duration {
		srv := servers[i%len(servers)]
		q0 := time.Now()
		if err := srv.get(path, secret); err != nil {
			log.Fatal(err)
		}
		return time.Since(q0)
	}
	// Each question is asked twice in a row: the first answer is computed
	// (socle's answer cache has never held it), the second is served from
	// that cache.
	affected := func(a string) string { return "/api/v1/affected?advisory=" + a + "&limit=100" }
	findings := func(d string) string { return "/api/v1/images/" + d + "/findings" }
	var affCold, affWarm, fCold, fWarm []time.Duration
	for i, a := range advs {
		affCold = append(affCold, get(i, affected(a)))
		affWarm = append(affWarm, get(i, affected(a)))
	}
	for i, dg := range digests {
		fCold = append(fCold, get(i, findings(dg)))
		fWarm = append(fWarm, get(i, findings(dg)))
	}
	res.AffectedCold, res.AffectedWarm = distOf(affCold), distOf(affWarm)
	res.FindingsCold, res.FindingsWarm = distOf(fCold), distOf(fWarm)
	for i, srv := range servers {
		res.Serve[i].PeakRSSMiB = srv.stop()
	}
	// The same questions, uncached again (new socle serve), once the
	// database is done with what the writes left it (PostgreSQL: a
	// checkpoint, and autovacuum idle): the state a store is in some
	// minutes after a bulk load, next to the one right after it.
	res.SettleSeconds = settle(ctx, o.db)
	servers = startServers(o)
	var affSettled, fSettled []time.Duration
	for i, a := range advs {
		affSettled = append(affSettled, get(i, affected(a)))
	}
	for i, dg := range digests {
		fSettled = append(fSettled, get(i, findings(dg)))
	}
	res.AffectedSettled, res.FindingsSettled = distOf(affSettled), distOf(fSettled)
	for _, srv := range servers {
		srv.stop()
	}
	printScale(res)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(o.jsonOut, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

// seedChecks stores, for every image, the image rules' result of the
// real Alpine 3.10 image, with the current rules and the image's own
// name in its findings, as socle serve's check would keep it: the images are
// synthetic and in no registry, and socle serve would otherwise queue a
// check of each at start (what it does after an upgrade that changes the
// rules), which the report does not measure. Not timed.
func seedChecks(ctx context.Context, st store.Store, dataDir string, images, workers int) {
	ref, err := oci.ParseImageRef("docker-archive:" + filepath.Join(dataDir, "images", "alpine-310.tar.gz"))
	if err != nil {
		log.Fatal(err)
	}
	src, err := source.Open(ctx, ref, source.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	const placeholder = "alpine-310"
	res, err := check.CheckImage(ctx, placeholder, src.Image, nil, check.ImageOptions{})
	if err != nil {
		log.Fatal(err)
	}
	raw, _ := json.Marshal(res)
	var kept atomic.Int64
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				// The result the Keeper would keep for this image: its
				// findings name it (repository@digest).
				repo, digest := fmt.Sprintf("bench/app-%d", i%500), imageDigest(i)
				own := *res
				own.Findings = slices.Clone(res.Findings)
				for k := range own.Findings {
					if f := &own.Findings[k]; f.File == placeholder {
						f.File, f.Object = repo+"@"+digest, repo+"@"+digest
					}
				}
				b, err := check.EncodeResult(&own, repo, digest)
				if err != nil {
					log.Fatal(err)
				}
				kept.Add(int64(len(b)))
				c := store.ImageCheck{Digest: digest, Repository: repo,
					RulesVersion: check.RulesVersion(), CheckedAt: time.Now().UTC(), Result: b}
				if err := st.PutImageCheck(ctx, c); err != nil {
					log.Fatal(err)
				}
			}
		}()
	}
	for i := range images {
		next <- i
	}
	close(next)
	wg.Wait()
	log.Printf("stored the real Alpine check result (%d bytes of JSON, %d kept on average) for %d images", len(raw), kept.Load()/int64(max(images, 1)), images)
}

// emptyPostgres drops every table of the database's current schema: the
// report starts from an empty store. Only for a database made for it.
func emptyPostgres(ctx context.Context, dsn string) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `DROP SCHEMA public CASCADE; CREATE SCHEMA public`); err != nil {
		log.Fatal(err)
	}
}

// settle waits until a PostgreSQL database is done with what the writes
// left it: a checkpoint, then no autovacuum worker for three seconds in a
// row (at most three minutes). It returns how long that took; 0 for
// SQLite, which has no background work of its own.
func settle(ctx context.Context, dsn string) float64 {
	if !strings.HasPrefix(dsn, "postgres") {
		return 0
	}
	t0 := time.Now()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CHECKPOINT`); err != nil {
		log.Fatal(err)
	}
	for idle := 0; idle < 3 && time.Since(t0) < 3*time.Minute; {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'`).Scan(&n); err != nil {
			log.Fatal(err)
		}
		if idle++; n > 0 {
			idle = 0
		}
		time.Sleep(time.Second)
	}
	log.Printf("the database settled in %s", time.Since(t0).Round(time.Millisecond))
	return time.Since(t0).Seconds()
}

// databaseSettings reports what bears on write speed.
func databaseSettings(ctx context.Context, st store.Store) string {
	db := st.(interface{ SQL() *sql.DB }).SQL()
	var qs []string
	if st.Backend() == "postgres" {
		qs = []string{"SHOW server_version", "SHOW fsync", "SHOW synchronous_commit", "SHOW shared_buffers"}
	} else {
		qs = []string{"SELECT sqlite_version()", "PRAGMA journal_mode", "PRAGMA synchronous", "PRAGMA cache_size"}
	}
	var parts []string
	for _, q := range qs {
		var v string
		if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
			v = "?"
		}
		parts = append(parts, strings.TrimPrefix(strings.TrimPrefix(q, "SHOW "), "PRAGMA ")+" "+v)
	}
	return strings.Join(parts, ", ")
}

// importAdvisories loads the real PyPA records and the OSV records
// derived from real Debian changelogs.
func importAdvisories(ctx context.Context, st store.Store, dataDir string, pairs []testenv.DebianChangelogPair) {
	t0 := time.Now()
	im := vuln.NewImporter(st, "pypa")
	if err := im.ImportPath(ctx, filepath.Join(dataDir, "osv", "pypi", "pypa-advisory-database-vulns.tar.gz")); err != nil {
		log.Fatal(err)
	}
	if _, err := im.Finish(ctx); err != nil {
		log.Fatal(err)
	}
	dim := vuln.NewImporter(st, "derived-debian-changelogs")
	for i, rec := range testenv.DerivedDebianOSV(pairs) {
		if err := dim.ImportReader(ctx, fmt.Sprintf("derived-%d.json", i), strings.NewReader(string(rec)), time.Now()); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := dim.Finish(ctx); err != nil {
		log.Fatal(err)
	}
	n, _ := st.AdvisoryCount(ctx)
	log.Printf("advisories imported: %d in %s", n, time.Since(t0).Round(time.Millisecond))
}

// ingestPart indexes the images i with i % parts == part, workers at
// once, each with its tag, as a registry's pushes arrive, and returns
// each image's indexing time. The inventories are built beforehand: the
// layers are taken as analysed (socle's layer cache).
func ingestPart(ctx context.Context, st store.Store, dataDir string, pairs []testenv.DebianChangelogPair, images, pkgs, bases, workers, part, parts int) []time.Duration {
	debs := debianPackages(filepath.Join(dataDir, "debian", "bookworm-minbase-rootfs", "var", "lib", "dpkg", "status"), pairs)
	pypi := pypiPool(filepath.Join(dataDir, "osv", "pypi", "pypa-advisory-database-vulns.tar.gz"))
	an, err := sbom.NewAnalyzer()
	if err != nil {
		log.Fatal(err)
	}
	sc := scan.New(st, an)
	next := make(chan int)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				inv := synthImage(i, i%bases, debs, pypi, pkgs-len(debs), rand.New(rand.NewPCG(1, uint64(i))))
				repo := fmt.Sprintf("bench/app-%d", i%500)
				q0 := time.Now()
				if err := sc.Index(ctx, inv, repo); err != nil {
					log.Fatal(err)
				}
				if err := st.PutTag(ctx, store.TagEvent{Repository: repo, Tag: fmt.Sprint(i / 500), Digest: inv.Digest, At: time.Now()}); err != nil {
					log.Fatal(err)
				}
				d := time.Since(q0)
				mu.Lock()
				lat = append(lat, d)
				if n := len(lat); n%10000 == 0 {
					log.Printf("ingested %d images (%.0f/s)", n, float64(n)/time.Since(start).Seconds())
				}
				mu.Unlock()
			}
		}()
	}
	for i := part; i < images; i += parts {
		next <- i
	}
	close(next)
	wg.Wait()
	log.Printf("ingested %d images in %s (%.0f/s)", len(lat), time.Since(start).Round(time.Millisecond), float64(len(lat))/time.Since(start).Seconds())
	return lat
}

// ingestReplicas runs -replicas child processes, each ingesting its share
// into the shared database, and merges their latencies: all of them, and
// those after each process's first 2%.
func ingestReplicas(o scaleOptions) (all, steady dist) {
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for k := range o.replicas {
		cmd := exec.Command(os.Args[0], "-data", o.data, "-db", o.db, "-work", o.work, "-images", fmt.Sprint(o.images),
			"-packages", fmt.Sprint(o.pkgs), "-bases", fmt.Sprint(o.bases), "-workers", fmt.Sprint(o.workers),
			"-ingest-part", fmt.Sprintf("%d/%d", k, o.replicas))
		if o.profile != "" {
			cmd.Args = append(cmd.Args, "-cpuprofile", fmt.Sprintf("%s.%d", o.profile, k))
		}
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	var lat, later []time.Duration
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			log.Fatalf("replica %d: %v", i, err)
		}
		var ms []int64
		if err := json.Unmarshal([]byte(outs[i].String()), &ms); err != nil {
			log.Fatalf("replica %d: %v", i, err)
		}
		for k, m := range ms {
			d := time.Duration(m) * time.Microsecond
			lat = append(lat, d)
			if k >= len(ms)/50 {
				later = append(later, d)
			}
		}
	}
	return distOf(lat), distOf(later)
}

// runIngestPart is a replica's side of ingestReplicas.
func runIngestPart(ctx context.Context, o scaleOptions, spec string) {
	var part, parts int
	if _, err := fmt.Sscanf(spec, "%d/%d", &part, &parts); err != nil || parts < 1 || part < 0 || part >= parts {
		log.Fatalf("-ingest-part %q: want k/n", spec)
	}
	st, err := openStore(ctx, o.db, o.work, true)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	pairs, err := testenv.DebianChangelogPairs(filepath.Join(o.data, "debian", "derived", "bookworm-minbase-changelog-cves.tsv"))
	if err != nil {
		log.Fatal(err)
	}
	stop := startProfile(o.profile)
	lat := ingestPart(ctx, st, o.data, pairs, o.images, o.pkgs, o.bases, o.workers, part, parts)
	stop()
	ms := make([]int64, len(lat))
	for i, d := range lat {
		ms[i] = d.Microseconds()
	}
	json.NewEncoder(os.Stdout).Encode(ms)
}

// reevalRows withdraws successive, disjoint sets of real PyPA records
// and times socle's re-evaluation of each; Pairs counts the (package
// version, advisory) matches the change ends.
func reevalRows(ctx context.Context, st store.Store, dataDir string, sizes []int) []reevalRow {
	path := filepath.Join(dataDir, "osv", "pypi", "pypa-advisory-database-vulns.tar.gz")
	held := map[string]bool{}
	for _, p := range pypiPool(path) {
		held[p.name] = true
	}
	total := 0
	for _, n := range sizes {
		total += n
	}
	recs := changedAdvisories(path, total, held)
	an, err := sbom.NewAnalyzer()
	if err != nil {
		log.Fatal(err)
	}
	sc := scan.New(st, an)
	var out []reevalRow
	for _, n := range sizes {
		n = min(n, len(recs))
		batch := recs[:n]
		recs = recs[n:]
		var ids []string
		for _, r := range batch {
			var rec struct{ ID string }
			_ = json.Unmarshal(r, &rec)
			ids = append(ids, rec.ID)
		}
		pairs := countMatches(ctx, st, ids)
		stats := importChanged(ctx, st, batch)
		t1 := time.Now()
		re, err := sc.Reevaluate(ctx, st, stats.Packages)
		if err != nil {
			log.Fatal(err)
		}
		row := reevalRow{Changed: n, Pairs: pairs, Versions: re.Versions, Seconds: time.Since(t1).Seconds(),
			Closed: re.Changes.Closed, Opened: re.Changes.Opened, Images: len(re.Changes.Images)}
		log.Printf("re-evaluation of %d changed advisories: %+v", n, row)
		out = append(out, row)
	}
	return out
}

// countMatches counts the package versions the advisories match now.
func countMatches(ctx context.Context, st store.Store, ids []string) int {
	db := st.(interface{ SQL() *sql.DB }).SQL()
	n := 0
	for _, id := range ids {
		var k int
		q := `SELECT COUNT(*) FROM package_matches WHERE advisory_id = ?`
		if st.Backend() == "postgres" {
			q = strings.Replace(q, "?", "$1", 1)
		}
		if err := db.QueryRowContext(ctx, q, id).Scan(&k); err != nil {
			log.Fatal(err)
		}
		n += k
	}
	return n
}

// storeSizes returns the store's size, what its package links take
// (image_package_sets, package_images, its log, the link groups and
// link_history with their indexes)
// and what the advisories take.
func storeSizes(ctx context.Context, st store.Store) (total, links, advisories int64, tables map[string]int64) {
	tables = map[string]int64{}
	db := st.(interface{ SQL() *sql.DB }).SQL()
	linkTables := map[string]bool{"image_package_sets": true, "image_packages": true, "image_packages_img": true, "image_packages_name": true,
		"package_images": true, "package_images_img": true, "package_images_log": true, "package_images_log_pkey": true, "link_history": true, "binaries": true, "binaries_name": true,
		"binary_extras": true, "package_multi": true, "package_multi_img": true,
		"link_groups": true, "link_groups_hash_key": true, "group_packages": true, "image_groups": true, "image_groups_img": true}
	advTables := map[string]bool{"advisories": true, "advisory_aliases": true, "advisory_aliases_adv": true,
		"advisory_affected": true, "advisory_affected_pkg": true, "ratings": true, "exploits": true}
	var q string
	if st.Backend() == "postgres" {
		// Each table with its indexes and TOAST (where large values go).
		q = `SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind = 'r'`
	} else {
		if _, err := db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			log.Fatal(err)
		}
		q = `SELECT name, SUM(pgsize) FROM dbstat GROUP BY name`
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		log.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			log.Fatal(err)
		}
		total += n
		base := strings.TrimPrefix(name, "sqlite_autoindex_")
		base = strings.TrimSuffix(strings.TrimSuffix(base, "_1"), "_pkey")
		tables[name] += n
		switch {
		case linkTables[base]:
			links += n
		case advTables[base]:
			advisories += n
		}
	}
	return total, links, advisories, tables
}

// querySample picks up to n advisories that match stored package
// versions and n image digests, at random.
func querySample(ctx context.Context, st store.Store, n int) (advs, digests []string) {
	db := st.(interface{ SQL() *sql.DB }).SQL()
	for _, q := range []struct {
		sql string
		out *[]string
	}{
		{`SELECT DISTINCT advisory_id FROM package_matches`, &advs},
		{`SELECT digest FROM images`, &digests},
	} {
		rows, err := db.QueryContext(ctx, q.sql)
		if err != nil {
			log.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				log.Fatal(err)
			}
			*q.out = append(*q.out, s)
		}
		rows.Close()
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, l := range []*[]string{&advs, &digests} {
		sort.Strings(*l)
		rng.Shuffle(len(*l), func(i, j int) { (*l)[i], (*l)[j] = (*l)[j], (*l)[i] })
		*l = (*l)[:min(n, len(*l))]
	}
	return advs, digests
}

// serveProc is one socle serve the report queries.
type serveProc struct {
	cmd   *exec.Cmd
	base  string
	ready time.Duration
	http  *http.Client
}

func freePort() string {
	addr, err := testenv.FreeAddr()
	if err != nil {
		log.Fatal(err)
	}
	return addr
}

// startServers starts -replicas socle serve on the store and waits for
// each to answer /readyz.
func startServers(o scaleOptions) []*serveProc {
	var out []*serveProc
	for k := range o.replicas {
		dbArg := o.db
		if dbArg == "" {
			dbArg = filepath.Join(o.work, "fleet-bench.db")
		}
		dir := filepath.Join(o.work, fmt.Sprintf("serve-%d", k))
		os.RemoveAll(dir)
		addr := freePort()
		cmd := exec.Command(o.socle, "--database", dbArg, "--data-dir", dir, "serve", "--addr", addr, "--registry-addr", freePort())
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		srv := &serveProc{cmd: cmd, base: "http://" + addr, http: &http.Client{Timeout: 60 * time.Second}}
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			log.Fatal(err)
		}
		for {
			resp, err := srv.http.Get(srv.base + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Since(t0) > 5*time.Minute {
				log.Fatal("socle serve not ready after 5 minutes")
			}
			time.Sleep(20 * time.Millisecond)
		}
		srv.ready = time.Since(t0)
		log.Printf("socle serve %d ready in %s", k, srv.ready.Round(time.Millisecond))
		out = append(out, srv)
	}
	return out
}

func (s *serveProc) get(path, token string) error {
	req, _ := http.NewRequest("GET", s.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return nil
}

// stop ends socle serve and returns its peak resident memory in MiB.
func (s *serveProc) stop() float64 {
	rss := peakRSS(s.cmd.Process.Pid)
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
	return rss
}

func peakRSS(pid int) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// largest lists the n largest tables and indexes, in bytes per image.
func largest(tables map[string]int64, images, n int) string {
	var names []string
	for k := range tables {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return tables[names[i]] > tables[names[j]] })
	var parts []string
	for _, k := range names[:min(n, len(names))] {
		parts = append(parts, fmt.Sprintf("%s %.0f B", k, float64(tables[k])/float64(images)))
	}
	return strings.Join(parts, ", ")
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func printScale(r scaleResult) {
	fmt.Printf("# socle fleet scale, %s, %s\n\n", r.Commit, time.Now().UTC().Format("2006-01-02T15:04Z"))
	fmt.Printf("Store %s (%s); %d images x 200 packages (20 bases); %d advisories; %d replica(s), %d ingest workers each.\n\n",
		r.Backend, r.Settings, r.Images, r.Advisories, r.Replicas, r.Workers)
	fmt.Println("| measure | figure | target |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| ingest, layers cached | %.0f images/s (%.1f s); per image %s | >= 500/s SQLite, >= 1,000/s 2 PG replicas |\n",
		r.IngestPerSecond, r.IngestSeconds, r.IngestLatency)
	fmt.Printf("| the same, without each ingesting process's first 2%% of images | per image %s | - |\n", r.IngestLatencySteady)
	fmt.Printf("| ingest CPU per image | ingesting processes %.2f ms, database server %.2f ms (%.1f cores' worth at this rate) | - |\n",
		1000*r.IngestCPUClient/float64(r.Images), 1000*r.IngestCPUServer/float64(r.Images),
		(r.IngestCPUClient+r.IngestCPUServer)/r.IngestSeconds)
	for _, e := range r.Reeval {
		fmt.Printf("| re-evaluation, %d changed advisories | %.2f s: %d (package version x advisory) pairs ended, %d versions re-matched, %d findings closed, %d opened, %d images listed | 1,000: < 5 s at 10k, < 30 s at 100k |\n",
			e.Changed, e.Seconds, e.Pairs, e.Versions, e.Closed, e.Opened, e.Images)
	}
	fmt.Printf("| \"affected by CVE\", answer cache cold | %s | p99 < 50 ms |\n", r.AffectedCold)
	fmt.Printf("| \"affected by CVE\", answer cache warm | %s | - |\n", r.AffectedWarm)
	fmt.Printf("| image findings, answer cache cold | %s | p99 < 20 ms |\n", r.FindingsCold)
	fmt.Printf("| image findings, answer cache warm | %s | - |\n", r.FindingsWarm)
	settled := fmt.Sprintf("after the database settled (%.0f s: a checkpoint, autovacuum idle)", r.SettleSeconds)
	if r.SettleSeconds == 0 {
		settled = "asked again of new socle serve"
	}
	fmt.Printf("| \"affected by CVE\", uncached, %s | %s | p99 < 50 ms |\n", settled, r.AffectedSettled)
	fmt.Printf("| image findings, uncached, %s | %s | p99 < 20 ms |\n", settled, r.FindingsSettled)
	per := float64(r.OtherBytes) / float64(r.Images)
	fmt.Printf("| store size | %s: package links %s (%.0f B/image), advisories %s, the rest %s (%.0f B/image) | rest <= 2 KB/image |\n",
		mib(r.StoreBytes), mib(r.LinkBytes), float64(r.LinkBytes)/float64(r.Images), mib(r.AdvisoryBytes), mib(r.OtherBytes), per)
	fmt.Printf("| largest tables and indexes, per image | %s | - |\n", largest(r.Tables, r.Images, 8))
	for i, s := range r.Serve {
		fmt.Printf("| socle serve %d: cold start to /readyz, peak RSS | %.2f s, %.0f MiB | < 5 s, < 1 GiB |\n", i+1, s.ColdStartSeconds, s.PeakRSSMiB)
	}
	fmt.Println()
	fmt.Println("Latencies are socle serve's HTTP answers over loopback, one request at a time, each question asked twice in a row:")
	fmt.Println("the first answer is computed (socle's answer cache has never held it: uncached), the second comes from that cache.")
	fmt.Println("The store's own caches (package IDs, advisory texts, image names) and the database's and the OS's page caches are")
	fmt.Println("warm: the store was just written. With several socle serve, the questions alternate between them. The \"settled\"")
	fmt.Println("rows ask the same questions again of new socle serve (their answer caches empty) once the database has")
	fmt.Println("checkpointed and no autovacuum worker runs.")
}

// runCompare prints the ratios of two runs' figures (new / old).
func runCompare(newPath, oldPath string) {
	var a, b scaleResult
	for _, x := range []struct {
		p string
		r *scaleResult
	}{{newPath, &a}, {oldPath, &b}} {
		raw, err := os.ReadFile(x.p)
		if err != nil {
			log.Fatal(err)
		}
		if err := json.Unmarshal(raw, x.r); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("## %s against %s (%s, %d images)\n\n", a.Commit, b.Commit, a.Backend, a.Images)
	fmt.Println("| measure | new | previous | new / previous |")
	fmt.Println("|---|---|---|---|")
	row := func(name, unit string, x, y float64) {
		r := "-"
		if y != 0 {
			r = fmt.Sprintf("%.2f", x/y)
		}
		fmt.Printf("| %s | %.2f %s | %.2f %s | %s |\n", name, x, unit, y, unit, r)
	}
	row("ingest rate", "images/s", a.IngestPerSecond, b.IngestPerSecond)
	for i := range min(len(a.Reeval), len(b.Reeval)) {
		row(fmt.Sprintf("re-evaluation, %d advisories", a.Reeval[i].Changed), "s", a.Reeval[i].Seconds, b.Reeval[i].Seconds)
	}
	row("affected by CVE p99, uncached", "ms", a.AffectedCold.P99, b.AffectedCold.P99)
	row("image findings p99, uncached", "ms", a.FindingsCold.P99, b.FindingsCold.P99)
	row("affected by CVE p99, uncached, settled", "ms", a.AffectedSettled.P99, b.AffectedSettled.P99)
	row("image findings p99, uncached, settled", "ms", a.FindingsSettled.P99, b.FindingsSettled.P99)
	row("store size", "MiB", float64(a.StoreBytes)/(1<<20), float64(b.StoreBytes)/(1<<20))
	row("store beyond links and advisories, per image", "B", float64(a.OtherBytes)/float64(a.Images), float64(b.OtherBytes)/float64(b.Images))
	if len(a.Serve) > 0 && len(b.Serve) > 0 {
		row("socle serve cold start", "s", a.Serve[0].ColdStartSeconds, b.Serve[0].ColdStartSeconds)
		row("socle serve peak RSS", "MiB", a.Serve[0].PeakRSSMiB, b.Serve[0].PeakRSSMiB)
	}
	fmt.Println()
}

// ingestCPU returns the CPU seconds used so far by this process and its
// waited-for children (the -replicas processes), and by the processes
// named postgres on this machine (the database server, when it is local).
func ingestCPU() (client, server float64) {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	client = tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime stime cutime cstime: fields 14
		// to 17, counted after the command name, which may hold spaces.
		// The children's times are those of backends that exited (the
		// connections of -replicas processes that are gone), which the
		// postmaster collected.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || !bytes.HasSuffix(b[:i], []byte("(postgres")) {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		for _, t := range f[11:15] {
			v, _ := strconv.ParseFloat(t, 64)
			server += v / clockTicks
		}
	}
	return client, server
}

// clockTicks is the kernel's USER_HZ, 100 on Linux.
const clockTicks = 100
