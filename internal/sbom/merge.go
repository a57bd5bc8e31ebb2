package sbom

import (
	"sort"
	"strings"

	"github.com/socle-dev/socle/internal/layer"
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
		// Whiteouts, opaque directories and files written over a lower
		// directory hide what lower layers wrote below them; this
		// layer's own entries are applied after.
		hide := hiddenBy(a)
		for p, pkgs := range byPath {
			if hide(p) {
				remove(info, pkgs)
				delete(byPath, p)
			}
		}
		for p := range meta {
			if hide(p) {
				delete(meta, p)
			}
		}
		ownByPath := map[string][]Package{}
		for _, p := range a.Packages {
			ownByPath[p.Path] = append(ownByPath[p.Path], p)
		}
		replaced := map[string][]Package{}
		for _, f := range a.Files {
			if old, ok := byPath[f.Path]; ok {
				replaced[f.Path] = old
				delete(byPath, f.Path)
			}
			if metaFiles[f.Path] {
				switch f.Kind {
				case layer.KindSymlink:
					meta[f.Path] = metaEntry{link: f.Link}
				case layer.KindFile:
					if c, ok := a.Meta[f.Path]; ok {
						meta[f.Path] = metaEntry{content: c}
					} else {
						delete(meta, f.Path)
					}
				default:
					delete(meta, f.Path)
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
	sort.SliceStable(present, func(i, j int) bool { return lessPackage(&present[i], &present[j]) })
	sort.SliceStable(removed, func(i, j int) bool { return lessPackage(&removed[i], &removed[j]) })
	return present, removed, meta
}

// hiddenBy returns a predicate telling whether a path written by a lower
// layer is hidden by layer a: whited out itself, or below a whited-out
// path, an opaque directory, or a non-directory entry of a.
func hiddenBy(a *LayerAnalysis) func(string) bool {
	if len(a.Whiteouts) == 0 && len(a.Opaques) == 0 && len(a.Files) == 0 {
		return func(string) bool { return false }
	}
	gone := make(map[string]bool, len(a.Whiteouts))
	for _, w := range a.Whiteouts {
		gone[w] = true
	}
	below := make(map[string]bool, len(a.Whiteouts)+len(a.Opaques))
	for _, w := range a.Whiteouts {
		below[w] = true
	}
	for _, o := range a.Opaques {
		below[o] = true
	}
	for _, f := range a.Files {
		if f.Kind != layer.KindDir {
			below[f.Path] = true
		}
	}
	return func(p string) bool {
		if gone[p] {
			return true
		}
		if below[""] {
			return true
		}
		for d := parentDir(p); d != ""; d = parentDir(d) {
			if below[d] {
				return true
			}
		}
		return false
	}
}

func parentDir(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ""
	}
	return p[:i]
}
