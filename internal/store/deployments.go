package store

import (
	"context"
	"time"
)

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
	// CurrentDeployments returns the current deployments, of one
	// environment when env is not empty.
	CurrentDeployments(ctx context.Context, env string) ([]Deployment, error)
	// CurrentDeploymentsOf returns the current deployments of one digest,
	// as CurrentDeployments has them.
	CurrentDeploymentsOf(ctx context.Context, digest string) ([]Deployment, error)
	// DeploymentHistory returns every deployment of a repository in an
	// environment, newest first.
	DeploymentHistory(ctx context.Context, env, repository string) ([]Deployment, error)
}
