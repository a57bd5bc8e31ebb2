package vuln

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"
	"gopkg.in/yaml.v3"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/store"
)

// AdvisoryWriter is the part of the store an import writes to.
type AdvisoryWriter interface {
	UpsertAdvisories(ctx context.Context, advs []store.Advisory) (store.UpsertResult, error)
	RatingStore
	PutRatings(ctx context.Context, rs []store.Rating) error
	PutKEV(ctx context.Context, entries []store.Exploit) error
	PutEPSS(ctx context.Context, scores []store.Exploit) error
	RefreshExploits(ctx context.Context, ids []string) error
	PutVEXDocument(ctx context.Context, d store.VEXDocument) (bool, error)
}

// ImportStats reports what an import read and changed.
type ImportStats struct {
	Files     int
	Records   int
	Added     int
	Updated   int
	Unchanged int
	// Skipped counts records that could not be read; Errors describes
	// the first of them, with the file they came from.
	Skipped int
	Errors  []string
	// Changed are the advisories added or updated; Packages the package
	// names whose matches they may change.
	Changed  []string
	Packages []store.PackageName
	// NVD counts the CVEs whose NVD CVSS was read, KEV the entries of a
	// known-exploited catalog, EPSS the EPSS scores, VEX the new VEX
	// documents kept (OpenVEX or CSAF) and Rated the advisories whose
	// severity was recomputed.
	NVD   int
	KEV   int
	EPSS  int
	VEX   int
	Rated int
}

const (
	maxImportErrors = 20
	maxArchiveEntry = 64 << 20
	importBatch     = 500
)

// Importer loads advisories from files into a store.
type Importer struct {
	w      AdvisoryWriter
	source string
	stats  ImportStats
	batch  []store.Advisory
	pkgs   map[store.PackageName]bool
	// secdb documents are converted once all are read, so that one
	// identifier fixed in several packages of a branch is one record.
	secdb     []*SecDB
	secdbTime time.Time
	// tracker records are converted once all are read, with the
	// releases a distributions.json may add.
	tracker  []*TrackerRecord
	releases map[string]string
	// ratings waits for PutRatings; rerate names the identifiers whose
	// advisories need their severity recomputed.
	ratings   []store.Rating
	rerate    map[string]bool
	exploited bool
	now       func() time.Time
}

// NewImporter returns an Importer that labels records with source.
func NewImporter(w AdvisoryWriter, source string) *Importer {
	releases := map[string]string{}
	for k, v := range debianReleases {
		releases[k] = v
	}
	return &Importer{w: w, source: source, pkgs: map[store.PackageName]bool{}, releases: releases,
		rerate: map[string]bool{}, now: time.Now}
}

// ImportPath imports one path: an OSV JSON or YAML record (or a JSON
// array of them), an Alpine secdb document, a zip of records (osv.dev's
// per-ecosystem export), a tarball of records, or a directory holding
// any of those.
func (im *Importer) ImportPath(ctx context.Context, p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("importing advisories: %w", err)
	}
	if fi.IsDir() {
		err = filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if fp != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			return im.importFile(ctx, fp)
		})
	} else {
		err = im.importFile(ctx, p)
	}
	if err != nil {
		return err
	}
	return nil
}

// ImportReader imports one file's content, named by name.
func (im *Importer) ImportReader(ctx context.Context, name string, r io.Reader, modTime time.Time) error {
	return im.importStream(ctx, name, r, modTime)
}

