package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

type runningKey struct{ namespace, workload, container, digest string }

func keyOf(r store.Running) runningKey {
	return runningKey{r.Namespace, r.Workload, r.Container, r.Digest}
}

func (s *DB) SyncRunning(ctx context.Context, cluster string, rows []store.Running, now time.Time) (started, stopped int, err error) {
	want := map[runningKey]store.Running{}
	for _, r := range rows {
		k := keyOf(r)
		if prev, ok := want[k]; ok {
			prev.Pods += max(r.Pods, 1)
			want[k] = prev
			continue
		}
		r.Pods = max(r.Pods, 1)
		want[k] = r
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		started, stopped = 0, 0
		have, err := s.runningState(ctx, tx, cluster)
		if err != nil {
			return err
		}
		for k, r := range want {
			stoppedAt, known := have[k]
			switch {
			case !known:
				_, err = s.exec(ctx, tx, `INSERT INTO running (cluster, namespace, workload, container, digest, repository, environment, pods, since, last_seen, stopped_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`, cluster, k.namespace, k.workload, k.container, k.digest, r.Repository, r.Environment, r.Pods, ts(now), ts(now))
				started++
			case stoppedAt != 0:
				_, err = s.exec(ctx, tx, `UPDATE running SET repository = ?, environment = ?, pods = ?, since = ?, last_seen = ?, stopped_at = 0
WHERE cluster = ? AND namespace = ? AND workload = ? AND container = ? AND digest = ?`,
					r.Repository, r.Environment, r.Pods, ts(now), ts(now), cluster, k.namespace, k.workload, k.container, k.digest)
				started++
			default:
				_, err = s.exec(ctx, tx, `UPDATE running SET repository = ?, environment = ?, pods = ?, last_seen = ?
WHERE cluster = ? AND namespace = ? AND workload = ? AND container = ? AND digest = ?`,
					r.Repository, r.Environment, r.Pods, ts(now), cluster, k.namespace, k.workload, k.container, k.digest)
			}
			if err != nil {
				return err
			}
		}
		for k, stoppedAt := range have {
			if _, keep := want[k]; keep || stoppedAt != 0 {
				continue
			}
			if _, err := s.exec(ctx, tx, `UPDATE running SET stopped_at = ? WHERE cluster = ? AND namespace = ? AND workload = ? AND container = ? AND digest = ?`,
				ts(now), cluster, k.namespace, k.workload, k.container, k.digest); err != nil {
				return err
			}
			stopped++
		}
		if started+stopped == 0 {
			return nil
		}
		return s.bump(ctx, tx, tagsGenKey)
	})
	return started, stopped, err
}

// runningState maps each row of cluster to when it stopped (0: running).
func (s *DB) runningState(ctx context.Context, tx *sql.Tx, cluster string) (map[runningKey]int64, error) {
	rows, err := s.query(ctx, tx, `SELECT namespace, workload, container, digest, stopped_at FROM running WHERE cluster = ?`, cluster)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[runningKey]int64{}
	for rows.Next() {
		var k runningKey
		var stoppedAt int64
		if err := rows.Scan(&k.namespace, &k.workload, &k.container, &k.digest, &stoppedAt); err != nil {
			return nil, err
		}
		have[k] = stoppedAt
	}
	return have, rows.Err()
}

func (s *DB) RunningImages(ctx context.Context, q store.RunningQuery) ([]store.Running, error) {
	query := `SELECT cluster, namespace, workload, container, environment, repository, digest, pods, since, last_seen, stopped_at FROM running WHERE 1 = 1`
	var args []any
	if q.Cluster != "" {
		query, args = query+` AND cluster = ?`, append(args, q.Cluster)
	}
	if q.Environment != "" {
		query, args = query+` AND environment = ?`, append(args, q.Environment)
	}
	if q.Digest != "" {
		query, args = query+` AND digest = ?`, append(args, q.Digest)
	}
	if !q.Stopped {
		query += ` AND stopped_at = 0`
	}
	rows, err := s.query(ctx, s.db, query+` ORDER BY stopped_at, since, cluster, namespace, workload, container`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Running
	for rows.Next() {
		var r store.Running
		var since, seen, stoppedAt int64
		if err := rows.Scan(&r.Cluster, &r.Namespace, &r.Workload, &r.Container, &r.Environment, &r.Repository, &r.Digest, &r.Pods, &since, &seen, &stoppedAt); err != nil {
			return nil, err
		}
		r.Since, r.LastSeen, r.StoppedAt = fromTS(since), fromTS(seen), fromTS(stoppedAt)
		out = append(out, r)
	}
	return out, rows.Err()
}
