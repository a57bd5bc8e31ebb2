package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
)

// LineageStore is what lineage reads.
type LineageStore interface {
	Image(ctx context.Context, digest string) (store.Image, error)
	ImagesByChainID(ctx context.Context, chainID string) ([]store.Image, error)
	Tags(ctx context.Context, repository string) ([]store.TagEvent, error)
}

// Link is one image of a lineage.
type Link struct {
	Digest     string   `json:"digest"`
	Repository string   `json:"repository"`
	Tags       []string `json:"tags,omitempty"`
	OS         string   `json:"os,omitempty"`
	Layers     int      `json:"layers"`
	// Via says how this image was found to be the base of the one
	// before: "annotation" (org.opencontainers.image.base.digest),
	// "layers" (its layers are the bottom of the child's), or both.
	Via string `json:"via,omitempty"`
	// Note flags a disagreement, such as an annotation naming an image
	// whose layers are not the child's.
	Note string `json:"note,omitempty"`
}

// Lineage returns the chain of bases of a stored image, the image first
// and the OS image last. A base is found by the base.digest annotation
// when the store knows that image, and otherwise by the longest known
// image whose layers are a prefix of this one's.
func Lineage(ctx context.Context, st LineageStore, digest string) ([]Link, error) {
	var out []Link
	seen := map[string]bool{}
	via := ""
	for digest != "" && !seen[digest] && len(out) < 64 {
		seen[digest] = true
		img, err := st.Image(ctx, digest)
		if err != nil {
			return out, err
		}
		diffIDs, err := storedDiffIDs(img)
		if err != nil {
			return out, fmt.Errorf("image %s: %w", digest, err)
		}
		link := Link{Digest: img.Digest, Repository: img.Repository, OS: img.OS, Layers: len(diffIDs), Via: via}
		if link.Tags, err = tagsOf(ctx, st, img.Repository, img.Digest); err != nil {
			return out, err
		}
		next, v, note, err := baseOf(ctx, st, img, diffIDs)
		if err != nil {
			return out, err
		}
		link.Note = note
		out = append(out, link)
		digest, via = next, v
	}
	return out, nil
}

// baseOf finds the parent of img.
func baseOf(ctx context.Context, st LineageStore, img store.Image, diffIDs []string) (digest, via, note string, err error) {
	byLayers := ""
	chain := oci.ChainIDs(diffIDs)
	for k := len(chain) - 2; k >= 0 && byLayers == ""; k-- {
		cands, err := st.ImagesByChainID(ctx, chain[k])
		if err != nil {
			return "", "", "", err
		}
		for _, c := range cands {
			if c.Digest != img.Digest {
				byLayers = c.Digest
				break
			}
		}
	}
	if ann := img.BaseDigest; ann != "" {
		base, err := st.Image(ctx, ann)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if byLayers == "" {
				return "", "", fmt.Sprintf("built on %s %s, which socle has not seen", img.BaseName, oci.ShortDigest(ann)), nil
			}
		case err != nil:
			return "", "", "", err
		default:
			bd, err := storedDiffIDs(base)
			if err != nil {
				return "", "", "", err
			}
			if !isPrefix(bd, diffIDs) {
				note = fmt.Sprintf("the base annotation names %s, whose layers are not this image's bottom layers (rebuilt without updating the annotation?)", oci.ShortDigest(ann))
				if byLayers != "" {
					return byLayers, "layers", note, nil
				}
				return ann, "annotation", note, nil
			}
			if byLayers == ann {
				return ann, "annotation, layers", "", nil
			}
			return ann, "annotation", "", nil
		}
	}
	if byLayers != "" {
		return byLayers, "layers", note, nil
	}
	return "", "", note, nil
}

func isPrefix(a, b []string) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func storedDiffIDs(img store.Image) ([]string, error) {
	if len(img.Inventory) == 0 {
		return nil, errors.New("no stored inventory")
	}
	return scan.InventoryDiffIDs(img.Inventory)
}

func tagsOf(ctx context.Context, st LineageStore, repo, digest string) ([]string, error) {
	if repo == "" {
		return nil, nil
	}
	evs, err := st.Tags(ctx, repo)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range evs {
		if e.Digest == digest {
			out = append(out, e.Tag)
		}
	}
	return out, nil
}

// WriteLineage prints a lineage, the image first.
func WriteLineage(w io.Writer, links []Link) {
	for i, l := range links {
		name := l.Repository
		if len(l.Tags) > 0 {
			name += ":" + strings.Join(l.Tags, ",")
		}
		indent := strings.Repeat("  ", i)
		prefix := ""
		if i > 0 {
			prefix = "└─ "
		}
		fmt.Fprintf(w, "%s%s%s  %s  (%d layers", indent, prefix, name, oci.ShortDigest(l.Digest), l.Layers)
		if l.OS != "" {
			fmt.Fprintf(w, ", %s", l.OS)
		}
		fmt.Fprint(w, ")")
		if l.Via != "" {
			fmt.Fprintf(w, "  base found by %s", l.Via)
		}
		fmt.Fprintln(w)
		if l.Note != "" {
			fmt.Fprintf(w, "%s   note: %s\n", indent, l.Note)
		}
	}
}

// ImageIndexer stores the SBOM of pushed images with a scanner, and
// records their tags.
type ImageIndexer struct {
	Scanner *scan.Scanner
	Tags    interface {
		PutTag(ctx context.Context, ev store.TagEvent) error
	}
	Now func() time.Time
}

// IndexImage implements Indexer.
func (x ImageIndexer) IndexImage(ctx context.Context, img v1.Image, repository string, tags []string) error {
	src := &source.Image{Image: img, Ref: oci.ImageRef{Transport: oci.TransportRegistry, Path: repository + ":" + tags[0]},
		Repository: repository, Tag: tags[0]}
	inv, err := x.Scanner.Inventory(ctx, src, nil)
	if err != nil {
		return err
	}
	if err := x.Scanner.Index(ctx, inv, repository); err != nil {
		return err
	}
	now := time.Now
	if x.Now != nil {
		now = x.Now
	}
	for _, t := range tags {
		if err := x.Tags.PutTag(ctx, store.TagEvent{Repository: repository, Tag: t, Digest: inv.Digest, At: now().UTC()}); err != nil {
			return err
		}
	}
	return nil
}