// Finish writes what is pending and returns the statistics.
func (im *Importer) Finish(ctx context.Context) (ImportStats, error) {
	if len(im.secdb) > 0 {
		for _, v := range SecDBToOSV(im.secdb, im.secdbTime) {
			if err := im.addRecord(ctx, "secdb", v); err != nil {
				return im.stats, err
			}
		}
		im.secdb = nil
	}
	for _, r := range im.tracker {
		if err := im.addRecord(ctx, "tracker", TrackerToOSV(r, im.releases)); err != nil {
			return im.stats, err
		}
	}
	im.tracker = nil
	if err := im.flush(ctx); err != nil {
		return im.stats, err
	}
	if err := im.flushRatings(ctx); err != nil {
		return im.stats, err
	}
	ids := make([]string, 0, len(im.rerate))
	for id := range im.rerate {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	n, err := Rerate(ctx, im.w, ids)
	if err != nil {
		return im.stats, fmt.Errorf("rating advisories: %w", err)
	}
	im.stats.Rated += n
	im.rerate = map[string]bool{}
	if im.exploited {
		if err := im.w.RefreshExploits(ctx, nil); err != nil {
			return im.stats, err
		}
		im.exploited = false
	}
	for p := range im.pkgs {
		im.stats.Packages = append(im.stats.Packages, p)
	}
	sort.Slice(im.stats.Packages, func(i, j int) bool {
		a, b := im.stats.Packages[i], im.stats.Packages[j]
		if a.Ecosystem != b.Ecosystem {
			return a.Ecosystem < b.Ecosystem
		}
		return a.Name < b.Name
	})
	return im.stats, nil
}

func (im *Importer) importFile(ctx context.Context, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	lower := strings.ToLower(p)
	if strings.HasSuffix(lower, ".zip") {
		im.stats.Files++
		zr, err := zip.NewReader(f, fi.Size())
		if err != nil {
			im.fail(p, fmt.Errorf("reading zip: %w", err))
			return nil
		}
		return im.importZip(ctx, p, zr)
	}
	return im.importStream(ctx, p, f, fi.ModTime())
}

func (im *Importer) importStream(ctx context.Context, name string, r io.Reader, modTime time.Time) error {
	lower := strings.ToLower(name)
	switch {
	case strings.HasSuffix(lower, ".tar.gz") || strings.HasSuffix(lower, ".tgz"):
		im.stats.Files++
		zr, err := gzip.NewReader(r)
		if err != nil {
			im.fail(name, err)
			return nil
		}
		defer zr.Close()
		return im.importTar(ctx, name, zr)
	case strings.HasSuffix(lower, ".tar"):
		im.stats.Files++
		return im.importTar(ctx, name, r)
	case strings.HasSuffix(lower, ".csv.gz"), strings.HasSuffix(lower, ".json.gz"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			im.stats.Files++
			im.fail(name, err)
			return nil
		}
		defer zr.Close()
		return im.importStream(ctx, strings.TrimSuffix(name, name[len(name)-3:]), zr, modTime)
	case strings.HasSuffix(lower, ".csv"):
		im.stats.Files++
		return im.importEPSS(ctx, name, r)
	case strings.HasSuffix(lower, ".json"), strings.HasSuffix(lower, ".yaml"), strings.HasSuffix(lower, ".yml"):
		im.stats.Files++
		br := bufio.NewReaderSize(r, 64<<10)
		if head, _ := br.Peek(4096); isJSON(lower) && bytes.Contains(head, []byte(`"NVD_CVE"`)) {
			return im.importNVDFeed(ctx, name, br)
		}
		r = br
		data, err := io.ReadAll(io.LimitReader(r, maxArchiveEntry+1))
		if err != nil {
			return err
		}
		if len(data) > maxArchiveEntry {
			im.fail(name, fmt.Errorf("file larger than %d bytes", maxArchiveEntry))
			return nil
		}
		return im.importDocument(ctx, name, data, modTime)
	}
	return nil // not an advisory file
}

func (im *Importer) importZip(ctx context.Context, name string, zr *zip.Reader) error {
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if f.FileInfo().IsDir() {
			continue
		}
		entry := name + "!" + f.Name
		if f.UncompressedSize64 > maxArchiveEntry {
			im.fail(entry, fmt.Errorf("entry of %d bytes exceeds %d", f.UncompressedSize64, maxArchiveEntry))
			continue
		}
		rc, err := f.Open()
		if err != nil {
			im.fail(entry, err)
			continue
		}
		data, err := io.ReadAll(io.LimitReader(rc, maxArchiveEntry+1))
		rc.Close()
		if err != nil {
			im.fail(entry, err)
			continue
		}
		if len(data) > maxArchiveEntry {
			im.fail(entry, fmt.Errorf("entry larger than declared"))
			continue
		}
		lower := strings.ToLower(f.Name)
		if strings.HasSuffix(lower, ".json") || strings.HasSuffix(lower, ".yaml") || strings.HasSuffix(lower, ".yml") {
			if err := im.importDocument(ctx, entry, data, f.Modified); err != nil {
				return err
			}
		}
	}
	return nil
}

