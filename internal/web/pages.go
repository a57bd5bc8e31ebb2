package web

import (
	"html/template"
	"time"
)

// FleetPage is the front page: every image and the trend of findings.
type FleetPage struct {
	Images []ImageRow
	Trend  template.HTML
	// Totals are open fixable findings by severity, over tagged images.
	Critical, High int
	Advisories     int
	SampleOnly     bool
	Version        string
}

// ImageRow is one image in the fleet table.
type ImageRow struct {
	Digest       string
	Repository   string
	Tags         []string
	Environments []string
	Platform     string
	OS           string
	Created      time.Time
	ScannedAt    time.Time
	Base         string
	Packages     int
	// CriticalFix and HighFix count open findings with a fix.
	CriticalFix, HighFix int
	Open                 int
	// Risk is the risk of its riskiest open finding where it runs; KEV
	// counts its known-exploited findings.
	Risk float64
	KEV  int
}

// ImagePage shows one image.
type ImagePage struct {
	Digest       string
	Repository   string
	Tags         []string
	Environments []string
	Platform     string
	OS           string
	Created      time.Time
	ScannedAt    time.Time
	Base         string
	BaseDigest   string
	Layers       []LayerRow
	Findings     []FindingRow
	Packages     []PackageRow
	History      []TagHistory
	Summary      map[string]int
	// Compared are the SBOMs other tools made of this image, and where
	// they differ from socle's inventory.
	Compared []SBOMComparison
	// Checks is the last run of socle check's image rules, nil when the
	// image was not checked yet.
	Checks *CheckSummary
}

// CheckSummary is an image's last check: its findings and where its
// bytes are.
type CheckSummary struct {
	At         time.Time
	Stale      bool
	Findings   []CheckRow
	Total      int64
	Wasted     int64
	Efficiency float64
	Biggest    []FileRow
	Wasteful   []FileRow
}

// CheckRow is one check finding.
type CheckRow struct {
	Rule, Severity, Object, Message, Fix, Layer, Base string
}

// FileRow is a file of the layer report.
type FileRow struct {
	Path  string
	Size  int64
	Layer int
}

// SBOMComparison is an imported SBOM against socle's inventory.
type SBOMComparison struct {
	Format, Tools string
	ImportedAt    time.Time
	Same          int
	// OnlyTheirs are packages only the other tool lists; OnlySocle those
	// only socle's inventory has ("name version").
	OnlyTheirs, OnlySocle []string
}

// LayerRow is one layer of an image.
type LayerRow struct {
	Index     int
	Digest    string
	Size      int64
	CreatedBy string
	Packages  int
	Findings  int
}

// FindingRow is one finding.
type FindingRow struct {
	ID         string
	Aliases    []string
	Severity   string
	Package    string
	Version    string
	Fixed      string
	LayerIndex int
	Summary    string
	Published  time.Time
	// First is true on the first row of a package's group.
	First bool
	// SeveritySource says whose severity it is; KEV marks a known
	// exploited vulnerability; Risk ranks it; WontFix says the
	// distribution will not fix it.
	SeveritySource string
	KEV            bool
	EPSS           float64
	Risk           float64
	WontFix        bool
}

// PackageRow is one package.
type PackageRow struct {
	Name, Version, Type, PURL, Path string
	LayerIndex                      int
}

// TagHistory is the digests one tag pointed at.
type TagHistory struct {
	Repository, Tag string
	Events          []TagEventRow
}

// TagEventRow is one move of a tag.
type TagEventRow struct {
	Digest  string
	At      time.Time
	Current bool
}

// CVEPage shows a vulnerability and everything it affects.
type CVEPage struct {
	ID         string
	Advisories []AdvisoryRow
	Affected   []AffectedRow
	Images     int
	// More counts rows beyond the page (the API lists them all).
	More int
}

// AdvisoryRow is one record about the vulnerability.
type AdvisoryRow struct {
	ID        string
	Aliases   []string
	Summary   string
	Severity  string
	Score     float64
	Published time.Time
	Modified  time.Time
	Withdrawn bool
	Source    string
}

