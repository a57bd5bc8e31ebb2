package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/klauspost/compress/gzip"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// Store is what a scan reads and writes.
type Store interface {
	store.LayerCache
	vuln.AffectedSource
	PutImage(ctx context.Context, img store.Image, pkgs []store.ImagePackage) ([]store.PackageRow, error)
	SetMatches(ctx context.Context, updates []store.MatchUpdate, at time.Time) (store.FindingChanges, error)
}

// Scanner scans images.
type Scanner struct {
	store    Store
	analyzer *sbom.Analyzer
	matcher  *vuln.Matcher
	owner    string
	lease    time.Duration
	claims   *claimingCache
	now      func() time.Time
	log      *slog.Logger
}

// Option configures a Scanner.
type Option func(*Scanner)

// WithOwner names this process in layer claims, so that servers sharing
// a database never analyse the same layer twice at once.
func WithOwner(owner string) Option { return func(s *Scanner) { s.owner = owner } }

// WithClaimLease sets how long a layer claim lasts without renewal: how
// long a crashed server's layer holds others up (default 30s).
func WithClaimLease(d time.Duration) Option { return func(s *Scanner) { s.lease = d } }

// WithLogger gives the scanner a logger; it is silent otherwise.
func WithLogger(l *slog.Logger) Option { return func(s *Scanner) { s.log = l } }

// WithClock sets the clock used for recorded times.
func WithClock(now func() time.Time) Option { return func(s *Scanner) { s.now = now } }

// New returns a Scanner.
func New(st Store, a *sbom.Analyzer, opts ...Option) *Scanner {
	s := &Scanner{
		store:    st,
		analyzer: a,
		matcher:  vuln.NewMatcher(st),
		now:      time.Now,
		log:      slog.New(slog.DiscardHandler),
		lease:    30 * time.Second,
	}
	for _, o := range opts {
		o(s)
	}
	if s.owner != "" {
		s.claims = &claimingCache{st: st, owner: s.owner, lease: s.lease}
	}
	return s
}

// NewWithAnalyzer returns a Scanner with socle's default analyzer (every
// extractor; large files spooled to the system's temporary directory).
func NewWithAnalyzer(st Store, opts ...Option) (*Scanner, error) {
	an, err := sbom.NewAnalyzer(sbom.WithTempDir(os.TempDir()))
	if err != nil {
		return nil, err
	}
	return New(st, an, opts...), nil
}

// Matcher returns the scanner's matcher.
func (s *Scanner) Matcher() *vuln.Matcher { return s.matcher }

// Result is the outcome of scanning one image.
type Result struct {
	Ref        string          `json:"ref"`
	Repository string          `json:"repository,omitempty"`
	Tag        string          `json:"tag,omitempty"`
	Inventory  *sbom.Inventory `json:"inventory"`
	// Findings are open vulnerabilities, aliases merged per package.
	Findings []vuln.Finding `json:"findings"`
	// Withdrawn are matches of withdrawn advisories, shown apart.
	Withdrawn []vuln.Finding `json:"withdrawn,omitempty"`
	// Suppressed are findings a VEX statement hid.
	Suppressed []vuln.Finding `json:"suppressed,omitempty"`
}

// Progress reports layer progress during Inventory.
type Progress = sbom.Progress

// Inventory builds the inventory of an opened image, reading only the
// layers the cache does not hold.
func (s *Scanner) Inventory(ctx context.Context, img *source.Image, progress func(Progress)) (*sbom.Inventory, error) {
	var lc sbom.LayerCache = s.store
	if s.claims != nil {
		lc = s.claims
	}
	return s.analyzer.Inventory(ctx, img, lc, progress)
}

// Index records an inventory in the store and matches the package
// versions the store had never seen, opening their findings.
func (s *Scanner) Index(ctx context.Context, inv *sbom.Inventory, repository string) error {
	blob, err := EncodeInventory(inv)
	if err != nil {
		return err
	}
	rec := store.Image{
		Digest:     inv.Digest,
		Repository: repository,
		MediaType:  inv.MediaType,
		Config:     inv.Config,
		Platform:   inv.Platform,
		Created:    inv.Created,
		OS:         inv.OS.String(),
		Inventory:  blob,
		ScannedAt:  s.now(),
		Labels:     inv.Labels,
		BaseName:   inv.Annotations[oci.AnnotationBaseName],
		BaseDigest: inv.Annotations[oci.AnnotationBaseDigest],
	}
	diffIDs := make([]string, 0, len(inv.Layers))
	for _, l := range inv.Layers {
		rec.Layers = append(rec.Layers, l.Digest)
		rec.Size += l.Size
		diffIDs = append(diffIDs, l.DiffID)
	}
	rec.ChainID = oci.ChainID(diffIDs)
	var pkgs []store.ImagePackage
	for i := range inv.Packages {
		p := &inv.Packages[i]
		if rec.Ecosystem == "" && p.IsOS() {
			rec.Ecosystem = p.Ecosystem
		}
		key, ok := vuln.KeyOf(p)
		if !ok {
			continue
		}
		pkgs = append(pkgs, store.ImagePackage{
			Key: key, Name: p.Name, Version: p.Version, Type: p.Type, PURL: p.PURL,
			Path: p.Path, Layer: p.Layer, LayerIndex: p.LayerIndex,
		})
	}
	fresh, err := s.store.PutImage(ctx, rec, pkgs)
	if err != nil {
		return fmt.Errorf("recording image %s: %w", inv.Digest, err)
	}
	_, err = s.Rematch(ctx, fresh)
	return err
}