func (im *Importer) importTar(ctx context.Context, name string, r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			im.fail(name, fmt.Errorf("reading tar: %w", err))
			return nil
		}
		if h.Typeflag != tar.TypeReg && h.Typeflag != tar.TypeRegA {
			continue
		}
		entry := name + "!" + h.Name
		lower := strings.ToLower(h.Name)
		if !(strings.HasSuffix(lower, ".json") || strings.HasSuffix(lower, ".yaml") || strings.HasSuffix(lower, ".yml")) {
			continue
		}
		if h.Size > maxArchiveEntry {
			im.fail(entry, fmt.Errorf("entry of %d bytes exceeds %d", h.Size, maxArchiveEntry))
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			im.fail(entry, err)
			return nil
		}
		if err := im.importDocument(ctx, entry, data, h.ModTime); err != nil {
			return err
		}
	}
}

// importDocument reads one JSON or YAML document: an OSV record, an array
// of records, or an Alpine secdb document.
func (im *Importer) importDocument(ctx context.Context, name string, data []byte, modTime time.Time) error {
	isJSON := strings.HasSuffix(strings.ToLower(name), ".json")
	trimmed := bytes.TrimSpace(data)
	if isJSON && len(trimmed) > 0 && trimmed[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			im.fail(name, fmt.Errorf("parsing JSON array: %w", err))
			return nil
		}
		for i, it := range items {
			v, err := ParseOSV(it)
			if err != nil {
				im.fail(fmt.Sprintf("%s[%d]", name, i), err)
				continue
			}
			if err := im.addRecord(ctx, name, v); err != nil {
				return err
			}
		}
		return nil
	}
	keys, err := topLevelKeys(trimmed, isJSON)
	if err != nil {
		im.fail(name, err)
		return nil
	}
	switch {
	case isNVDFeed(keys):
		return im.importNVDFeed(ctx, name, bytes.NewReader(trimmed))
	case isNVDRecord(keys):
		rt, ok, err := ParseNVD(trimmed)
		if err != nil {
			im.fail(name, err)
		} else if ok {
			return im.addRating(ctx, rt)
		}
		return nil
	case isKEV(keys):
		entries, err := ParseKEV(trimmed)
		if err != nil {
			im.fail(name, err)
			return nil
		}
		if err := im.w.PutKEV(ctx, entries); err != nil {
			return err
		}
		im.stats.KEV += len(entries)
		im.exploited = true
		return nil
	case isCSAF(keys) || keys["@context"]:
		return im.importVEX(ctx, name, trimmed)
	case isTracker(keys):
		r, err := ParseTracker(trimmed)
		if err != nil {
			im.fail(name, err)
			return nil
		}
		im.tracker = append(im.tracker, r)
		return nil
	case path.Base(strings.ReplaceAll(name, "!", "/")) == "distributions.json":
		for k, v := range parseTrackerReleases(trimmed) {
			im.releases[k] = v
		}
		return nil
	case isTrackerStanza(keys):
		return nil // a Sources stanza of a tracker export: not an advisory
	}
	if isSecDB(keys) {
		d, err := ParseSecDB(trimmed, isJSON)
		if err != nil {
			im.fail(name, err)
			return nil
		}
		im.secdb = append(im.secdb, d)
		if modTime.After(im.secdbTime) {
			im.secdbTime = modTime.UTC()
		}
		return nil
	}
	var v *osvpb.Vulnerability
	if isJSON {
		v, err = ParseOSV(trimmed)
	} else {
		v, err = ParseOSVYAML(trimmed)
	}
	if err != nil {
		im.fail(name, err)
		return nil
	}
	return im.addRecord(ctx, name, v)
}

func topLevelKeys(data []byte, isJSON bool) (map[string]bool, error) {
	keys := map[string]bool{}
	if isJSON {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("parsing JSON: %w", err)
		}
		for k := range m {
			keys[k] = true
		}
		return keys, nil
	}
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	if n.Kind != yaml.DocumentNode || len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("YAML document is not a mapping")
	}
	m := n.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		keys[m.Content[i].Value] = true
	}
	return keys, nil
}

func (im *Importer) addRecord(ctx context.Context, name string, v *osvpb.Vulnerability) error {
	a, err := ToAdvisory(v, im.source)
	if err != nil {
		im.fail(name, err)
		return nil
	}
	im.stats.Records++
	im.batch = append(im.batch, a)
	if len(im.batch) >= importBatch {
		return im.flush(ctx)
	}
	return nil
}