// AffectedRow is one image holding an affected package.
type AffectedRow struct {
	Digest       string
	Repository   string
	Tags         []string
	Environments []string
	Package      string
	Version      string
	Fixed        string
	Severity     string
}

// PackagePage lists the images holding a package.
type PackagePage struct {
	Name      string
	Ecosystem string
	Affected  []AffectedRow
	Images    int
	More      int
}

// JobsPage lists background work.
type JobsPage struct {
	Jobs []JobRow
}

// JobRow is one job.
type JobRow struct {
	ID               int64
	Kind, Key, State string
	Done, Total      int
	Message, Error   string
	Attempts         int
	Created, Updated time.Time
}

// LoginPage asks for a token, or offers the identity provider.
type LoginPage struct {
	Next  string
	Error string
	// CSRF binds the form to the browser that asked for it.
	CSRF string
	// OIDC is the identity provider's issuer, when one is configured.
	OIDC string
}

// ErrorPage explains a failure.
type ErrorPage struct {
	Status  int
	Message string
}

// PromotionsPage lists promotions and offers the forms.
type PromotionsPage struct {
	Environments []string
	Promotions   []PromotionRow
	// Message reports the last form's outcome.
	Message string
	// Drift lists environment tags moved behind socle's back.
	Drift      []DriftRow
	DriftError string
}

// DriftRow is a tag that points elsewhere than socle's record.
type DriftRow struct {
	Environment, Repository, Tag, Recorded, Actual string
}

// PromotionRow is one promotion.
type PromotionRow struct {
	ID                                    int64
	Repository, Digest, Environment, From string
	State, Kind, By, Note                 string
	Override                              bool
	Updated                               time.Time
	Gates                                 []GateRow
}

// GateRow is one gate's outcome.
type GateRow struct {
	Gate            string
	Passed, Pending bool
	Detail          string
}

// ExposurePage is the exposure of each environment and the remediations.
type ExposurePage struct {
	Environments []EnvExposureRow
	Remediations []RemediationRow
}

// EnvExposureRow is one environment.
type EnvExposureRow struct {
	Environment     string
	Images, Open    int
	OldestAge, MTTR time.Duration
	Oldest          string
	Remediated      int
	Findings        []ExposedRow
}

// ExposedRow is one open fixable finding.
type ExposedRow struct {
	Repository, Digest, Advisory, Package, Version, Fixed, Severity string
	Since                                                           time.Time
	Risk                                                            float64
	KEV                                                             bool
}

// RemediationRow is one remediation.
type RemediationRow struct {
	ID                                    int64
	Image, Repository, Strategy, From, To string
	Fixes, Added                          int
	Status, Detail                        string
	At                                    time.Time
}

// RunningPage is what runs in the clusters, per environment.
type RunningPage struct {
	Environments []RunningEnv
}

// RunningEnv is one environment's running workloads, the longest
// running first.
type RunningEnv struct {
	Environment string
	Drift       int
	Rows        []RunningRow
}

// RunningRow is one container of a workload running a digest.
type RunningRow struct {
	Cluster, Namespace, Workload, Container, Repository, Digest string
	Pods                                                        int
	Since                                                       time.Time
	For                                                         time.Duration
	Open, Fixable                                               int
	Scanned, Drift                                              bool
}

// FixRunsPage shows fix runs as timelines and the time to remediate.
type FixRunsPage struct {
	Runs []FixRunRow
	MTTR []MTTRRow
}

// FixRunRow is one fix run.
type FixRunRow struct {
	ID         int64
	Advisories []string
	Status     string
	Detail     string
	Started    time.Time
	Steps      []FixStepRow
}

// FixStepRow is one step, with its time after the run's start.
type FixStepRow struct {
	At                       time.Time
	After                    time.Duration
	Name, Environment, Image string
	OK                       bool
	Detail                   string
}

// MTTRRow is an environment's time to remediate and its weekly trend.
type MTTRRow struct {
	Environment string
	Runs        int
	Mean        time.Duration
	Trend       []MTTRWeek
}

// MTTRWeek is one week of the trend.
type MTTRWeek struct {
	Week time.Time
	Mean time.Duration
	Runs int
}
