package scan

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

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
	vex      func(ctx context.Context, digests []string) error
	first    firstMatches
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

// WithVEX makes every indexed or re-matched image go through apply,
// which closes the findings kept VEX documents cover (vuln.StoredVEX).
func WithVEX(apply func(ctx context.Context, digests []string) error) Option {
	return func(s *Scanner) { s.vex = apply }
}

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
	s.claims = &claimingCache{st: st, owner: s.owner, lease: s.lease}
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
	return s.analyzer.Inventory(ctx, img, s.claims, progress)
}

// Index records an inventory in the store and matches the package
// versions the store had never seen, opening their findings.
func (s *Scanner) Index(ctx context.Context, inv *sbom.Inventory, repository string) error {
	pkgs, unkeyed, rebuilt := storedPackages(inv)
	blob, err := encodeInventory(inv, unkeyed, rebuilt)
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
	for i := range inv.Packages {
		if p := &inv.Packages[i]; p.IsOS() && p.Ecosystem != "" {
			rec.Ecosystem = p.Ecosystem
			break
		}
	}
	fresh, err := s.store.PutImage(ctx, rec, pkgs)
	if err != nil {
		return fmt.Errorf("recording image %s: %w", inv.Digest, err)
	}
	if err := s.matchFirst(ctx, fresh); err != nil {
		return err
	}
	return s.applyVEX(ctx, []string{inv.Digest})
}

// Rematch recomputes the advisories matching stored package versions and
// updates their findings, in batches of one transaction each. Findings
// of withdrawn advisories close with that reason.
func (s *Scanner) Rematch(ctx context.Context, rows []store.PackageRow) (store.FindingChanges, error) {
	var total store.FindingChanges
	if len(rows) == 0 {
		return total, nil
	}
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
		total.Add(ch)
	}
	if total.ImagesTruncated {
		// More images changed than listed: the kept VEX documents go
		// through every image.
		return total, s.applyVEXEverywhere(ctx)
	}
	return total, s.applyVEX(ctx, total.Images)
}

// applyVEX applies the kept VEX documents to images whose findings may
// have opened.
func (s *Scanner) applyVEX(ctx context.Context, digests []string) error {
	if s.vex == nil || len(digests) == 0 {
		return nil
	}
	if err := s.vex(ctx, digests); err != nil {
		return fmt.Errorf("applying kept VEX: %w", err)
	}
	return nil
}

// applyVEXEverywhere applies the kept VEX documents to every image.
func (s *Scanner) applyVEXEverywhere(ctx context.Context) error {
	if s.vex == nil {
		return nil
	}
	if err := s.vex(ctx, nil); err != nil {
		return fmt.Errorf("applying kept VEX: %w", err)
	}
	return nil
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

// claimingCache is the layer cache with read claims: concurrent scans of
// this process sharing a layer wait for one another, and with an owner,
// servers sharing a database take a renewed lease on a blob before they
// read it, so that no two read the same layer at once. A lease lapses
// soon after its reader dies, so a crashed server holds nothing up for
// long.
type claimingCache struct {
	st    store.LayerCache
	owner string // "" claims within this process only
	lease time.Duration
	mu    sync.Mutex
	held  map[string]chan struct{} // closed when the reader is done
}

const claimPoll = 200 * time.Millisecond

func (c *claimingCache) LayerDiffID(ctx context.Context, digest string) (string, error) {
	return c.st.LayerDiffID(ctx, digest)
}

func (c *claimingCache) LoadLayerAnalysis(ctx context.Context, diffID string) ([]byte, error) {
	return c.st.LoadLayerAnalysis(ctx, diffID)
}

func (c *claimingCache) StoreLayerAnalysis(ctx context.Context, digest, diffID string, data []byte) error {
	return c.st.StoreLayerAnalysis(ctx, digest, diffID, data)
}

// ClaimLayerRead waits until no other reader of this process, nor any
// server sharing the store, reads the blob, and claims it. The caller
// looks in the cache again, reads the layer if it must, and releases.
func (c *claimingCache) ClaimLayerRead(ctx context.Context, digest string) (func(), error) {
	mine := make(chan struct{})
	for {
		c.mu.Lock()
		other, busy := c.held[digest]
		if !busy {
			if c.held == nil {
				c.held = map[string]chan struct{}{}
			}
			c.held[digest] = mine
		}
		c.mu.Unlock()
		if !busy {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-other:
		}
	}
	local := func() {
		c.mu.Lock()
		delete(c.held, digest)
		c.mu.Unlock()
		close(mine)
	}
	if c.owner == "" {
		return local, nil
	}
	for {
		ok, err := c.st.ClaimLayer(ctx, digest, c.owner, c.lease)
		if err != nil {
			local()
			return nil, err
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			local()
			return nil, ctx.Err()
		case <-time.After(claimPoll):
		}
	}
	// Renew the lease while the reader lives.
	rctx, stop := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(c.lease / 3)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				_, _ = c.st.ClaimLayer(rctx, digest, c.owner, c.lease)
			}
		}
	}()
	return func() {
		stop()
		<-renewed
		_ = c.st.ReleaseLayer(context.WithoutCancel(ctx), digest, c.owner)
		local()
	}, nil
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
