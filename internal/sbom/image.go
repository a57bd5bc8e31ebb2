package sbom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"golang.org/x/sync/errgroup"
)

// LayerCache keeps layer analyses between scans, by verified DiffID.
// LayerDiffID returns "" for a blob never verified; LoadLayerAnalysis
// returns nil data and a nil error when nothing is stored; an analysis is
// stored only with the blob digest and DiffID its bytes hashed to.
// ClaimLayerRead waits until the caller may read a blob without another
// reader doing the same work, and returns the release.
type LayerCache interface {
	LayerDiffID(ctx context.Context, digest string) (string, error)
	LoadLayerAnalysis(ctx context.Context, diffID string) ([]byte, error)
	StoreLayerAnalysis(ctx context.Context, digest, diffID string, data []byte) error
	ClaimLayerRead(ctx context.Context, digest string) (release func(), err error)
}

// Progress reports the state of one layer during Inventory.
type Progress struct {
	Layer  int
	Layers int
	Digest string
	Cached bool
	Done   bool
}

// EncodeLayerAnalysis serialises an analysis for a LayerCache.
func EncodeLayerAnalysis(a *LayerAnalysis) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err := json.NewEncoder(zw).Encode(a); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeLayerAnalysis reads what EncodeLayerAnalysis wrote.
func DecodeLayerAnalysis(b []byte) (*LayerAnalysis, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decoding layer analysis: %w", err)
	}
	defer zr.Close()
	var a LayerAnalysis
	if err := json.NewDecoder(io.LimitReader(zr, 1<<30)).Decode(&a); err != nil {
		return nil, fmt.Errorf("decoding layer analysis: %w", err)
	}
	return &a, nil
}

