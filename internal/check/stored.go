package check

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/store"
)

// RulesVersion identifies the rule catalog: it changes when a rule is
// added, removed or changes severity, why or fix, and then socle serve
// checks every image again.
func RulesVersion() string {
	b, _ := json.Marshal(Rules())
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// StoredStore is what keeping image checks reads and writes.
type StoredStore interface {
	PutImageCheck(ctx context.Context, c store.ImageCheck) error
	Image(ctx context.Context, digest string) (store.Image, error)
}

// Keeper runs the image rules on images and keeps the results.
type Keeper struct {
	St  StoredStore
	Now func() time.Time
}

// Check runs the image rules on an image and keeps the result. Findings
// in the layers of the base its annotations name (when socle knows the
// base) are attributed to the base.
func (k Keeper) Check(ctx context.Context, repository, digest string, img v1.Image) error {
	annotations := Annotations(img)
	opts := ImageOptions{BaseName: annotations[oci.AnnotationBaseName]}
	if bd := annotations[oci.AnnotationBaseDigest]; bd != "" {
		if base, err := k.St.Image(ctx, bd); err == nil {
			opts.BaseLayers = len(base.Layers)
		}
	}
	res, err := CheckImage(ctx, repository+"@"+digest, img, annotations, opts)
	if err != nil {
		return err
	}
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	now := time.Now
	if k.Now != nil {
		now = k.Now
	}
	if err := k.St.PutImageCheck(ctx, store.ImageCheck{Digest: digest, Repository: repository, RulesVersion: RulesVersion(),
		CheckedAt: now().UTC(), Result: b}); err != nil {
		return fmt.Errorf("keeping the check of %s: %w", digest, err)
	}
	return nil
}

// DecodeResult reads a kept check.
func DecodeResult(c store.ImageCheck) (*ImageResult, error) {
	var r ImageResult
	if err := json.Unmarshal(c.Result, &r); err != nil {
		return nil, fmt.Errorf("image check of %s: %w", c.Digest, err)
	}
	return &r, nil
}

// Annotations are an image's manifest annotations (the base annotations
// socle's builds write); none when the manifest cannot be read.
func Annotations(img v1.Image) map[string]string {
	out := map[string]string{}
	if m, err := img.Manifest(); err == nil {
		for a, v := range m.Annotations {
			out[a] = v
		}
	}
	return out
}
