package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/klauspost/compress/gzip"

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
	SetPackageMatches(ctx context.Context, pkgID int64, matches []store.PackageMatch, closeReasons map[string]string, at time.Time) (store.FindingChanges, error)
}

// Scanner scans images.
type Scanner struct {
	store    Store
	analyzer *sbom.Analyzer
	matcher  *vuln.Matcher
	owner    string
	now      func() time.Time
	log      *slog.Logger
}

// Option configures a Scanner.
type Option func(*Scanner)

// WithOwner names this process in layer claims, so that servers sharing
// a database never analyse the same layer twice at once.
func WithOwner(owner string) Option { return func(s *Scanner) { s.owner = owner } }

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
	}
	for _, o := range opts {
		o(s)
	}
	return s
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
	if s.owner != "" {
		lc = &claimingCache{st: s.store, owner: s.owner}
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
		BaseName:   inv.Annotations["org.opencontainers.image.base.name"],
		BaseDigest: inv.Annotations["org.opencontainers.image.base.digest"],
	}
	for _, l := range inv.Layers {
		rec.Layers = append(rec.Layers, l.Digest)
		rec.Size += l.Size
	}
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
	for _, row := range fresh {
		if err := s.Rematch(ctx, row, nil); err != nil {
			return err
		}
	}
	return nil
}

// Rematch recomputes the advisories matching one stored package version
// and updates its findings. closeReasons explains findings that close.
func (s *Scanner) Rematch(ctx context.Context, row store.PackageRow, closeReasons map[string]string) error {
	active, withdrawn, err := s.matcher.Match(ctx, row.PackageKey)
	if err != nil {
		return err
	}
	ms := make([]store.PackageMatch, 0, len(active))
	for _, m := range active {
		ms = append(ms, store.PackageMatch{AdvisoryID: m.AdvisoryID, FixedVersion: m.FixedVersion})
	}
	if len(withdrawn) > 0 {
		if closeReasons == nil {
			closeReasons = map[string]string{}
		}
		for _, w := range withdrawn {
			closeReasons[w.AdvisoryID] = "advisory withdrawn"
		}
	}
	if _, err := s.store.SetPackageMatches(ctx, row.ID, ms, closeReasons, s.now()); err != nil {
		return fmt.Errorf("recording matches of %s/%s %s: %w", row.Ecosystem, row.Name, row.Version, err)
	}
	return nil
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
// for, not read again.
type claimingCache struct {
	st    store.LayerCache
	owner string
}

const (
	layerLease = 10 * time.Minute
	claimPoll  = 200 * time.Millisecond
)

func (c *claimingCache) LoadLayerAnalysis(ctx context.Context, diffID string) ([]byte, error) {
	for {
		b, err := c.st.LoadLayerAnalysis(ctx, diffID)
		if err != nil || b != nil {
			return b, err
		}
		ok, err := c.st.ClaimLayer(ctx, diffID, c.owner, layerLease)
		if err != nil {
			return nil, err
		}
		if ok {
			return nil, nil // ours to analyse; StoreLayerAnalysis releases it
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(claimPoll):
		}
	}
}

func (c *claimingCache) StoreLayerAnalysis(ctx context.Context, diffID string, data []byte) error {
	if err := c.st.StoreLayerAnalysis(ctx, diffID, data); err != nil {
		return err
	}
	return c.st.ReleaseLayer(ctx, diffID, c.owner)
}