func (im *Importer) flush(ctx context.Context) error {
	if len(im.batch) == 0 {
		return nil
	}
	res, err := im.w.UpsertAdvisories(ctx, im.batch)
	if err != nil {
		return fmt.Errorf("storing advisories: %w", err)
	}
	changed := map[string]bool{}
	for _, id := range res.Changed {
		changed[id] = true
	}
	for _, a := range im.batch {
		if changed[a.ID] {
			im.rerate[a.ID] = true
			for _, al := range a.Aliases {
				im.rerate[al] = true
			}
		}
	}
	im.batch = im.batch[:0]
	im.stats.Added += res.Added
	im.stats.Updated += res.Updated
	im.stats.Unchanged += res.Unchanged
	im.stats.Changed = append(im.stats.Changed, res.Changed...)
	for _, p := range res.Packages {
		im.pkgs[p] = true
	}
	return nil
}

func (im *Importer) fail(name string, err error) {
	im.stats.Skipped++
	if len(im.stats.Errors) < maxImportErrors {
		im.stats.Errors = append(im.stats.Errors, fmt.Sprintf("%s: %v", path.Clean(name), err))
	}
}

func isJSON(lowerName string) bool { return strings.HasSuffix(lowerName, ".json") }

// addRating queues a rating of another source (NVD) for PutRatings.
func (im *Importer) addRating(ctx context.Context, r store.Rating) error {
	im.ratings = append(im.ratings, r)
	im.rerate[r.ID] = true
	im.stats.NVD++
	if len(im.ratings) >= importBatch {
		return im.flushRatings(ctx)
	}
	return nil
}

func (im *Importer) flushRatings(ctx context.Context) error {
	if len(im.ratings) == 0 {
		return nil
	}
	if err := im.w.PutRatings(ctx, im.ratings); err != nil {
		return fmt.Errorf("storing ratings: %w", err)
	}
	im.ratings = im.ratings[:0]
	return nil
}

func (im *Importer) importNVDFeed(ctx context.Context, name string, r io.Reader) error {
	_, err := ParseNVDFeed(r, func(rt store.Rating) error { return im.addRating(ctx, rt) })
	if err != nil && ctx.Err() == nil {
		im.fail(name, err)
		return nil
	}
	return err
}

func (im *Importer) importEPSS(ctx context.Context, name string, r io.Reader) error {
	br := bufio.NewReader(r)
	if head, _ := br.Peek(64); !isEPSS(head) {
		return nil // a CSV that is not EPSS's
	}
	n, err := ParseEPSS(br, 1000, func(b []store.Exploit) error { return im.w.PutEPSS(ctx, b) })
	im.stats.EPSS += n
	if n > 0 {
		im.exploited = true
	}
	if err != nil && ctx.Err() == nil {
		im.fail(name, err)
		return nil
	}
	return err
}

// importVEX keeps an OpenVEX or CSAF document, so that its statements
// apply to every image, stored now or later (ApplyStoredVEX).
func (im *Importer) importVEX(ctx context.Context, name string, data []byte) error {
	v := &VEX{}
	format, err := v.ParseVEXDocument(data)
	if err != nil {
		im.fail(name, err)
		return nil
	}
	added, err := im.w.PutVEXDocument(ctx, store.VEXDocument{Digest: oci.SHA256(data), Name: path.Base(strings.ReplaceAll(name, "!", "/")),
		Format: format, Data: data, AddedAt: im.now().UTC(), By: im.source})
	if err != nil {
		return err
	}
	if added {
		im.stats.VEX++
	}
	return nil
}

// Found reports whether the import read anything: records, ratings,
// exploitation facts or VEX documents (or failed on some).
func (s ImportStats) Found() bool {
	return s.Records+s.Skipped+s.NVD+s.KEV+s.EPSS+s.VEX > 0
}

// Enrichment describes what the import read besides advisories, or "".
func (s ImportStats) Enrichment() string {
	var parts []string
	for _, x := range []struct {
		n    int
		what string
	}{{s.NVD, "NVD ratings"}, {s.KEV, "known-exploited entries"}, {s.EPSS, "EPSS scores"}, {s.VEX, "new VEX documents"}, {s.Rated, "advisories rated"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	return strings.Join(parts, ", ")
}
