package scan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// ImportStore is what importing an SBOM writes besides the index: the
// tag, and reads: the findings.
type ImportStore interface {
	PutTag(ctx context.Context, ev store.TagEvent) error
	ImageFindings(ctx context.Context, digest string) ([]store.Finding, error)
}

// Imported is an SBOM indexed as an image: what was understood, and the
// findings its packages have.
type Imported struct {
	*sbom.Imported
	Digest     string         `json:"digest"`
	Repository string         `json:"repository"`
	Findings   []vuln.Finding `json:"findings"`
}

// ImportSBOM indexes an SBOM made elsewhere as the image image
// (REPOSITORY[:TAG][@DIGEST]; the digest may come from the document):
// its packages are matched and watched like a scanned image's, and a tag
// the reference names is recorded.
func (s *Scanner) ImportSBOM(ctx context.Context, st ImportStore, data []byte, image string, now time.Time) (*Imported, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, fmt.Errorf("image %q: give the image the SBOM describes, as REPOSITORY[:TAG][@DIGEST]", image)
	}
	im, err := sbom.Import(data)
	if err != nil {
		return nil, err
	}
	digest, err := subjectDigest(ref, im.Subject)
	if err != nil {
		return nil, err
	}
	inv := im.Inventory
	inv.Digest, inv.AnalyzedAt = digest, now.UTC()
	repo := ref.Context().Name()
	if err := s.Index(ctx, &inv, repo); err != nil {
		return nil, err
	}
	// A tag the reference names (not the default "latest") is recorded,
	// so that the image is found, and watched, by it.
	if tag, ok := ref.(name.Tag); ok && strings.HasSuffix(image, ":"+tag.TagStr()) {
		if err := st.PutTag(ctx, store.TagEvent{Repository: repo, Tag: tag.TagStr(), Digest: digest, At: now}); err != nil {
			return nil, err
		}
	}
	rows, err := st.ImageFindings(ctx, digest)
	if err != nil {
		return nil, err
	}
	var active []store.Finding
	for _, f := range rows {
		if !f.Withdrawn && f.ClosedAt.IsZero() {
			active = append(active, f)
		}
	}
	out := &Imported{Imported: im, Digest: digest, Repository: repo, Findings: vuln.FromStore(active)}
	out.Inventory = inv
	if out.Findings == nil {
		out.Findings = []vuln.Finding{}
	}
	return out, nil
}

// subjectDigest is the digest of the image an SBOM describes: the one
// the reference gives, else the document's; they must agree.
func subjectDigest(ref name.Reference, subject string) (string, error) {
	if d, ok := ref.(name.Digest); ok {
		if subject != "" && subject != d.DigestStr() {
			return "", fmt.Errorf("the SBOM describes %s, not %s", subject, d.DigestStr())
		}
		return d.DigestStr(), nil
	}
	if subject == "" {
		return "", errors.New("the SBOM names no image digest: give the image as REPOSITORY@sha256:…")
	}
	return subject, nil
}
