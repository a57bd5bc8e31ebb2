package sbom

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing/fstest"
	"time"

	cpb "github.com/google/osv-scalibr/binary/proto/config_go_proto"
	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"
	"github.com/google/osv-scalibr/extractor/filesystem/language/dotnet/depsjson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/golang/gobinary"
	"github.com/google/osv-scalibr/extractor/filesystem/language/java/archive"
	archivemeta "github.com/google/osv-scalibr/extractor/filesystem/language/java/archive/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/language/javascript/packagejson"
	"github.com/google/osv-scalibr/extractor/filesystem/language/python/wheelegg"
	"github.com/google/osv-scalibr/extractor/filesystem/language/ruby/gemspec"
	"github.com/google/osv-scalibr/extractor/filesystem/language/rust/cargoauditable"
	"github.com/google/osv-scalibr/extractor/filesystem/os/apk"
	apkmeta "github.com/google/osv-scalibr/extractor/filesystem/os/apk/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/dpkg"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/rpm"
	rpmmeta "github.com/google/osv-scalibr/extractor/filesystem/os/rpm/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/socle-dev/socle/internal/layer"
	"github.com/socle-dev/socle/internal/order"
)

// File is one entry of a layer, as recorded in its analysis.
type File struct {
	Path string     `json:"p"`
	Kind layer.Kind `json:"k"`
	Size int64      `json:"s,omitempty"`
	Mode uint32     `json:"m,omitempty"`
	Link string     `json:"l,omitempty"`
}

