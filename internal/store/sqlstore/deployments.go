package sqlstore

import (
	"context"
	"database/sql"
	"slices"

	"github.com/socle-dev/socle/internal/store"
)

func (s *DB) PutDeployment(ctx context.Context, d store.Deployment) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.putDeployment(ctx, tx, d)
	})
}

// putDeployment appends to the history and moves the current pointer,
// in the caller's transaction.
func (s *DB) putDeployment(ctx context.Context, x execer, d store.Deployment) error {
	if _, err := s.exec(ctx, x, `INSERT INTO deployments (environment, repository, digest, since, by_whom) VALUES (?, ?, ?, ?, ?)`,
		d.Environment, d.Repository, d.Digest, ts(d.Since), d.By); err != nil {
		return err
	}
	if _, err := s.exec(ctx, x, `INSERT INTO deployments_current (environment, repository, digest, since, by_whom) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (environment, repository) DO UPDATE SET digest = excluded.digest, since = excluded.since, by_whom = excluded.by_whom`,
		d.Environment, d.Repository, d.Digest, ts(d.Since), d.By); err != nil {
		return err
	}
	return s.bump(ctx, x, tagsGenKey)
}

// CurrentDeployments is what promotions and deployment records say, and
// what the clusters' inventory shows running, once per environment,
// repository and digest.
func (s *DB) CurrentDeployments(ctx context.Context, env string) ([]store.Deployment, error) {
	if env == "" {
		return s.currentDeployments(ctx, "", nil)
	}
	return s.currentDeployments(ctx, "environment = ?", []any{env})
}

// CurrentDeploymentsOf is CurrentDeployments of one digest: an image's
// placement reads its own rows, not every deployment.
func (s *DB) CurrentDeploymentsOf(ctx context.Context, digest string) ([]store.Deployment, error) {
	return s.currentDeployments(ctx, "digest = ?", []any{digest})
}

// currentDeployments is CurrentDeployments of the rows where cond (on
// environment, repository or digest; arg once) holds, or of all.
func (s *DB) currentDeployments(ctx context.Context, cond string, arg []any) ([]store.Deployment, error) {
	q1, q2, args := `SELECT environment, repository, digest, since, by_whom, 0 FROM deployments_current`,
		`SELECT environment, repository, digest, MIN(since), 'cluster:' || MIN(cluster), 1 FROM running WHERE stopped_at = 0 AND environment <> ''`, []any{}
	if cond != "" {
		q1, q2, args = q1+` WHERE `+cond, q2+` AND `+cond, append(slices.Clone(arg), arg...)
	}
	rows, err := s.query(ctx, s.db, q1+` UNION ALL `+q2+` GROUP BY environment, repository, digest ORDER BY 1, 2, 6`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	seen := map[[3]string]bool{}
	var out []store.Deployment
	for rows.Next() {
		var d store.Deployment
		var since int64
		var fromCluster int
		if err := rows.Scan(&d.Environment, &d.Repository, &d.Digest, &since, &d.By, &fromCluster); err != nil {
			return nil, err
		}
		d.Since = fromTS(since)
		if k := [3]string{d.Environment, d.Repository, d.Digest}; !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out, rows.Err()
}

func (s *DB) DeploymentHistory(ctx context.Context, env, repository string) ([]store.Deployment, error) {
	rows, err := s.query(ctx, s.db, `SELECT environment, repository, digest, since, by_whom FROM deployments
WHERE environment = ? AND repository = ? ORDER BY id DESC`, env, repository)
	if err != nil {
		return nil, err
	}
	return scanDeployments(rows)
}

func scanDeployments(rows *sql.Rows) ([]store.Deployment, error) {
	defer rows.Close()
	var out []store.Deployment
	for rows.Next() {
		var d store.Deployment
		var since int64
		if err := rows.Scan(&d.Environment, &d.Repository, &d.Digest, &since, &d.By); err != nil {
			return nil, err
		}
		d.Since = fromTS(since)
		out = append(out, d)
	}
	return out, rows.Err()
}

// environmentsOf returns, for each digest, the environments currently
// running it.
func (s *DB) environmentsOf(ctx context.Context, digests []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, batch := range chunks(digests, 500) {
		in := placeholders(len(batch))
		rows, err := s.query(ctx, s.db, `SELECT digest, environment FROM deployments_current WHERE digest IN (`+in+`)
UNION SELECT digest, environment FROM running WHERE stopped_at = 0 AND environment <> '' AND digest IN (`+in+`)
ORDER BY 2`, append(anySlice(batch), anySlice(batch)...)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var d, e string
			if err := rows.Scan(&d, &e); err != nil {
				rows.Close()
				return nil, err
			}
			out[d] = append(out[d], e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
