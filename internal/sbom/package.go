package sbom

import (
	"time"
)

// AnalyzerVersion names the layer analysis format. Cached layer results
// made by another version are analysed again.
const AnalyzerVersion = "socle-layer/4"

// Package is one software package found in an image.
type Package struct {
	// Name and Version are the package's own, as its package database
	// or metadata file states them (for Debian, the binary package).
	Name    string `json:"name"`
	Version string `json:"version"`
	// Type is the package URL type: deb, apk, rpm, golang, maven, pypi,
	// npm, gem, cargo, nuget.
	Type string `json:"type"`
	// SourceName and SourceVersion are the source package for OS
	// packages (dpkg Source, apk origin, rpm source RPM), which is the
	// name distribution advisories use.
	SourceName    string `json:"source_name,omitempty"`
	SourceVersion string `json:"source_version,omitempty"`
	Epoch         int    `json:"epoch,omitempty"`
	Arch          string `json:"arch,omitempty"`
	// Namespace is the group (Maven) or scope the name lives in.
	Namespace string   `json:"namespace,omitempty"`
	Licenses  []string `json:"licenses,omitempty"`
	// Path is the file the package was read from: a package database, a
	// binary, an archive, a metadata file.
	Path string `json:"path"`
	// Extractor is the osv-scalibr extractor that found the package.
	Extractor string `json:"extractor"`
	// Ecosystem is the OSV ecosystem ("Debian:12", "Alpine:v3.10", "Go").
	// For OS packages it is known only once the image's os-release is.
	Ecosystem string `json:"ecosystem,omitempty"`
	// PURL is the package URL.
	PURL string `json:"purl,omitempty"`
	// Layer is the digest of the layer that introduced this version of
	// the package; LayerIndex is its position, 0 for the bottom layer.
	Layer      string `json:"layer,omitempty"`
	LayerIndex int    `json:"layer_index"`
	// RemovedBy is the digest of the layer that removed or replaced the
	// package; empty while it is present in the image.
	RemovedBy string `json:"removed_by,omitempty"`
}

// IsOS reports whether p was installed by the operating system's
// package manager.
func (p *Package) IsOS() bool {
	switch p.Type {
	case "deb", "apk", "rpm", "opkg":
		return true
	}
	return false
}

// identity is what makes two records the same installed package.
func (p *Package) identity() string {
	return p.Type + "\x00" + p.Namespace + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Arch + "\x00" + p.Path
}

// OS describes the operating system of an image, from its os-release.
type OS struct {
	ID         string `json:"id,omitempty"`
	IDLike     string `json:"id_like,omitempty"`
	VersionID  string `json:"version_id,omitempty"`
	Codename   string `json:"codename,omitempty"`
	PrettyName string `json:"pretty_name,omitempty"`
	CPEName    string `json:"cpe_name,omitempty"`
	// Release is the finer version some distributions keep elsewhere
	// (/etc/debian_version, /etc/alpine-release).
	Release string `json:"release,omitempty"`
}

// Empty reports whether no operating system was recognised.
func (o OS) Empty() bool { return o.ID == "" }

func (o OS) String() string {
	if o.PrettyName != "" {
		return o.PrettyName
	}
	if o.ID == "" {
		return "unknown"
	}
	return o.ID + " " + o.VersionID
}

// LayerInfo describes one layer of an analysed image.
type LayerInfo struct {
	Index     int    `json:"index"`
	Digest    string `json:"digest"`
	DiffID    string `json:"diff_id"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type,omitempty"`
	// CreatedBy is the build step from the image config history.
	CreatedBy string `json:"created_by,omitempty"`
	// Cached is true when the analysis came from the layer cache.
	Cached   bool `json:"cached"`
	Entries  int  `json:"entries"`
	Packages int  `json:"packages"`
	// Bytes is the uncompressed size of the layer's tar stream.
	Bytes int64 `json:"bytes"`
	// Warnings holds what went wrong without stopping the analysis,
	// such as a package database an extractor could not read.
	Warnings []string `json:"warnings,omitempty"`
}

// Inventory is everything socle knows about an image's content.
type Inventory struct {
	// Digest is the image manifest digest.
	Digest    string    `json:"digest"`
	MediaType string    `json:"media_type,omitempty"`
	Config    string    `json:"config_digest,omitempty"`
	Platform  string    `json:"platform,omitempty"`
	Created   time.Time `json:"created,omitzero"`
	OS        OS        `json:"os"`
	// Layers lists the layers bottom-up.
	Layers []LayerInfo `json:"layers"`
	// Packages are present in the final image.
	Packages []Package `json:"packages"`
	// Removed are packages a lower layer installed and a higher one
	// deleted or replaced with another version.
	Removed []Package `json:"removed,omitempty"`
	// Labels are the config labels, Annotations the manifest's.
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// ReusedLayers counts layers whose analysis came from the cache.
	ReusedLayers int `json:"reused_layers"`
	// AnalyzedAt is when the inventory was assembled.
	AnalyzedAt time.Time `json:"analyzed_at"`
}
