package sbom

import (
	"github.com/socle-dev/socle/internal/layer"
	"github.com/socle-dev/socle/internal/order"
)

// stackedLayer is one layer's analysis with its place in an image.
type stackedLayer struct {
	info     LayerInfo
	analysis *LayerAnalysis
}

// metaEntry is the state of an OS identification path in the merged view.
type metaEntry struct {
	content string
	link    string // set when the path is a symbolic link
}

// mergeLayers applies the layers bottom-up, as a container runtime would
// stack them, without reading any layer again. A package survives while
// the file it was read from survives; when a layer rewrites that file,
// packages it still lists keep the layer that first introduced them, and
// those it no longer lists are recorded as removed by that layer.
func mergeLayers(layers []stackedLayer) (present, removed []Package, meta map[string]metaEntry) {
	byPath := map[string][]Package{}
	meta = map[string]metaEntry{}
	remove := func(l LayerInfo, pkgs []Package) {
		for _, p := range pkgs {
			p.RemovedBy = l.Digest
			removed = append(removed, p)
		}
	}
	for _, sl := range layers {
		a, info := sl.analysis, sl.info
		idx := a.Index
		if idx == nil {
			idx = &FileIndex{}
		}
		// Whiteouts, opaque directories and files written over a lower
		// directory hide what lower layers wrote below them; this
		// layer's own entries are applied after.
		for p, pkgs := range byPath {
			if idx.hides(p) {
				remove(info, pkgs)
				delete(byPath, p)
			}
		}
		for p := range meta {
			if idx.hides(p) {
				delete(meta, p)
			}
		}
		ownByPath := map[string][]Package{}
		for _, p := range a.Packages {
			ownByPath[p.Path] = append(ownByPath[p.Path], p)
		}
		// A lower package database this layer writes again is replaced.
		replaced := map[string][]Package{}
		for p, old := range byPath {
			if idx.has(p) {
				replaced[p] = old
				delete(byPath, p)
			}
		}
		for mp := range metaFiles {
			if idx.has(mp) {
				delete(meta, mp)
			}
		}
		for _, f := range a.MetaFiles {
			switch f.Kind {
			case layer.KindSymlink:
				meta[f.Path] = metaEntry{link: f.Link}
			case layer.KindFile:
				if c, ok := a.Meta[f.Path]; ok {
					meta[f.Path] = metaEntry{content: c}
				}
			}
		}
		for p, old := range replaced {
			if _, ok := ownByPath[p]; !ok {
				remove(info, old)
			}
		}
		for p, own := range ownByPath {
			prev := map[string]Package{}
			for _, o := range replaced[p] {
				prev[o.identity()] = o
			}
			merged := make([]Package, 0, len(own))
			for _, n := range own {
				id := n.identity()
				if o, ok := prev[id]; ok {
					n.Layer, n.LayerIndex = o.Layer, o.LayerIndex
					delete(prev, id)
				} else {
					n.Layer, n.LayerIndex = info.Digest, info.Index
				}
				merged = append(merged, n)
			}
			for _, o := range prev {
				o.RemovedBy = info.Digest
				removed = append(removed, o)
			}
			byPath[p] = merged
		}
	}
	for _, pkgs := range byPath {
		present = append(present, pkgs...)
	}
	order.Stable(present, ComparePackages)
	order.Stable(removed, ComparePackages)
	return present, removed, meta
}
