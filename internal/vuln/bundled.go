package vuln

import (
	"context"
	"embed"
	"io/fs"
	"time"
)

//go:embed bundled/*.json bundled/*.yaml
var bundledFS embed.FS

// BundledSource names the bundled sample in the store and in messages.
const BundledSource = "bundled-sample"

// bundledTime dates the bundled records' import, so that importing them
// twice changes nothing.
var bundledTime = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

// ImportBundled loads the small sample of advisories embedded in the
// binary. It is labelled BundledSource, and is no substitute for a feed.
func ImportBundled(ctx context.Context, w AdvisoryWriter) (ImportStats, error) {
	im := NewImporter(w, BundledSource)
	entries, err := fs.ReadDir(bundledFS, "bundled")
	if err != nil {
		return ImportStats{}, err
	}
	for _, e := range entries {
		f, err := bundledFS.Open("bundled/" + e.Name())
		if err != nil {
			return ImportStats{}, err
		}
		err = im.ImportReader(ctx, e.Name(), f, bundledTime)
		f.Close()
		if err != nil {
			return ImportStats{}, err
		}
	}
	return im.Finish(ctx)
}
