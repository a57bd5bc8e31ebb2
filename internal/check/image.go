package check

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/socle-dev/socle/internal/layer"
)

// ImageOptions tune the image rules.
type ImageOptions struct {
	// BaseLayers is how many of the image's first layers are its base's;
	// findings in them are attributed to BaseName.
	BaseLayers int
	BaseName   string
	// Biggest is how many of the largest files the layer report lists
	// (default 10).
	Biggest int
}

// LayerInfo is one layer of the layer report.
type LayerInfo struct {
	Index     int    `json:"index"`
	DiffID    string `json:"diff_id"`
	CreatedBy string `json:"created_by,omitempty"`
	// Bytes are the bytes of the regular files it adds; Files their
	// number.
	Bytes int64 `json:"bytes"`
	Files int   `json:"files"`
	// Wasted are the bytes of this layer's files that later layers
	// replace or delete.
	Wasted int64 `json:"wasted"`
	Base   bool  `json:"base,omitempty"`
}

// FileSize is a file of the final filesystem.
type FileSize struct {
	Path  string `json:"path"`
	Size  int64  `json:"size"`
	Layer int    `json:"layer"`
}

// LayerReport is what Dive shows of an image: where its bytes are, and
// how many are wasted on files later layers replace or delete.
type LayerReport struct {
	Layers []LayerInfo `json:"layers"`
	// Total is every byte the layers add; Final the bytes of the files the
	// image ends up with; Wasted the difference.
	Total  int64 `json:"total"`
	Final  int64 `json:"final"`
	Wasted int64 `json:"wasted"`
	// Efficiency is Final/Total (1 when nothing is wasted).
	Efficiency float64    `json:"efficiency"`
	Biggest    []FileSize `json:"biggest"`
	// WastedFiles are the largest replaced or deleted files.
	WastedFiles []FileSize `json:"wasted_files,omitempty"`
}

// ImageResult is the image rules' findings and the layer report.
type ImageResult struct {
	Findings []Finding   `json:"findings"`
	Layers   LayerReport `json:"layers"`
}

type fileState struct {
	size  int64
	layer int
	mode  uint32 // setuid/setgid bits
}

// setuid and setgid bits.
const (
	modeSetuid = uint32(fs.ModeSetuid)
	modeSetgid = uint32(fs.ModeSetgid)
)

// imageWalker follows the files of an image layer by layer.
type imageWalker struct {
	files  map[string]*fileState
	index  int
	layers []LayerInfo
	wasted []FileSize
}

func (w *imageWalker) Entry(e *layer.Entry, _ io.Reader) error {
	w.replace(e.Path)
	if e.Kind != layer.KindFile {
		return nil
	}
	st := &fileState{size: e.Size, layer: w.index}
	st.mode = uint32(e.Mode & (fs.ModeSetuid | fs.ModeSetgid))
	w.files[e.Path] = st
	w.layers[w.index].Bytes += e.Size
	w.layers[w.index].Files++
	return nil
}

// replace counts what an earlier layer had at p as wasted.
func (w *imageWalker) replace(p string) {
	if old, ok := w.files[p]; ok {
		w.layers[old.layer].Wasted += old.size
		w.wasted = append(w.wasted, FileSize{Path: "/" + p, Size: old.size, Layer: old.layer})
		delete(w.files, p)
	}
}

func (w *imageWalker) Whiteout(wo layer.Whiteout) error {
	if !wo.Opaque {
		w.replace(wo.Path)
	}
	prefix := wo.Path + "/"
	for p, st := range w.files {
		if strings.HasPrefix(p, prefix) && st.layer < w.index {
			w.replace(p)
		}
	}
	return nil
}

// CheckImage reads every layer of an image once and runs the image
// rules: a non-root user, secrets in the environment, labels and
// history, setuid and setgid files, package caches, the catalog's labels;
// and makes the layer report.
func CheckImage(ctx context.Context, ref string, img v1.Image, annotations map[string]string, opts ImageOptions) (*ImageResult, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: reading the config: %w", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	w := &imageWalker{files: map[string]*fileState{}}
	history := nonEmptyHistory(cfg.History)
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		diffID, _ := l.DiffID()
		info := LayerInfo{Index: i, DiffID: diffID.String(), Base: i < opts.BaseLayers}
		if i < len(history) {
			info.CreatedBy = history[i]
		}
		w.layers = append(w.layers, info)
		w.index = i
		size, _ := l.Size()
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, fmt.Errorf("%s: layer %d: %w", ref, i, err)
		}
		err = layer.Walk(rc, size, layer.DefaultLimits, w)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: layer %d: %w", ref, i, err)
		}
	}
	res := &ImageResult{Layers: w.report(opts)}
	res.Findings = append(res.Findings, configFindings(ref, cfg, annotations)...)
	res.Findings = append(res.Findings, w.fileFindings(ref)...)
	for i := range res.Findings {
		f := &res.Findings[i]
		f.File = ref
		if f.Layer == "" {
			continue
		}
		var idx int
		fmt.Sscan(strings.TrimPrefix(f.Layer, "#"), &idx)
		if idx < len(w.layers) {
			f.Layer = w.layers[idx].DiffID
			if idx < opts.BaseLayers {
				f.Base = cmpOr(opts.BaseName, "base")
			}
		}
	}
	return res, nil
}