// Rematch recomputes the advisories matching stored package versions and
// updates their findings, in batches of one transaction each. Findings
// of withdrawn advisories close with that reason.
func (s *Scanner) Rematch(ctx context.Context, rows []store.PackageRow) (store.FindingChanges, error) {
	var total store.FindingChanges
	if err := s.matcher.Refresh(ctx); err != nil {
		return total, err
	}
	for _, batch := range batches(rows, 200) {
		updates := make([]store.MatchUpdate, 0, len(batch))
		for _, row := range batch {
			active, withdrawn, err := s.matcher.Match(ctx, row.PackageKey)
			if err != nil {
				return total, err
			}
			u := store.MatchUpdate{PackageID: row.ID, Matches: make([]store.PackageMatch, 0, len(active))}
			for _, m := range active {
				u.Matches = append(u.Matches, store.PackageMatch{AdvisoryID: m.AdvisoryID, FixedVersion: m.FixedVersion})
			}
			if len(withdrawn) > 0 {
				u.CloseReasons = map[string]string{}
				for _, w := range withdrawn {
					u.CloseReasons[w.AdvisoryID] = "advisory withdrawn"
				}
			}
			updates = append(updates, u)
		}
		ch, err := s.store.SetMatches(ctx, updates, s.now())
		if err != nil {
			return total, fmt.Errorf("recording matches: %w", err)
		}
		total.Opened += ch.Opened
		total.OpenedFixable += ch.OpenedFixable
		total.Closed += ch.Closed
		total.Images = append(total.Images, ch.Images...)
	}
	return total, nil
}

func batches[T any](v []T, n int) [][]T {
	var out [][]T
	for len(v) > n {
		out = append(out, v[:n])
		v = v[n:]
	}
	if len(v) > 0 {
		out = append(out, v)
	}
	return out
}

// Options narrow what Scan reports.
type Options struct {
	// Index records the image and its findings in the store.
	Index bool
	// VEX suppresses findings it declares not_affected or fixed.
	VEX *vuln.VEX
	// Progress receives layer progress.
	Progress func(Progress)
}

// Scan inventories an opened image and matches its packages.
func (s *Scanner) Scan(ctx context.Context, img *source.Image, opts Options) (*Result, error) {
	start := s.now()
	inv, err := s.Inventory(ctx, img, opts.Progress)
	if err != nil {
		return nil, err
	}
	if opts.Index {
		if err := s.Index(ctx, inv, img.Repository); err != nil {
			return nil, err
		}
	}
	findings, withdrawn, err := vuln.FindingsFor(ctx, s.matcher, inv.Packages)
	if err != nil {
		return nil, err
	}
	res := &Result{
		Ref: img.Ref.String(), Repository: img.Repository, Tag: img.Tag,
		Inventory: inv, Findings: findings, Withdrawn: withdrawn,
	}
	if opts.VEX != nil {
		res.Findings, res.Suppressed = opts.VEX.Apply(inv.Digest, res.Findings)
	}
	s.log.Info("scanned image", "ref", res.Ref, "digest", inv.Digest, "packages", len(inv.Packages),
		"findings", len(res.Findings), "layers", len(inv.Layers), "reused_layers", inv.ReusedLayers,
		"duration", s.now().Sub(start))
	return res, nil
}

// EncodeInventory serialises an inventory for the store.
func EncodeInventory(inv *sbom.Inventory) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(inv); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeInventory reads what EncodeInventory wrote.
func DecodeInventory(b []byte) (*sbom.Inventory, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decoding inventory: %w", err)
	}
	defer zr.Close()
	var inv sbom.Inventory
	if err := json.NewDecoder(io.LimitReader(zr, 1<<30)).Decode(&inv); err != nil {
		return nil, fmt.Errorf("decoding inventory: %w", err)
	}
	return &inv, nil
}

