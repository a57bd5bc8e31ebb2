package store

import (
	"context"
	"errors"
	"time"
)

// All, given as a Limit, asks for every row. A Limit of 0 asks for the
// method's default page.
const All = -1

// Errors a caller may branch on.
var (
	// ErrNotFound is returned when the requested record does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a write would break a uniqueness or
	// state rule (an approval given twice, a tag moved concurrently).
	ErrConflict = errors.New("conflict")
)

// Store is everything socle keeps. Implementations must be safe for
// concurrent use by several goroutines and, for PostgreSQL, by several
// processes.
type Store interface {
	LayerCache
	Advisories
	Images
	Matches
	Findings
	Jobs
	Tokens
	Audit
	Deployments
	Promotions
	Remediations
	Builds
	Meta
	// Close releases the database.
	Close() error
	// Backend names the implementation ("sqlite", "postgres").
	Backend() string
	// Ping checks the database answers.
	Ping(ctx context.Context) error
}

// LayerCache keeps the analysis of each layer, by DiffID.
type LayerCache interface {
	// LoadLayerAnalysis returns the stored analysis, or nil data and a
	// nil error when there is none.
	LoadLayerAnalysis(ctx context.Context, diffID string) ([]byte, error)
	// StoreLayerAnalysis records an analysis, replacing any other.
	StoreLayerAnalysis(ctx context.Context, diffID string, data []byte) error
	// ClaimLayer takes a lease on analysing a layer, so that two servers
	// sharing one database never read the same layer at once. It
	// returns false when another owner holds an unexpired lease.
	ClaimLayer(ctx context.Context, diffID, owner string, lease time.Duration) (bool, error)
	// ReleaseLayer drops owner's lease.
	ReleaseLayer(ctx context.Context, diffID, owner string) error
	// LayerCount returns how many layer analyses are stored.
	LayerCount(ctx context.Context) (int, error)
}

// Advisory is one OSV record and what matching needs of it.
type Advisory struct {
	ID        string
	Modified  time.Time
	Published time.Time
	// Withdrawn is zero unless the advisory was withdrawn.
	Withdrawn time.Time
	Aliases   []string
	Summary   string
	// Severity is CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN; Score its CVSS
	// base score, when one is known.
	Severity string
	Score    float64
	// Source names the feed or file the record came from.
	Source string
	// Raw is the record as OSV JSON.
	Raw      []byte
	Affected []Affected
}

// Affected is one package an advisory names, with the ranges and
// versions that decide whether a version is affected, in an encoding the
// vuln package owns.
type Affected struct {
	Ecosystem string
	Name      string
	Spec      []byte
}

// PackageName is an (OSV ecosystem, package name) pair.
type PackageName struct {
	Ecosystem string
	Name      string
}

// UpsertResult says what an UpsertAdvisories call changed.
type UpsertResult struct {
	Added, Updated, Unchanged int
	// Changed lists the advisories added or updated.
	Changed []string
	// Packages lists every package named by a changed advisory, before or
	// after the change: the packages whose matches must be recomputed.
	Packages []PackageName
}

// AffectedRow is an Affected entry with the advisory facts findings show.
type AffectedRow struct {
	AdvisoryID string
	Ecosystem  string
	Name       string
	Spec       []byte
	Withdrawn  bool
	Severity   string
	Score      float64
	Aliases    []string
	Summary    string
	Modified   time.Time
	Published  time.Time
}

// EcosystemStat summarises the advisories for one ecosystem.
type EcosystemStat struct {
	Ecosystem string
	Records   int
	Withdrawn int
	// NewestModified is the latest "modified" time among the records.
	NewestModified time.Time
	Sources        []string
}

// Feed is the state of one advisory source.
type Feed struct {
	Name string
	// Kind is how the feed is read: "file", "osv-zip", "osv-dir", "git",
	// "alpine-secdb", "bundled".
	Kind        string
	URL         string
	Records     int
	LastAttempt time.Time
	LastSuccess time.Time
	// LastError is empty after a successful sync.
	LastError string
	// Cursor is the feed's own change marker (an ETag, a commit).
	Cursor string
}