// nonEmptyHistory lists the created_by of the history entries that made
// a layer, in layer order.
func nonEmptyHistory(h []v1.History) []string {
	var out []string
	for _, e := range h {
		if !e.EmptyLayer {
			out = append(out, e.CreatedBy)
		}
	}
	return out
}

func (w *imageWalker) report(opts ImageOptions) LayerReport {
	r := LayerReport{Layers: w.layers}
	for _, l := range w.layers {
		r.Total += l.Bytes
		r.Wasted += l.Wasted
	}
	r.Final = r.Total - r.Wasted
	r.Efficiency = 1
	if r.Total > 0 {
		r.Efficiency = float64(r.Final) / float64(r.Total)
	}
	n := opts.Biggest
	if n <= 0 {
		n = 10
	}
	for p, st := range w.files {
		r.Biggest = append(r.Biggest, FileSize{Path: "/" + p, Size: st.size, Layer: st.layer})
	}
	r.Biggest = topFiles(r.Biggest, n)
	r.WastedFiles = topFiles(w.wasted, n)
	return r
}

func topFiles(fs []FileSize, n int) []FileSize {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].Size != fs[j].Size {
			return fs[i].Size > fs[j].Size
		}
		return fs[i].Path < fs[j].Path
	})
	if len(fs) > n {
		fs = fs[:n]
	}
	return fs
}

// packageCaches are the directories package managers leave caches in.
var packageCaches = []string{"var/cache/apk/", "var/lib/apt/lists/", "var/cache/apt/archives/", "root/.cache/pip/",
	"root/.npm/_cacache/", "var/cache/yum/", "var/cache/dnf/", "usr/local/share/.cache/yarn/"}

func (w *imageWalker) fileFindings(ref string) []Finding {
	var out []Finding
	paths := make([]string, 0, len(w.files))
	for p := range w.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	cache := map[string]*struct {
		bytes int64
		files int
		layer int
	}{}
	for _, p := range paths {
		st := w.files[p]
		if st.mode != 0 {
			bits := "setuid"
			if st.mode&modeSetuid == 0 {
				bits = "setgid"
			} else if st.mode&modeSetgid != 0 {
				bits = "setuid and setgid"
			}
			f := finding("img-setuid", ref, 0, "/"+p, "/%s is %s", p, bits)
			f.Layer = fmt.Sprintf("#%d", st.layer)
			out = append(out, f)
		}
		for _, dir := range packageCaches {
			if strings.HasPrefix(p, dir) && !strings.HasSuffix(p, "/lock") && !strings.Contains(p, "/partial/") {
				c := cache[dir]
				if c == nil {
					c = &struct {
						bytes int64
						files int
						layer int
					}{layer: st.layer}
					cache[dir] = c
				}
				c.bytes += st.size
				c.files++
				c.layer = max(c.layer, st.layer)
			}
		}
	}
	dirs := make([]string, 0, len(cache))
	for d := range cache {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		c := cache[d]
		f := finding("img-package-cache", ref, 0, "/"+d, "%d files, %d bytes left in /%s", c.files, c.bytes, d)
		f.Layer = fmt.Sprintf("#%d", c.layer)
		out = append(out, f)
	}
	return out
}

// secretValue matches a secret given a value in a command line.
var secretValue = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY)[A-Z_]*\s*[=:]\s*["']?([^\s"'$]{4,})`)

func configFindings(ref string, cfg *v1.ConfigFile, annotations map[string]string) []Finding {
	var out []Finding
	user := strings.Split(cfg.Config.User, ":")[0]
	if user == "" || user == "root" || user == "0" {
		out = append(out, finding("img-root-user", ref, 0, ref, "the image runs as %s", cmpOr(cfg.Config.User, "root (no USER)")))
	}
	for _, kv := range cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		if secretName.MatchString(k) && v != "" {
			out = append(out, finding("img-secret-env", ref, 0, "ENV "+k, "the environment sets %s", k))
		}
	}
	keys := make([]string, 0, len(cfg.Config.Labels))
	for k := range cfg.Config.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if secretName.MatchString(k) && cfg.Config.Labels[k] != "" {
			out = append(out, finding("img-secret-label", ref, 0, "LABEL "+k, "label %s holds a value", k))
		}
	}
	layerIdx := 0
	for _, h := range cfg.History {
		if m := secretValue.FindStringSubmatch(h.CreatedBy); m != nil {
			f := finding("img-secret-history", ref, 0, "history", "a build step records %s", m[1])
			if !h.EmptyLayer {
				f.Layer = fmt.Sprintf("#%d", layerIdx)
			}
			out = append(out, f)
		}
		if !h.EmptyLayer {
			layerIdx++
		}
	}
	var missing []string
	for _, l := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.base.name"} {
		if cfg.Config.Labels[l] == "" && annotations[l] == "" {
			missing = append(missing, strings.TrimPrefix(l, "org.opencontainers.image."))
		}
	}
	if len(missing) > 0 {
		out = append(out, finding("img-labels", ref, 0, ref, "missing the %s label(s)", strings.Join(missing, ", ")))
	}
	return out
}
