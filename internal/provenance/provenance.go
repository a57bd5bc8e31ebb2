// Package provenance writes and checks SLSA v1 provenance of the images
// socle builds: an in-toto statement, attached as a cosign attestation,
// that records the builder, what it was given (the Dockerfile and
// context digests, build arguments, packages) and the base it built on.
package provenance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/sign"
)

// PredicateType is SLSA provenance v1's (cosign's --type slsaprovenance1).
const PredicateType = "https://slsa.dev/provenance/v1"

// BuildTypePrefix names socle's build types: BuildTypePrefix+"dockerfile/v1"
// and so on.
const BuildTypePrefix = "https://socle.dev/slsa/build/"

// Predicate is the SLSA v1 provenance predicate.
type Predicate struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition is what was built, from what.
type BuildDefinition struct {
	BuildType            string         `json:"buildType"`
	ExternalParameters   map[string]any `json:"externalParameters"`
	InternalParameters   map[string]any `json:"internalParameters,omitempty"`
	ResolvedDependencies []Dependency   `json:"resolvedDependencies,omitempty"`
}

// Dependency is an input resolved to a digest (the base image) or a
// version (a package).
type Dependency struct {
	URI    string            `json:"uri,omitempty"`
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest,omitempty"`
}

// RunDetails is who built it, and when.
type RunDetails struct {
	Builder  Builder  `json:"builder"`
	Metadata Metadata `json:"metadata"`
}

// Builder identifies the build platform and the versions of its parts.
type Builder struct {
	ID      string            `json:"id"`
	Version map[string]string `json:"version,omitempty"`
}

// Metadata is one build's invocation.
type Metadata struct {
	InvocationID string    `json:"invocationId"`
	StartedOn    time.Time `json:"startedOn"`
	FinishedOn   time.Time `json:"finishedOn"`
}

// Base is a dependency on a base image by digest.
func Base(repository, digest string) Dependency {
	algo, hex, _ := cutDigest(digest)
	return Dependency{URI: "oci://" + repository, Name: "base", Digest: map[string]string{algo: hex}}
}

func cutDigest(d string) (string, string, bool) {
	for i := range d {
		if d[i] == ':' {
			return d[:i], d[i+1:], true
		}
	}
	return "sha256", d, false
}

// Attester attaches a signed in-toto statement to an image
// (*sign.Signer is one).
type Attester interface {
	Attest(ctx context.Context, ref name.Digest, predicateType string, predicate []byte, now time.Time, opts ...remote.Option) error
}

// Attest signs p and attaches it to ref.
func Attest(ctx context.Context, a Attester, ref name.Digest, p Predicate, now time.Time, opts ...remote.Option) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return a.Attest(ctx, ref, PredicateType, b, now, opts...)
}

// ErrNone is returned when an image has no provenance signed by the keys.
var ErrNone = errors.New("no SLSA provenance signed by the trusted keys")

// Verify returns the provenance of ref signed by one of keys (and whose
// subject is ref), or ErrNone.
func Verify(ctx context.Context, ref name.Digest, keys []*sign.Verifier, opts ...remote.Option) (*Predicate, string, error) {
	sts, err := sign.VerifyAttestations(ctx, ref, keys, PredicateType, opts...)
	if err != nil {
		return nil, "", err
	}
	if len(sts) == 0 {
		return nil, "", fmt.Errorf("%s: %w", ref, ErrNone)
	}
	var p Predicate
	if err := json.Unmarshal(sts[0].Predicate, &p); err != nil {
		return nil, "", fmt.Errorf("%s: the provenance does not decode: %w", ref, err)
	}
	if p.BuildDefinition.BuildType == "" || p.RunDetails.Builder.ID == "" {
		return nil, "", fmt.Errorf("%s: the provenance has no build type or builder", ref)
	}
	return &p, sts[0].Key, nil
}

// FileDigest is the SHA-256 of a file ("sha256:…").
func FileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// DirDigest is a digest of a directory tree: every entry's path, type,
// mode and content (or link target), in path order. Two trees with the
// same files give the same digest, wherever they are and whenever they
// were written.
func DirDigest(dir string) (string, error) {
	type entry struct {
		path string
		line string
	}
	var entries []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode()
		switch {
		case mode.IsRegular():
			sum, err := FileDigest(p)
			if err != nil {
				return err
			}
			entries = append(entries, entry{rel, fmt.Sprintf("f %o %s %s", mode.Perm(), sum, rel)})
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			entries = append(entries, entry{rel, fmt.Sprintf("l %s -> %s", rel, target)})
		case mode.IsDir():
			entries = append(entries, entry{rel, fmt.Sprintf("d %o %s", mode.Perm(), rel)})
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].path < entries[j].path })
	h := sha256.New()
	for _, e := range entries {
		io.WriteString(h, e.line+"\n")
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}
