package store

import (
	"context"
	"time"
)

// Rating is one source's severity for one vulnerability identifier.
type Rating struct {
	// ID is the identifier the source rates (a CVE, a GHSA, a DSA).
	ID string `json:"id"`
	// Source is "vendor", "ecosystem", "nvd" or "ghsa".
	Source   string  `json:"source"`
	Severity string  `json:"severity"`
	Score    float64 `json:"score,omitempty"`
	// Vector is the CVSS vector the score was computed from.
	Vector string `json:"vector,omitempty"`
}

// Exploit is what is known of a vulnerability's exploitation: CISA's
// Known Exploited Vulnerabilities catalog and FIRST's EPSS.
type Exploit struct {
	ID string
	// KEVAdded is when CISA listed it; zero when it is not listed.
	KEVAdded   time.Time
	KEVDue     time.Time
	Ransomware bool
	// EPSS is the probability of exploitation in the next 30 days;
	// Percentile its rank among all scored CVEs.
	EPSS       float64
	Percentile float64
}

// AdvisoryRating is the severity an advisory shows and every rating
// behind it.
type AdvisoryRating struct {
	AdvisoryID string
	Severity   string
	Score      float64
	Source     string
	Ratings    []Rating
}

// RatingFacts are what an advisory's severity and risk are made of,
// beside its chosen severity.
type RatingFacts struct {
	// SeveritySource is the source the severity was taken from.
	SeveritySource string
	// Ratings are every source's severity of the advisory's ID and
	// aliases.
	Ratings []Rating
	// KEV is when CISA listed one of its identifiers as known exploited.
	KEV time.Time
	// EPSS is the highest exploitation probability of its identifiers.
	EPSS float64
}

// Ratings keeps the severities and exploitation facts of vulnerability
// identifiers, and the rating each advisory derives from them.
type Ratings interface {
	// PutRatings replaces the ratings of (ID, Source).
	PutRatings(ctx context.Context, rs []Rating) error
	// PutKEV replaces the whole known-exploited catalog.
	PutKEV(ctx context.Context, entries []Exploit) error
	// PutEPSS sets EPSS scores, leaving other identifiers' as they are.
	PutEPSS(ctx context.Context, scores []Exploit) error
	// AdvisoriesNaming returns the advisories whose ID or aliases include
	// one of ids.
	AdvisoriesNaming(ctx context.Context, ids []string) ([]string, error)
	// RatingInputs returns, per advisory, the ratings of its ID and of
	// each of its aliases.
	RatingInputs(ctx context.Context, advisoryIDs []string) (map[string][]Rating, error)
	// SetRatings records the rating of advisories, and refreshes their
	// known-exploited and EPSS facts from their ID and aliases.
	SetRatings(ctx context.Context, rs []AdvisoryRating) error
	// RefreshExploits refreshes the known-exploited and EPSS facts of
	// advisories (every one when ids is nil).
	RefreshExploits(ctx context.Context, ids []string) error
	// Exploits returns the facts known for ids.
	Exploits(ctx context.Context, ids []string) (map[string]Exploit, error)
}

// VEXDocument is a VEX document (OpenVEX or CSAF) kept so that its
// statements apply to every image stored later.
type VEXDocument struct {
	// Digest is the sha256 of Data, its identity.
	Digest  string
	Name    string
	Format  string
	Data    []byte
	AddedAt time.Time
	By      string
}

// VEXDocuments keeps VEX documents.
type VEXDocuments interface {
	// PutVEXDocument keeps a document; the same bytes again are a no-op
	// and report false.
	PutVEXDocument(ctx context.Context, d VEXDocument) (bool, error)
	// VEXDocuments returns every document, oldest first.
	VEXDocuments(ctx context.Context) ([]VEXDocument, error)
}

// ImageCheck is the last run of the image rules on an image.
type ImageCheck struct {
	Digest     string
	Repository string
	// RulesVersion identifies the rules it ran (check.RulesVersion); a
	// check of other rules is run again.
	RulesVersion string
	CheckedAt    time.Time
	// Result is the check's JSON (findings and layer report).
	Result []byte
}

// ImageChecks keeps the image checks.
type ImageChecks interface {
	PutImageCheck(ctx context.Context, c ImageCheck) error
	// ImageCheck returns an image's last check, or ErrNotFound.
	ImageCheck(ctx context.Context, digest string) (ImageCheck, error)
	// ImagesToCheck lists up to limit images (digest, repository) whose
	// last check ran other rules than version, or that have none.
	ImagesToCheck(ctx context.Context, version string, limit int) ([]ImageCheck, error)
}
