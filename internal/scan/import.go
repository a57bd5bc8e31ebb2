package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// ImportStore is what importing an SBOM writes besides the index: the
// tag, and reads: the findings.
type ImportStore interface {
	PutTag(ctx context.Context, ev store.TagEvent) error
	ImageFindings(ctx context.Context, digest string) ([]store.Finding, error)
	HasImage(ctx context.Context, digest string) (bool, error)
	PutImportedSBOM(ctx context.Context, s store.ImportedSBOM) error
}

// Imported is an SBOM indexed as an image: what was understood, and the
// findings its packages have.
type Imported struct {
	*sbom.Imported
	Digest     string         `json:"digest"`
	Repository string         `json:"repository"`
	Findings   []vuln.Finding `json:"findings"`
	// Compared is true when socle already knew the image: the SBOM was
	// kept to compare with, its inventory not replaced.
	Compared bool `json:"compared"`
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
	var lines []string
	for _, p := range inv.Packages {
		lines = append(lines, p.Name+" "+p.Version)
	}
	sort.Strings(lines)
	if err := st.PutImportedSBOM(ctx, store.ImportedSBOM{Digest: digest, Format: im.Format, Tools: strings.Join(im.Tools, ", "),
		ImportedAt: now.UTC(), Packages: lines}); err != nil {
		return nil, err
	}
	known, err := st.HasImage(ctx, digest)
	if err != nil {
		return nil, err
	}
	if known {
		// socle knows the image already (its own scan, or an earlier
		// import): the SBOM is kept to compare with, not to replace it.
		im.Problems = append(im.Problems, "socle already knows "+digest+": this SBOM is kept for comparison (the image page shows where the two differ); findings are socle's")
	} else if err := s.Index(ctx, &inv, repo); err != nil {
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
	out := &Imported{Imported: im, Digest: digest, Repository: repo, Findings: vuln.FromStore(active), Compared: known}
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

// SBOM predicate types an imported attestation may carry.
var sbomPredicates = map[string]bool{
	sign.PredicateCycloneDX: true, "https://cyclonedx.org/schema": true,
	sign.PredicateSPDX: true, "https://spdx.dev/Document/v2.3": true,
}

// AttestedSBOM opens a cosign SBOM attestation (a DSSE envelope, as
// cosign attest --type cyclonedx|spdxjson writes it) only when one of
// keys signed it, and returns its SBOM, the image reference with the
// statement's subject as digest, and the key that verified it. A
// reference naming another digest is refused.
func AttestedSBOM(envelope []byte, keys []*sign.Verifier, image string) (sbomDoc []byte, imageRef, key string, err error) {
	typ, payload, key, err := sign.VerifyDSSE(envelope, keys)
	if err != nil {
		return nil, "", "", err
	}
	if typ != "application/vnd.in-toto+json" {
		return nil, "", "", fmt.Errorf("the envelope holds %s, not an in-toto statement", typ)
	}
	var stmt struct {
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &stmt); err != nil {
		return nil, "", "", fmt.Errorf("the statement: %w", err)
	}
	if !sbomPredicates[stmt.PredicateType] {
		return nil, "", "", fmt.Errorf("the statement's predicate is %s, not an SBOM", stmt.PredicateType)
	}
	var asString string
	if json.Unmarshal(stmt.Predicate, &asString) == nil {
		// cosign attest --type spdx keeps the document as a string.
		stmt.Predicate = json.RawMessage(asString)
	}
	if len(stmt.Subject) != 1 || stmt.Subject[0].Digest["sha256"] == "" {
		return nil, "", "", errors.New("the statement names no single sha256 subject")
	}
	subject := "sha256:" + stmt.Subject[0].Digest["sha256"]
	ref, err := name.ParseReference(image)
	if err != nil {
		return nil, "", "", fmt.Errorf("image %q: %w", image, err)
	}
	if d, ok := ref.(name.Digest); ok {
		if d.DigestStr() != subject {
			return nil, "", "", fmt.Errorf("the attestation is about %s, not %s", subject, d.DigestStr())
		}
		return stmt.Predicate, image, key, nil
	}
	return stmt.Predicate, image + "@" + subject, key, nil
}
