package store

import (
	"context"
	"time"
)

// Image is one analysed image manifest.
type Image struct {
	Digest     string
	Repository string
	MediaType  string
	Config     string
	Platform   string
	Created    time.Time
	// OS is the operating system's pretty name, Ecosystem its OSV
	// ecosystem ("Debian:12").
	OS        string
	Ecosystem string
	// BaseName and BaseDigest identify the parent image.
	BaseName   string
	BaseDigest string
	Layers     []string
	// ChainID identifies the whole layer stack (oci.ChainID of the
	// DiffIDs): an image whose stack is a prefix of another's is its base.
	ChainID string
	Size    int64
	// Inventory is the encoded sbom.Inventory.
	Inventory []byte
	ScannedAt time.Time
	Labels    map[string]string
}

// ImagePackage is one package of an image, linked to its match key.
type ImagePackage struct {
	// Key is what advisories are matched on.
	Key     PackageKey
	Name    string
	Version string
	Type    string
	PURL    string
	Path    string
	// Layer is the digest of the layer that introduced the package.
	Layer      string
	LayerIndex int
	// Extra is what the scanner keeps of the package beyond these fields,
	// opaque to the store: stored once however many images share it, and
	// given back by ImagePackages.
	Extra []byte `json:"-"`
}

// PackageKey is the unit matched against advisories: one version of one
// package name in one ecosystem.
type PackageKey struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	Version   string `json:"version"`
}

// PackageRow is a stored PackageKey.
type PackageRow struct {
	ID int64
	PackageKey
}

// ImageSummary is a row of the fleet view.
type ImageSummary struct {
	Digest     string
	Repository string
	Tags       []string
	Platform   string
	OS         string
	Created    time.Time
	ScannedAt  time.Time
	BaseName   string
	BaseDigest string
	Packages   int
	// Open counts open findings by severity; Fixable those with a fix.
	Open    map[string]int
	Fixable map[string]int
	// Environments where the image is deployed.
	Environments []string
	// KEV counts the open findings CISA lists as known exploited;
	// Threats are the distinct severities and exploitation facts of the
	// open findings, what their risk is computed from.
	KEV     int
	Threats []Threat
}

// Threat is what a finding's risk is made of, beside where it runs.
type Threat struct {
	Severity string
	Score    float64
	KEV      time.Time
	EPSS     float64
}

// ImageFilter narrows Images.
type ImageFilter struct {
	Repository string
	// Limit is the page size (default 1000; All for every image).
	Limit  int
	Offset int
}

// TagEvent is one move of a tag.
type TagEvent struct {
	Repository string
	Tag        string
	Digest     string
	At         time.Time
}

// Images stores image records and their packages.
type Images interface {
	// PutImage records an image and replaces its package list. It
	// returns the packages it stored that had never been matched.
	PutImage(ctx context.Context, img Image, pkgs []ImagePackage) ([]PackageRow, error)
	// Image returns an image record, with its Inventory.
	Image(ctx context.Context, digest string) (Image, error)
	// HasImage reports whether an image is recorded.
	HasImage(ctx context.Context, digest string) (bool, error)
	// ImagesByChainID returns the images whose whole layer stack has
	// this chain ID (without their inventories).
	ImagesByChainID(ctx context.Context, chainID string) ([]Image, error)
	// Images lists image summaries, newest scan first.
	Images(ctx context.Context, f ImageFilter) ([]ImageSummary, error)
	// ImageCount returns the number of images.
	ImageCount(ctx context.Context) (int, error)
	// NewestDigests returns the digests of the n images stored last,
	// newest first.
	NewestDigests(ctx context.Context, n int) ([]string, error)
	// PutTag records that repository:tag points at digest from at on. A
	// tag that already points there is left as is.
	PutTag(ctx context.Context, ev TagEvent) error
	// DeleteTag records that a tag was removed.
	DeleteTag(ctx context.Context, repository, tag string, at time.Time) error
	// Tags returns the current tags of a repository, or of every
	// repository when repository is empty.
	Tags(ctx context.Context, repository string) ([]TagEvent, error)
	// TagHistory returns every digest a tag pointed at, newest first.
	TagHistory(ctx context.Context, repository, tag string) ([]TagEvent, error)
	// ImagePackages returns an image's packages.
	ImagePackages(ctx context.Context, digest string) ([]ImagePackage, error)
}