// LayerAnalysis is what one reading of a layer yields. It depends only on
// the layer's content, so it is cached by DiffID. Its memory is bounded
// by the number of entries (MemoryPerEntry each), not by their paths.
type LayerAnalysis struct {
	Analyzer string `json:"analyzer"`
	DiffID   string `json:"diff_id"`
	// Entries counts the layer's entries, whiteouts included.
	Entries int `json:"entries"`
	// Index records every entry by the digest of its path: what the
	// layer replaces, deletes and hides below it.
	Index *FileIndex `json:"index"`
	// MetaFiles are the entries at the paths that identify the operating
	// system, and Meta the content of those that are files.
	MetaFiles []File            `json:"meta_files,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	Packages  []Package         `json:"packages,omitempty"`
	Warnings  []string          `json:"warnings,omitempty"`
	// Bytes is the uncompressed size of the layer.
	Bytes int64 `json:"bytes"`
}

// metaFiles are read whole into LayerAnalysis.Meta.
var metaFiles = map[string]bool{
	"etc/os-release":     true,
	"usr/lib/os-release": true,
	"etc/debian_version": true,
	"etc/alpine-release": true,
	"etc/redhat-release": true,
	"etc/lsb-release":    true,
}

const maxMetaFile = 64 << 10

// Analyzer reads layers with a fixed set of osv-scalibr extractors.
type Analyzer struct {
	extractors []filesystem.Extractor
	limits     layer.Limits
	// maxInMemory is the largest file buffered in memory for an
	// extractor; larger ones go to a temporary file.
	maxInMemory int64
	// maxExtract is the largest file handed to an extractor at all.
	maxExtract int64
	tmpDir     string
	now        func() time.Time
	workers    int
}

// Option configures an Analyzer.
type Option func(*Analyzer) error

// WithLimits bounds what a layer may contain.
func WithLimits(l layer.Limits) Option {
	return func(a *Analyzer) error { a.limits = l; return nil }
}

// WithMaxExtractSize sets the largest file handed to an extractor.
// Larger files are listed but not inspected, and a warning says so.
func WithMaxExtractSize(n int64) Option {
	return func(a *Analyzer) error {
		if n <= 0 {
			return fmt.Errorf("max extract size must be positive, got %d", n)
		}
		a.maxExtract = n
		return nil
	}
}

// WithTempDir sets where files too large to buffer in memory are spooled.
func WithTempDir(dir string) Option {
	return func(a *Analyzer) error { a.tmpDir = dir; return nil }
}

// WithWorkers sets how many layers are read at the same time.
func WithWorkers(n int) Option {
	return func(a *Analyzer) error {
		if n < 1 {
			return fmt.Errorf("workers must be at least 1, got %d", n)
		}
		a.workers = n
		return nil
	}
}

// WithClock sets the clock used for AnalyzedAt, for reproducible output.
func WithClock(now func() time.Time) Option {
	return func(a *Analyzer) error { a.now = now; return nil }
}

// NewAnalyzer returns an Analyzer with socle's extractors: dpkg, apk and
// rpm databases; Go and Rust binaries; Java archives; Python
// dist-info/egg-info; npm package.json; Ruby gemspecs; .NET deps.json.
func NewAnalyzer(opts ...Option) (*Analyzer, error) {
	silenceExtractors()
	a := &Analyzer{
		limits:      layer.DefaultLimits,
		maxInMemory: 64 << 20,
		maxExtract:  1 << 30,
		now:         time.Now,
		workers:     4,
	}
	for _, o := range opts {
		if err := o(a); err != nil {
			return nil, err
		}
	}
	cfg := &cpb.PluginConfig{MaxFileSizeBytes: a.maxExtract}
	javaCfg := &cpb.PluginConfig{
		MaxFileSizeBytes: a.maxExtract,
		PluginSpecific: []*cpb.PluginSpecificConfig{{
			Config: &cpb.PluginSpecificConfig_JavaArchive{JavaArchive: &cpb.JavaArchiveConfig{
				ExtractFromPomXml: proto.Bool(true),
			}},
		}},
	}
	ctors := []struct {
		new func(*cpb.PluginConfig) (filesystem.Extractor, error)
		cfg *cpb.PluginConfig
	}{
		{dpkg.New, cfg}, {apk.New, cfg}, {rpm.New, cfg},
		{gobinary.New, cfg}, {cargoauditable.New, cfg},
		{archive.New, javaCfg}, {wheelegg.New, cfg}, {packagejson.New, cfg},
		{gemspec.New, cfg}, {depsjson.New, cfg},
	}
	for _, c := range ctors {
		e, err := c.new(c.cfg)
		if err != nil {
			return nil, fmt.Errorf("creating extractor: %w", err)
		}
		a.extractors = append(a.extractors, e)
	}
	return a, nil
}

// AnalyzeLayer reads one layer's uncompressed tar stream.
// compressedSize is used to detect decompression bombs; pass 0 if unknown.
func (a *Analyzer) AnalyzeLayer(ctx context.Context, diffID string, r io.Reader, compressedSize int64) (*LayerAnalysis, error) {
	v := &layerVisitor{ctx: ctx, a: a, res: &LayerAnalysis{Analyzer: AnalyzerVersion, DiffID: diffID, Index: &FileIndex{}}}
	cr := &countingReader{r: r}
	if err := layer.Walk(cr, compressedSize, a.limits, v); err != nil {
		return nil, fmt.Errorf("reading layer %s: %w", diffID, err)
	}
	// Drain the tar padding so the byte count is the layer's size.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return nil, fmt.Errorf("reading layer %s: %w", diffID, err)
	}
	v.res.Bytes = cr.n
	v.res.Index.seal()
	order.Stable(v.res.Packages, ComparePackages)
	return v.res, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type layerVisitor struct {
	ctx context.Context
	a   *Analyzer
	res *LayerAnalysis
	buf bytes.Buffer
}

func (v *layerVisitor) Whiteout(w layer.Whiteout) error {
	v.res.Entries++
	if w.Opaque {
		v.res.Index.add(w.Path, entryOpaque, 0)
	} else {
		v.res.Index.add(w.Path, entryWhiteout, 0)
	}
	return nil
}

func (v *layerVisitor) Entry(e *layer.Entry, content io.Reader) error {
	if err := v.ctx.Err(); err != nil {
		return err
	}
	v.res.Entries++
	var flags uint8
	if e.Kind == layer.KindDir {
		flags = entryDir
	}
	v.res.Index.add(e.Path, flags, e.Size)
	if metaFiles[e.Path] {
		v.res.MetaFiles = append(v.res.MetaFiles, File{Path: e.Path, Kind: e.Kind, Size: e.Size, Mode: uint32(e.Mode), Link: e.Link})
	}
	if e.Kind != layer.KindFile {
		return nil
	}
	if metaFiles[e.Path] && e.Size <= maxMetaFile {
		b, err := io.ReadAll(io.LimitReader(content, maxMetaFile))
		if err != nil {
			return err
		}
		if v.res.Meta == nil {
			v.res.Meta = map[string]string{}
		}
		v.res.Meta[e.Path] = string(b)
		return nil
	}
	api := fileAPI{path: e.Path, info: entryInfo{e}}
	var required []filesystem.Extractor
	for _, x := range v.a.extractors {
		if x.FileRequired(api) {
			required = append(required, x)
		}
	}
	if len(required) == 0 {
		return nil
	}
	if e.Size > v.a.maxExtract {
		v.warn("%s: %d bytes, larger than the %d inspected", e.Path, e.Size, v.a.maxExtract)
		return nil
	}
	br := bufio.NewReaderSize(content, 4096)
	required = filterByContent(required, br)
	if len(required) == 0 {
		return nil
	}
	open, cleanup, err := v.spool(e, br)
	if err != nil {
		return err
	}
	defer cleanup()
	for _, x := range required {
		r, err := open()
		if err != nil {
			return err
		}
		v.extract(x, e, r)
	}
	return nil
}

// filterByContent drops the binary extractors for files that are not
// executables of their kind, judged by the first bytes, so that shell
// scripts with an execute bit are never buffered.
func filterByContent(xs []filesystem.Extractor, br *bufio.Reader) []filesystem.Extractor {
	head, _ := br.Peek(4)
	binary := bytes.HasPrefix(head, []byte("\x7fELF")) || bytes.HasPrefix(head, []byte("MZ")) ||
		bytes.HasPrefix(head, []byte{0xfe, 0xed, 0xfa}) || bytes.HasPrefix(head, []byte{0xcf, 0xfa, 0xed, 0xfe}) ||
		bytes.HasPrefix(head, []byte{0xce, 0xfa, 0xed, 0xfe})
	out := xs[:0:0]
	for _, x := range xs {
		switch x.Name() {
		case gobinary.Name, cargoauditable.Name:
			if !binary {
				continue
			}
		}
		out = append(out, x)
	}
	return out
}

// goBuildInfoMagic starts the build information section of every Go
// binary built since Go 1.13; rustAuditSection names the section
// cargo-auditable writes.
var (
	goBuildInfoMagic = []byte("\xff Go buildinf:")
	rustAuditSection = []byte(".dep-v0")
)

// spool makes the content of e readable several times: in memory when
// small, in a temporary file otherwise.
func (v *layerVisitor) spool(e *layer.Entry, r io.Reader) (open func() (io.Reader, error), cleanup func(), err error) {
	if e.Size <= v.a.maxInMemory {
		v.buf.Reset()
		if _, err := io.Copy(&v.buf, r); err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", e.Path, err)
		}
		data := v.buf.Bytes()
		return func() (io.Reader, error) { return bytes.NewReader(data), nil }, func() {}, nil
	}
	f, err := os.CreateTemp(v.a.tmpDir, "socle-layer-*")
	if err != nil {
		return nil, nil, fmt.Errorf("spooling %s: %w", e.Path, err)
	}
	cleanup = func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, r); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("spooling %s: %w", e.Path, err)
	}
	return func() (io.Reader, error) {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, err
		}
		return f, nil
	}, cleanup, nil
}

func (v *layerVisitor) extract(x filesystem.Extractor, e *layer.Entry, r io.Reader) {
	if ra, ok := r.(*bytes.Reader); ok {
		// Skip the Go and Rust extractors on binaries that do not carry
		// their metadata: most ELF files in an OS image are C programs.
		data := make([]byte, ra.Len())
		_, _ = ra.ReadAt(data, 0)
		switch x.Name() {
		case gobinary.Name:
			if !bytes.Contains(data, goBuildInfoMagic) {
				return
			}
		case cargoauditable.Name:
			if !bytes.Contains(data, rustAuditSection) {
				return
			}
		}
	}
	in := &filesystem.ScanInput{
		FS:     fstest.MapFS{},
		Path:   e.Path,
		Info:   entryInfo{e},
		Reader: r,
	}
	inv, err := safeExtract(v.ctx, x, in)
	if err != nil {
		v.warn("%s: %s: %v", x.Name(), e.Path, err)
	}
	for _, p := range inv {
		v.res.Packages = append(v.res.Packages, fromScalibr(p, x.Name(), e.Path))
	}
}

// safeExtract runs one extractor, turning a panic in it into an error so
// that one odd file cannot stop the scan of an image.
func safeExtract(ctx context.Context, x filesystem.Extractor, in *filesystem.ScanInput) (pkgs []*extractor.Package, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("extractor panicked: %v", r)
		}
	}()
	inv, err := x.Extract(ctx, in)
	return inv.Packages, err
}

func (v *layerVisitor) warn(format string, args ...any) {
	const maxWarnings = 100
	if len(v.res.Warnings) < maxWarnings {
		v.res.Warnings = append(v.res.Warnings, fmt.Sprintf(format, args...))
	}
}

// fromScalibr converts an osv-scalibr package into socle's record.
func fromScalibr(p *extractor.Package, extractorName, filePath string) Package {
	out := Package{
		Name:      p.Name,
		Version:   p.Version,
		Type:      p.PURLType,
		Licenses:  p.Licenses,
		Path:      filePath,
		Extractor: extractorName,
	}
	if loc := p.Location.PathOrEmpty(); loc != "" {
		out.Path = loc
	}
	switch m := p.Metadata.(type) {
	case *dpkgmeta.Metadata:
		out.SourceName, out.SourceVersion, out.Arch = m.SourceName, m.SourceVersion, m.Architecture
	case *apkmeta.Metadata:
		out.SourceName, out.Arch = m.OriginName, m.Architecture
	case *rpmmeta.Metadata:
		out.SourceName, out.SourceVersion = splitSourceRPM(m.SourceRPM)
		out.Epoch, out.Arch = m.Epoch, m.Architecture
	case *archivemeta.Metadata:
		if m.GroupID != "" {
			out.Namespace = m.GroupID
		}
		if m.ArtifactID != "" {
			out.Name = m.ArtifactID
		}
	}
	if len(out.Licenses) == 1 && out.Licenses[0] == "" {
		out.Licenses = nil
	}
	if !out.IsOS() {
		out.Ecosystem = p.Ecosystem().String()
		if u := p.PURL(); u != nil {
			out.PURL = u.String()
		}
	}
	return out
}

// splitSourceRPM turns "openssl-3.0.7-24.el9.src.rpm" into
// ("openssl", "3.0.7-24.el9").
func splitSourceRPM(s string) (name, version string) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, ".rpm"), ".src")
	s = strings.TrimSuffix(s, ".nosrc")
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return s, ""
	}
	j := strings.LastIndexByte(s[:i], '-')
	if j <= 0 {
		return s, ""
	}
	return s[:j], s[j+1:]
}

// LessPackage is the order of an inventory's packages: by type,
// namespace, name, version and path.
func LessPackage(a, b *Package) bool { return ComparePackages(a, b) < 0 }

// ComparePackages compares two packages in LessPackage's order.
func ComparePackages(a, b *Package) int {
	return cmp.Or(strings.Compare(a.Type, b.Type), strings.Compare(a.Namespace, b.Namespace),
		strings.Compare(a.Name, b.Name), strings.Compare(a.Version, b.Version), strings.Compare(a.Path, b.Path))
}

// fileAPI and entryInfo present a layer entry to extractors.
type fileAPI struct {
	path string
	info fs.FileInfo
}

func (f fileAPI) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f fileAPI) Path() string               { return f.path }

type entryInfo struct{ e *layer.Entry }

func (i entryInfo) Name() string       { return path.Base(i.e.Path) }
func (i entryInfo) Size() int64        { return i.e.Size }
func (i entryInfo) Mode() fs.FileMode  { return i.e.Mode }
func (i entryInfo) ModTime() time.Time { return i.e.ModTime }
func (i entryInfo) IsDir() bool        { return i.e.Kind == layer.KindDir }
func (i entryInfo) Sys() any           { return nil }

var errNoOS = errors.New("no os-release")
