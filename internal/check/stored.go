package check

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/zdict"
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
	_, err := k.Run(ctx, repository, digest, img)
	return err
}

// Run is Check, returning the result. Checks are kept by image: the
// result of an image socle has not indexed is returned, not kept.
func (k Keeper) Run(ctx context.Context, repository, digest string, img v1.Image) (*ImageResult, error) {
	annotations := Annotations(img)
	opts := ImageOptions{BaseName: annotations[oci.AnnotationBaseName]}
	if bd := annotations[oci.AnnotationBaseDigest]; bd != "" {
		if base, err := k.St.Image(ctx, bd); err == nil {
			opts.BaseLayers = len(base.Layers)
		}
	}
	res, err := CheckImage(ctx, repository+"@"+digest, img, annotations, opts)
	if err != nil {
		return nil, err
	}
	b, err := EncodeResult(res, repository, digest)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if k.Now != nil {
		now = k.Now
	}
	err = k.St.PutImageCheck(ctx, store.ImageCheck{Digest: digest, Repository: repository, RulesVersion: RulesVersion(),
		CheckedAt: now().UTC(), Result: b})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("keeping the check of %s: %w", digest, err)
	}
	return res, nil
}

// A kept result is stored small, since every image has one: the image's
// name (its repository and digest, which the check's row holds) is left
// out of its findings, and the JSON is compressed with a dictionary of
// what results are made of (the rule catalog's texts, the report's keys,
// common paths): zdict, resultdict/1.json.
type storedResult struct {
	*ImageResult
	// NameInRow: findings whose file and object are empty had the
	// image's name.
	NameInRow bool `json:"name_in_row,omitempty"`
}

//go:embed resultdict/1.json
var resultDict1 []byte

// maxResult bounds what a kept result inflates to.
const maxResult = 64 << 20

var resultCodec = zdict.New(1, resultDict1, maxResult)

// EncodeResult is the kept form of the image check of repository@digest.
func EncodeResult(res *ImageResult, repository, digest string) ([]byte, error) {
	name := repository + "@" + digest
	out := storedResult{ImageResult: &ImageResult{Layers: res.Layers, Findings: slices.Clone(res.Findings)}, NameInRow: true}
	for i := range out.Findings {
		f := &out.Findings[i]
		if f.File == "" && f.Object == "" {
			out.NameInRow = false // an empty name would come back as the image's
		}
		if f.File == name && f.Object == name {
			f.File, f.Object = "", ""
		}
	}
	if !out.NameInRow {
		out.ImageResult = res
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return resultCodec.Encode(b)
}

// DecodeResult reads a kept check: as EncodeResult wrote it, or plain
// JSON (results kept before).
func DecodeResult(c store.ImageCheck) (*ImageResult, error) {
	b := c.Result
	if zdict.Is(b) {
		var err error
		if b, err = resultCodec.Decode(b); err != nil {
			return nil, fmt.Errorf("image check of %s: %w", c.Digest, err)
		}
	}
	r := storedResult{ImageResult: &ImageResult{}}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("image check of %s: %w", c.Digest, err)
	}
	if r.NameInRow {
		name := c.Repository + "@" + c.Digest
		for i := range r.Findings {
			if f := &r.Findings[i]; f.File == "" && f.Object == "" {
				f.File, f.Object = name, name
			}
		}
	}
	return r.ImageResult, nil
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