// Advisories stores OSV records.
type Advisories interface {
	// UpsertAdvisories inserts or replaces records. A record whose
	// Modified time and Raw content are unchanged is counted as
	// Unchanged and not written.
	UpsertAdvisories(ctx context.Context, advs []Advisory) (UpsertResult, error)
	// Advisory returns one record by ID, with Raw and Affected.
	Advisory(ctx context.Context, id string) (Advisory, error)
	// ResolveAdvisoryIDs returns the IDs of the records whose ID or
	// aliases include id, or nil.
	ResolveAdvisoryIDs(ctx context.Context, id string) ([]string, error)
	// AffectedFor returns the affected entries for a package. An entry
	// for an ecosystem without a release ("Debian") applies to every
	// release ("Debian:12") and is returned for it.
	AffectedFor(ctx context.Context, ecosystem, name string) ([]AffectedRow, error)
	// AdvisoryStats summarises the store by ecosystem.
	AdvisoryStats(ctx context.Context) ([]EcosystemStat, error)
	// PutFeed records the state of a feed.
	PutFeed(ctx context.Context, f Feed) error
	// Feeds lists every feed.
	Feeds(ctx context.Context) ([]Feed, error)
	// DataGeneration returns a value that changes whenever images, tags,
	// deployments, matches, findings or advisories change, in any process
	// sharing the store.
	DataGeneration(ctx context.Context) (string, error)
	// AdvisoryCount returns the number of records.
	AdvisoryCount(ctx context.Context) (int, error)
	// AdvisoryGeneration returns a number that changes whenever a record
	// is added, updated or removed, by any process sharing the store, so
	// that caches of advisories know when to drop.
	AdvisoryGeneration(ctx context.Context) (int64, error)
}

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
}