// claimingCache wraps the layer cache with leases, so that when several
// servers share a database, a layer one of them is reading is waited
// for, not read again; within one process, concurrent scans of images
// sharing a layer wait for each other the same way. A lease is renewed
// while its reader lives, and lapses soon after a reader dies, so a
// crashed server holds nothing up for long.
type claimingCache struct {
	st    store.LayerCache
	owner string
	lease time.Duration
	mu    sync.Mutex
	held  map[string]*holding
}

// holding is this process's claim on one layer.
type holding struct {
	done chan struct{} // closed when the claim ends
	once sync.Once
	stop context.CancelFunc
}

func (h *holding) end() { h.once.Do(func() { h.stop(); close(h.done) }) }

const claimPoll = 200 * time.Millisecond

// LayerDiffID answers from the store; for a blob never verified, it
// first waits for another reader of it (in this process, or in another
// server sharing the store) and claims it, so that "" means: ours to
// read. StoreLayerAnalysis releases the claim.
func (c *claimingCache) LayerDiffID(ctx context.Context, digest string) (string, error) {
	for {
		d, err := c.st.LayerDiffID(ctx, digest)
		if err != nil || d != "" {
			return d, err
		}
		// Wait for another scan of this process reading the same blob.
		c.mu.Lock()
		if h, ok := c.held[digest]; ok {
			c.mu.Unlock()
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-h.done:
			}
			continue
		}
		ok, err := c.st.ClaimLayer(ctx, digest, c.owner, c.lease)
		if err != nil {
			c.mu.Unlock()
			return "", err
		}
		if ok {
			// Another reader may have stored it between our look and our
			// claim: look again before reading the layer.
			d, err := c.st.LayerDiffID(ctx, digest)
			if err != nil || d != "" {
				c.mu.Unlock()
				_ = c.st.ReleaseLayer(ctx, digest, c.owner)
				return d, err
			}
			c.hold(ctx, digest)
			c.mu.Unlock()
			return "", nil // ours to read; StoreLayerAnalysis releases it
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(claimPoll):
		}
	}
}

func (c *claimingCache) LoadLayerAnalysis(ctx context.Context, digest string) ([]byte, error) {
	return c.st.LoadLayerAnalysis(ctx, digest)
}

// hold records a claim and renews it until the analysis is stored or the
// reader's context ends. c.mu is held.
func (c *claimingCache) hold(ctx context.Context, digest string) {
	rctx, cancel := context.WithCancel(ctx)
	h := &holding{done: make(chan struct{}), stop: cancel}
	if c.held == nil {
		c.held = map[string]*holding{}
	}
	c.held[digest] = h
	go func() {
		t := time.NewTicker(c.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				c.drop(digest, h)
				return
			case <-t.C:
				_, _ = c.st.ClaimLayer(rctx, digest, c.owner, c.lease)
			}
		}
	}()
}

// drop ends a holding, letting waiting scans of this process go on.
func (c *claimingCache) drop(digest string, h *holding) {
	c.mu.Lock()
	if c.held[digest] == h {
		delete(c.held, digest)
	}
	c.mu.Unlock()
	h.end()
}

func (c *claimingCache) StoreLayerAnalysis(ctx context.Context, digest, diffID string, data []byte) error {
	err := c.st.StoreLayerAnalysis(ctx, digest, diffID, data)
	if err == nil {
		err = c.st.ReleaseLayer(ctx, digest, c.owner)
	}
	c.mu.Lock()
	h := c.held[digest]
	c.mu.Unlock()
	if h != nil {
		c.drop(digest, h)
	}
	return err
}

// InventoryRef opens ref and inventories it through the layer cache.
// The returned source is closed; its names (Repository, Tag) remain.
func (s *Scanner) InventoryRef(ctx context.Context, ref oci.ImageRef, sopts source.Options, progress func(Progress)) (*sbom.Inventory, *source.Image, error) {
	img, err := source.Open(ctx, ref, sopts)
	if err != nil {
		return nil, nil, err
	}
	defer img.Close()
	inv, err := s.Inventory(ctx, img, progress)
	return inv, img, err
}

// ImageLookup says whether the store knows an image.
type ImageLookup interface {
	HasImage(ctx context.Context, digest string) (bool, error)
}

// EnsureIndexed inventories and indexes a registry image the store does
// not know; one it knows is left as is.
func (s *Scanner) EnsureIndexed(ctx context.Context, known ImageLookup, ref name.Digest, sopts source.Options) error {
	if ok, err := known.HasImage(ctx, ref.DigestStr()); err != nil || ok {
		return err
	}
	inv, _, err := s.InventoryRef(ctx, oci.ImageRef{Transport: oci.TransportRegistry, Path: ref.String()}, sopts, nil)
	if err != nil {
		return err
	}
	return s.Index(ctx, inv, ref.Context().Name())
}
