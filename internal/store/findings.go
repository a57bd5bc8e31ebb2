package store

import (
	"context"
	"strings"
	"time"
)

// Finding is one advisory affecting one package of one image.
type Finding struct {
	ImageDigest  string
	AdvisoryID   string
	Aliases      []string
	Summary      string
	Severity     string
	Score        float64
	Withdrawn    bool
	FixedVersion string
	Package      ImagePackage
	OpenedAt     time.Time
	ClosedAt     time.Time
	CloseReason  string
	// Published is the advisory's publication time, the start of
	// exposure when a fix exists.
	Published time.Time
	RatingFacts
}

// AffectedImage answers "which images are affected by X".
type AffectedImage struct {
	Digest       string
	Repository   string
	Tags         []string
	Environments []string
	AdvisoryID   string
	Package      ImagePackage
	FixedVersion string
	Severity     string
}

// AffectedResult is a page of an AffectedImages answer.
type AffectedResult struct {
	// Images counts the distinct images affected, Total the rows, over
	// the whole answer.
	Images int
	Total  int
	// Rows is the page asked for.
	Rows []AffectedImage
}

// AffectedQuery selects findings by advisory or by package.
type AffectedQuery struct {
	// Advisory is an advisory ID or alias (CVE, GHSA, GO, PYSEC).
	Advisory string
	// Package is a package name, in Ecosystem when that is set.
	Package   string
	Ecosystem string
	// Version narrows Package to one version.
	Version string
	// Limit and Offset page the rows; Limit 0 returns them all.
	Limit, Offset int
}

// TrendPoint is the number of open fixable findings at one time.
type TrendPoint struct {
	At      time.Time
	Open    int
	Fixable int
}

// Sticky close reasons: a re-match does not reopen these findings. A
// rebuild's closure means the image is superseded (it still holds the
// package: exposure counts it while an environment runs it); a VEX
// closure is a statement that the image is not affected.
const (
	CloseFixedByRebuild = "fixed by rebuild"
	CloseVEX            = "vex"
)

// Close reasons a re-match undoes.
const (
	// CloseNoLongerAffected closes the findings of an advisory that no
	// longer matches, when the caller gives no reason.
	CloseNoLongerAffected = "no longer affected"
	// ClosePackageRemoved closes the findings of a package a new index of
	// the image no longer lists.
	ClosePackageRemoved = "package no longer in image"
)

// Sticky reports whether a close reason is one a re-match does not undo.
func Sticky(reason string) bool {
	return strings.HasPrefix(reason, CloseFixedByRebuild) || strings.HasPrefix(reason, CloseVEX)
}

// FindingKey names one finding of an image.
type FindingKey struct {
	AdvisoryID string
	// Package is the package's name in the image (binary name).
	Package string
}

// String is the key as remediation records list it: "ADVISORY PACKAGE".
func (k FindingKey) String() string { return k.AdvisoryID + " " + k.Package }

// Key names the finding within its image.
func (f Finding) Key() FindingKey {
	return FindingKey{AdvisoryID: f.AdvisoryID, Package: f.Package.Name}
}

// Findings answers questions about findings from the index, and closes
// findings for reasons a re-match does not undo.
type Findings interface {
	// CloseFindings closes open findings of an image with a reason
	// (CloseFixedByRebuild or CloseVEX first: those stay closed when the
	// advisories are matched again). It returns how many it closed.
	CloseFindings(ctx context.Context, digest string, keys []FindingKey, reason string, at time.Time) (int, error)
	// FindingsClosedAs returns the findings of an image closed with a
	// reason starting with prefix.
	FindingsClosedAs(ctx context.Context, digest, prefix string) ([]Finding, error)
	// ImageFindings returns the open findings of an image.
	ImageFindings(ctx context.Context, digest string) ([]Finding, error)
	// AffectedImages returns the images with an open finding for the
	// query, or holding the package when the query names one, one row
	// per image and package version (and advisory), ordered by package
	// version, then by image age (oldest first).
	AffectedImages(ctx context.Context, q AffectedQuery) (AffectedResult, error)
	// FindingTrend counts open and fixable findings of the images
	// currently tagged, at each step from from to to.
	FindingTrend(ctx context.Context, from, to time.Time, step time.Duration) ([]TrendPoint, error)
}