// ImageFilter narrows Images.
type ImageFilter struct {
	Repository string
	Limit      int
	Offset     int
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

// PackageMatch is one advisory that affects a package version.
type PackageMatch struct {
	AdvisoryID string
	// FixedVersion is the first version that fixes it, or empty.
	FixedVersion string
}

// Matches keeps, for each stored package version, the advisories that
// affect it: the index every query about exposure reads.
type Matches interface {
	// PackagesNamed returns the stored versions of a package. An
	// ecosystem without a release ("Debian") selects every release.
	PackagesNamed(ctx context.Context, ecosystem, name string) ([]PackageRow, error)
	// SetPackageMatches replaces the advisories matched to a package and
	// opens or closes the findings of every image holding it. A finding
	// whose advisory no longer matches is closed with closeReasons[id],
	// or "no longer affected" when the map has no entry. at is the time
	// recorded.
	SetPackageMatches(ctx context.Context, pkgID int64, matches []PackageMatch, closeReasons map[string]string, at time.Time) (FindingChanges, error)
	// SetMatches applies several SetPackageMatches updates in one
	// transaction: what indexing an image or re-evaluating after an
	// advisory sync does for many package versions at once.
	SetMatches(ctx context.Context, updates []MatchUpdate, at time.Time) (FindingChanges, error)
	// PackageMatches returns the advisories matched to a package.
	PackageMatches(ctx context.Context, pkgID int64) ([]PackageMatch, error)
}

// MatchUpdate is the new set of advisories matched to one package version.
type MatchUpdate struct {
	PackageID    int64
	Matches      []PackageMatch
	CloseReasons map[string]string
}

// FindingChanges counts the findings a write opened and closed.
type FindingChanges struct {
	Opened, Closed int
	// OpenedFixable counts the opened findings whose advisory names a
	// fixed version.
	OpenedFixable int
	// Images lists the images whose findings changed.
	Images []string
}

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

// Findings answers questions about findings from the index.
// Sticky close reasons: a re-match does not reopen these findings. A
// rebuild's closure means the image is superseded (it still holds the
// package: exposure counts it while an environment runs it); a VEX
// closure is a statement that the image is not affected.
const (
	CloseFixedByRebuild = "fixed by rebuild"
	CloseVEX            = "vex"
)

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

// Job is a unit of background work.
type Job struct {
	ID   int64
	Kind string
	// Key deduplicates jobs: a second enqueue of a key already pending
	// or running is ignored.
	Key     string
	Payload []byte
	State   string // pending, running, done, failed
	Owner   string
	// LeaseUntil is when a running job's owner is presumed dead.
	LeaseUntil time.Time
	Attempts   int
	Error      string
	Done       int
	Total      int
	Message    string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Job states.
const (
	JobPending = "pending"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Jobs is a durable work queue shared by every server on one database.
type Jobs interface {
	// EnqueueJob adds a job unless one with the same key is pending or
	// running; it returns the job's ID and whether it was added.
	EnqueueJob(ctx context.Context, kind, key string, payload []byte) (int64, bool, error)
	// ClaimJob takes the oldest pending job of the given kinds, or a
	// running one whose lease expired, for owner; nil when none. Two
	// callers never claim the same job.
	ClaimJob(ctx context.Context, owner string, kinds []string, lease time.Duration) (*Job, error)
	// ExtendJob renews owner's lease and records progress.
	ExtendJob(ctx context.Context, id int64, owner string, lease time.Duration, done, total int, msg string) error
	// FinishJob ends a job as done (err empty) or failed. A failed job
	// with attempts left is made pending again.
	FinishJob(ctx context.Context, id int64, owner string, errMsg string, retry bool) error
	// Jobs lists recent jobs, newest first.
	Jobs(ctx context.Context, limit int) ([]Job, error)
	// JobByID returns one job.
	JobByID(ctx context.Context, id int64) (Job, error)
}

// Roles a token may have, in increasing power.
const (
	RoleViewer    = "viewer"
	RoleDeveloper = "developer"
	RoleApprover  = "approver"
	RoleAdmin     = "admin"
)

// Token is an API credential. The secret itself is never stored.
type Token struct {
	ID        string
	Name      string
	Role      string
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time
	LastUsed  time.Time
}

// Tokens stores API tokens by the hash of their secret.
type Tokens interface {
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash returns the token with that secret hash.
	TokenByHash(ctx context.Context, hash []byte) (Token, error)
	ListTokens(ctx context.Context) ([]Token, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error
	TouchToken(ctx context.Context, id string, at time.Time) error
}

// AuditEvent is one entry of the audit log.
type AuditEvent struct {
	Seq     int64
	At      time.Time
	Actor   string
	Action  string
	Subject string
	// Details is a JSON object.
	Details []byte
	// PrevHash and Hash chain the log: Hash covers PrevHash and every
	// other field, so that editing any row breaks the chain after it.
	PrevHash string
	Hash     string
}

// Audit is the append-only, hash-chained audit log.
type Audit interface {
	// AppendAudit adds an event, computing its Seq and chain hashes.
	AppendAudit(ctx context.Context, ev AuditEvent) (AuditEvent, error)
	// AuditEvents returns events with Seq > after, oldest first.
	AuditEvents(ctx context.Context, after int64, limit int) ([]AuditEvent, error)
}

// Deployment says which digest of a repository runs in an environment.
type Deployment struct {
	Environment string
	Repository  string
	Digest      string
	Since       time.Time
	// By names who or what recorded it (a promotion, the API).
	By string
}

// Deployments records which environment runs which digest.
type Deployments interface {
	// PutDeployment records that env now runs digest for repository.
	PutDeployment(ctx context.Context, d Deployment) error
	// DeploymentsOf returns the current deployments, of one environment
	// when env is not empty.
	CurrentDeployments(ctx context.Context, env string) ([]Deployment, error)
	// DeploymentHistory returns every deployment of a repository in an
	// environment, newest first.
	DeploymentHistory(ctx context.Context, env, repository string) ([]Deployment, error)
}

// Build is one build of a catalog image.
type Build struct {
	ID         int64
	Name       string
	Repository string
	Digest     string
	// Tag is the immutable tag; Tags every tag pushed (floating too).
	Tag  string
	Tags []string
	// Parent is the parent's reference and ParentDigest what it
	// resolved to for this build.
	Parent       string
	ParentDigest string
	// Inputs hashes what the catalog said and the files it named.
	Inputs string
	// Packages are name → version for assembled images.
	Packages map[string]string
	// Reasons are why the build ran.
	Reasons []string
	// Status is succeeded, failed or skipped; Error says why not.
	Status     string
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	By         string
}

// Build statuses.
const (
	BuildSucceeded = "succeeded"
	BuildFailed    = "failed"
	BuildSkipped   = "skipped"
)

// Builds records catalog builds.
type Builds interface {
	// RecordBuild appends a build and returns its ID.
	RecordBuild(ctx context.Context, b Build) (int64, error)
	// LastBuild returns the newest successful build of a catalog image,
	// or ErrNotFound.
	LastBuild(ctx context.Context, name string) (Build, error)
	// BuildHistory returns the builds of a catalog image (every image
	// when name is ""), newest first.
	BuildHistory(ctx context.Context, name string, limit int) ([]Build, error)
}

// Meta keeps small settings.
type Meta interface {
	GetMeta(ctx context.Context, key string) (string, error)
	SetMeta(ctx context.Context, key, value string) error
}

// Promotion states.
const (
	// PromotionAwaitingApproval waits for approvers; its gates passed
	// except the approval gate.
	PromotionAwaitingApproval = "awaiting-approval"
	// PromotionMoving: gates passed, the tag is being moved. A record
	// left in this state by a crash is settled by reconciliation: done
	// if the tag points at the digest, aborted otherwise.
	PromotionMoving  = "moving"
	PromotionDone    = "done"
	PromotionBlocked = "blocked"
	PromotionAborted = "aborted"
	PromotionFailed  = "failed"
)

// Promotion is one request to move an environment's tag to a digest.
type Promotion struct {
	ID int64
	// Repository is the source repository (host/path); Target is where
	// the environment's tag lives (the same, or a repository per
	// environment).
	Repository string
	Target     string
	Digest     string
	// Environment is where it goes; From the environment before it.
	Environment string
	From        string
	Tag         string
	// Previous is the digest the tag pointed at before.
	Previous string
	State    string
	// Kind is promote or rollback.
	Kind     string
	By       string
	Role     string
	Override bool
	// Evidence is a JSON document: the gate results.
	Evidence  []byte
	Note      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PromotionQuery selects promotions; empty fields match everything.
type PromotionQuery struct {
	Repository  string
	Target      string
	Environment string
	Digest      string
	States      []string
	// Limit (default 100), newest first.
	Limit int
}

// Approval is one approver's consent to a promotion.
type Approval struct {
	PromotionID int64
	Approver    string
	Role        string
	At          time.Time
}

// Promotions records promotions. Every state change appends its audit
// event in the same transaction.
type Promotions interface {
	// CreatePromotion inserts p and its audit event; it returns the ID.
	// At most one promotion per target and environment is moving at a
	// time: a second one gets ErrConflict.
	CreatePromotion(ctx context.Context, p Promotion, ev AuditEvent) (int64, error)
	// TransitionPromotion moves a promotion from one state to another,
	// only if it is still in from (ErrConflict otherwise, or when it
	// would be a second one moving on the same tag); to done, it
	// also records the deployment. Evidence and note replace the old
	// ones when not empty.
	TransitionPromotion(ctx context.Context, id int64, from, to string, evidence []byte, note string, at time.Time, ev AuditEvent) error
	Promotion(ctx context.Context, id int64) (Promotion, error)
	ListPromotions(ctx context.Context, q PromotionQuery) ([]Promotion, error)
	// AddApproval records an approval (once per approver) with its audit
	// event and returns the approvals so far.
	AddApproval(ctx context.Context, a Approval, ev AuditEvent) ([]Approval, error)
	Approvals(ctx context.Context, id int64) ([]Approval, error)
}

// Remediation statuses.
const (
	// RemediationApplied: built, verified and pushed.
	RemediationApplied = "applied"
	// RemediationRejected: built, but verification found it removes no
	// finding or adds one; nothing was pushed.
	RemediationRejected = "rejected"
	// RemediationNone: no fix exists yet; socle keeps watching.
	RemediationNone = "no-fix-yet"
	// RemediationFailed: the build or push failed.
	RemediationFailed = "failed"
)

// Remediation is one attempt to carry fixes to a new digest.
type Remediation struct {
	ID int64
	// Image is the catalog image, Repository where it lives.
	Image      string
	Repository string
	// Strategy is rebuild, rebase, git or none.
	Strategy string
	From, To string
	// Fixes are the advisories the new digest no longer has; Added the
	// ones it brought (a rejected remediation has some).
	Fixes  []string
	Added  []string
	Status string
	Detail string
	At     time.Time
	By     string
}

// Remediations records remediations, each with its audit event.
type Remediations interface {
	RecordRemediation(ctx context.Context, r Remediation, ev AuditEvent) (int64, error)
	ListRemediations(ctx context.Context, image string, limit int) ([]Remediation, error)
}