// Inventory analyses every layer of img not already in cache, in
// parallel, and merges the results. cache and progress may be nil.
func (a *Analyzer) Inventory(ctx context.Context, img v1.Image, cache LayerCache, progress func(Progress)) (*Inventory, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("image digest: %w", err)
	}
	mf, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("image manifest: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("image layers: %w", err)
	}
	inv := &Inventory{
		Digest:      digest.String(),
		MediaType:   string(mf.MediaType),
		Config:      mf.Config.Digest.String(),
		Platform:    platformString(cfg),
		Created:     cfg.Created.Time,
		Labels:      cfg.Config.Labels,
		Annotations: mf.Annotations,
		Layers:      make([]LayerInfo, len(layers)),
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) || len(mf.Layers) != len(layers) {
		return nil, fmt.Errorf("%w: the manifest lists %d layers, the config %d DiffIDs", ErrLayerMismatch, len(mf.Layers), len(cfg.RootFS.DiffIDs))
	}
	history := layerHistory(cfg)
	stack := make([]stackedLayer, len(layers))
	var mu sync.Mutex
	report := func(p Progress) {
		if progress != nil {
			mu.Lock()
			progress(p)
			mu.Unlock()
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.workers)
	for i, l := range layers {
		info := LayerInfo{Index: i}
		if i < len(mf.Layers) {
			info.Digest = mf.Layers[i].Digest.String()
			info.Size = mf.Layers[i].Size
			info.MediaType = string(mf.Layers[i].MediaType)
		}
		if i < len(history) {
			info.CreatedBy = history[i]
		}
		// The DiffID the image's config claims for the layer: checked
		// against the bytes before anything of the layer is trusted.
		info.DiffID = cfg.RootFS.DiffIDs[i].String()
		g.Go(func() error {
			report(Progress{Layer: i, Layers: len(layers), Digest: info.Digest})
			an, cached, err := a.layerAnalysis(gctx, l, info, cache)
			if err != nil {
				return err
			}
			info.Cached = cached
			info.Entries = an.Entries
			info.Packages = len(an.Packages)
			info.Bytes = an.Bytes
			info.Warnings = an.Warnings
			stack[i] = stackedLayer{info: info, analysis: an}
			report(Progress{Layer: i, Layers: len(layers), Digest: info.Digest, Cached: cached, Done: true})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, sl := range stack {
		inv.Layers[i] = sl.info
		if sl.info.Cached {
			inv.ReusedLayers++
		}
	}
	present, removed, meta := mergeLayers(stack)
	inv.OS = detectOS(meta)
	for i := range present {
		completeOSPackage(&present[i], inv.OS)
		canonicalPURL(&present[i])
	}
	for i := range removed {
		completeOSPackage(&removed[i], inv.OS)
		canonicalPURL(&removed[i])
	}
	inv.Packages, inv.Removed = present, removed
	inv.AnalyzedAt = a.now().UTC()
	return inv, nil
}

// layerAnalysis returns the analysis of one layer: from the cache when
// its blob was verified before to hold the DiffID the config claims,
// else by reading it, hashing the compressed bytes against the manifest's
// digest and the uncompressed ones against the DiffID as they stream. A
// mismatch fails with a MismatchError, and nothing of that layer is
// cached.
func (a *Analyzer) layerAnalysis(ctx context.Context, l v1.Layer, info LayerInfo, cache LayerCache) (*LayerAnalysis, bool, error) {
	if cache != nil {
		an, err := cachedLayer(ctx, info, cache)
		if an != nil || err != nil {
			return an, an != nil, err
		}
		// Read it, unless another reader stored it while we waited.
		release, err := cache.ClaimLayerRead(ctx, info.Digest)
		if err != nil {
			return nil, false, fmt.Errorf("layer cache: %w", err)
		}
		defer release()
		if an, err := cachedLayer(ctx, info, cache); an != nil || err != nil {
			return an, an != nil, err
		}
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, false, fmt.Errorf("opening layer %d (%s): %w", info.Index, info.Digest, err)
	}
	defer rc.Close()
	vr, err := newVerifyingReader(rc)
	if err != nil {
		return nil, false, fmt.Errorf("layer %d (%s): %w", info.Index, info.Digest, err)
	}
	an, err := a.AnalyzeLayer(ctx, info.DiffID, vr, info.Size)
	if err != nil {
		return nil, false, err
	}
	if _, err := vr.check(info.Index, info.Digest, info.DiffID); err != nil {
		return nil, false, err
	}
	if cache != nil {
		b, err := EncodeLayerAnalysis(an)
		if err != nil {
			return nil, false, err
		}
		if err := cache.StoreLayerAnalysis(ctx, info.Digest, info.DiffID, b); err != nil {
			return nil, false, fmt.Errorf("layer cache: %w", err)
		}
	}
	return an, false, nil
}

// cachedLayer returns the cached analysis of a layer whose blob was
// verified before to hold the DiffID the config claims, or nil.
func cachedLayer(ctx context.Context, info LayerInfo, cache LayerCache) (*LayerAnalysis, error) {
	verified, err := cache.LayerDiffID(ctx, info.Digest)
	if err != nil {
		return nil, fmt.Errorf("layer cache: %w", err)
	}
	if verified == "" {
		return nil, nil
	}
	if verified != info.DiffID {
		return nil, &MismatchError{Index: info.Index, Digest: info.Digest, What: "diff_id", Claimed: info.DiffID, Actual: verified}
	}
	b, err := cache.LoadLayerAnalysis(ctx, verified)
	if err != nil {
		return nil, fmt.Errorf("layer cache: %w", err)
	}
	if b == nil {
		return nil, nil
	}
	an, err := DecodeLayerAnalysis(b)
	if err != nil || an.Analyzer != AnalyzerVersion {
		return nil, nil // stale or unreadable: analysed again and replaced
	}
	return an, nil
}

// layerHistory returns the created_by of the history entries that made a
// layer, in layer order.
func layerHistory(cfg *v1.ConfigFile) []string {
	var out []string
	for _, h := range cfg.History {
		if h.EmptyLayer {
			continue
		}
		out = append(out, h.CreatedBy)
	}
	return out
}

func platformString(cfg *v1.ConfigFile) string {
	if cfg.OS == "" {
		return ""
	}
	s := cfg.OS + "/" + cfg.Architecture
	if cfg.Variant != "" {
		s += "/" + cfg.Variant
	}
	return s
}
