package registry

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// GCOptions configure a garbage collection.
type GCOptions struct {
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
	// Grace keeps blobs written or touched this recently (default 1h):
	// the blobs of a push under way, whose manifest is not there yet.
	Grace time.Duration
}

// GCReport says what a collection found and did.
type GCReport struct {
	Manifests int `json:"manifests"`
	Blobs     int `json:"blobs"`
	// Referenced blobs are named by a manifest; Fresh ones are not, but
	// are younger than the grace period.
	Referenced int `json:"referenced"`
	Fresh      int `json:"fresh"`
	// Removed are the unreferenced blobs past the grace period (the ones
	// that would be, in a dry run), and their bytes.
	Removed []string `json:"removed"`
	Bytes   int64    `json:"bytes"`
	DryRun  bool     `json:"dry_run"`
}

// GC removes the blobs no manifest of any repository references
// (referrers included: they are manifests), mark and sweep. It is safe
// while pushes go on: a blob uploaded, mounted, checked with HEAD or
// named by a manifest push after the collection started is touched, and
// a blob touched within the grace period is kept. Manifests are never
// removed: only what no manifest names.
func (r *Registry) GC(ctx context.Context, o GCOptions) (GCReport, error) {
	if o.Grace <= 0 {
		o.Grace = time.Hour
	}
	start := time.Now()
	rep := GCReport{DryRun: o.DryRun}
	refs, n, err := r.markBlobs()
	if err != nil {
		return rep, err
	}
	rep.Manifests = n
	cutoff := start.Add(-o.Grace)
	err = filepath.WalkDir(r.blobs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.blobs, p)
		digest := filepath.ToSlash(rel)
		algo, hex, ok := cutSlash(digest)
		if !ok {
			return nil
		}
		digest = algo + ":" + hex
		rep.Blobs++
		if refs[digest] > 0 {
			rep.Referenced++
			return nil
		}
		// The check and the removal are one step against touches.
		r.blobMu.Lock()
		defer r.blobMu.Unlock()
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.ModTime().After(cutoff) {
			rep.Fresh++
			return nil
		}
		rep.Removed = append(rep.Removed, digest)
		rep.Bytes += fi.Size()
		if o.DryRun {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	sort.Strings(rep.Removed)
	if err != nil {
		return rep, fmt.Errorf("sweeping blobs: %w", err)
	}
	r.log.Info("registry garbage collection", "dry_run", o.DryRun, "manifests", rep.Manifests, "blobs", rep.Blobs,
		"removed", len(rep.Removed), "bytes", rep.Bytes, "fresh", rep.Fresh)
	return rep, nil
}

func cutSlash(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

// markBlobs counts, for every blob, the manifests that reference it, over
// every manifest of every repository (pending pushes included).
func (r *Registry) markBlobs() (map[string]int, int, error) {
	type key struct{ repo, digest string }
	r.mu.RLock()
	var all []key
	for name, rp := range r.repos {
		for d := range rp.manifests {
			all = append(all, key{name, d})
		}
	}
	r.mu.RUnlock()
	refs := map[string]int{}
	for _, k := range all {
		body, err := os.ReadFile(r.manifestPath(k.repo, k.digest))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since
		}
		if err != nil {
			return nil, 0, err
		}
		ct, _ := os.ReadFile(r.manifestPath(k.repo, k.digest) + ".type")
		m, err := parseManifest(string(ct), body)
		if err != nil {
			continue
		}
		for _, b := range m.Blobs {
			refs[b.Digest.String()]++
		}
	}
	return refs, len(all), nil
}

// referencedBlobs is markBlobs' count of references.
func (r *Registry) referencedBlobs() (map[string]int, error) {
	refs, _, err := r.markBlobs()
	return refs, err
}
