package server

import (
	"context"

	"github.com/socle-dev/socle/internal/admission"
	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/remediate"
	"github.com/socle-dev/socle/internal/store"
)

// Store is what the API and the dashboard read and write. Tokens go
// through the authenticator; promotions through the promoter, which is
// built on this store when none is given. Findings, promotions and
// approvals come with promote.Store.
type Store interface {
	remediate.ExposureStore
	remediate.AttributionStore
	promote.Store
	auth.SessionStore
	auth.AuditedTokenStore
	ListTokens(ctx context.Context) ([]store.Token, error)
	metaStore
	Counts
	Ping(ctx context.Context) error
	DataGeneration(ctx context.Context) (string, error)

	Advisory(ctx context.Context, id string) (store.Advisory, error)
	AdvisoryStats(ctx context.Context) ([]store.EcosystemStat, error)
	ResolveAdvisoryIDs(ctx context.Context, id string) ([]string, error)
	Feeds(ctx context.Context) ([]store.Feed, error)

	Images(ctx context.Context, f store.ImageFilter) ([]store.ImageSummary, error)
	NewestDigests(ctx context.Context, n int) ([]string, error)
	TagHistory(ctx context.Context, repository, tag string) ([]store.TagEvent, error)

	Jobs(ctx context.Context, limit int) ([]store.Job, error)
	JobByID(ctx context.Context, id int64) (store.Job, error)

	PutDeployment(ctx context.Context, d store.Deployment) error
	CurrentDeploymentsOf(ctx context.Context, digest string) ([]store.Deployment, error)
	AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error)
	AuditEvents(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error)

	admission.Source
	RunningImages(ctx context.Context, q store.RunningQuery) ([]store.Running, error)
	PutTag(ctx context.Context, ev store.TagEvent) error
	store.ImportedSBOMs
	store.VEXDocuments
	store.FixRuns
	Exploits(ctx context.Context, ids []string) (map[string]store.Exploit, error)
	HasImage(ctx context.Context, digest string) (bool, error)

	ListRemediations(ctx context.Context, image string, limit int) ([]store.Remediation, error)
	BuildHistory(ctx context.Context, name string, limit int) ([]store.Build, error)
}

var _ Store = store.Store(nil)
