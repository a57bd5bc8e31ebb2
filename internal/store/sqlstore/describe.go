package sqlstore

import (
	"context"
	"database/sql"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// nameCache keeps what answers show of each image (digest, repository,
// tags, environments) in memory, so that the fleet-wide queries do not
// join text columns for thousands of rows. It is checked against two
// generation counters the writers bump in their transactions, so every
// server sharing the database sees changes at its next query. Every
// image's tags are read again at most every namesReloadEvery after a tag
// moved (at 100,000 images a reload took 150-360 ms); until then the
// answers read their own page's tags and environments.
type nameCache struct {
	mu        sync.Mutex
	tagsGen   string
	imagesGen string
	tags      map[string][]string // digest -> tags
	envs      map[string][]string // digest -> environments
	images    map[int64]imageName
	loadedAt  time.Time // when tags and envs were last read whole
}

// namesReloadEvery bounds how often moved tags reload every image's tags
// and environments: on a fleet pushing all the time, each answer after a
// push would pay the reload.
var namesReloadEvery = 10 * time.Second

type imageName struct{ digest, repository string }

const (
	tagsGenKey     = "tags_generation"
	imagesGenKey   = "images_generation"
	findingsGenKey = "findings_generation"
)

// DataGeneration returns a value that changes whenever images, tags,
// deployments, matches, findings or advisories change, in any process
// sharing the store: the key of caches of query answers.
func (s *DB) DataGeneration(ctx context.Context) (string, error) {
	rows, err := s.query(ctx, s.db, `SELECT key, value FROM meta WHERE key IN (?, ?, ?, ?)`,
		tagsGenKey, imagesGenKey, findingsGenKey, advisoryGenerationKey)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	vals := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return "", err
		}
		vals[k] = v
	}
	return vals[tagsGenKey] + "." + vals[imagesGenKey] + "." + vals[findingsGenKey] + "." + vals[advisoryGenerationKey], rows.Err()
}

// bump increments generation counters in the caller's transaction, in
// one statement, each once, in key order (the order every transaction
// locks them in).
func (s *DB) bump(ctx context.Context, x execer, keys ...string) error {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	keys = slices.Compact(keys)
	if len(keys) == 0 {
		return nil
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	_, err := s.exec(ctx, x, `INSERT INTO meta (key, value) VALUES `+strings.TrimSuffix(strings.Repeat("(?, '1'), ", len(keys)), ", ")+`
ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(meta.value AS BIGINT) + 1 AS TEXT)`, args...)
	return err
}

// refreshNames reloads what changed since the cache was filled, and
// reports whether the cached tags and environments are current: they are
// not when tags moved since the last reload, less than namesReloadEvery
// ago.
func (s *DB) refreshNames(ctx context.Context) (current bool, err error) {
	rows, err := s.query(ctx, s.db, `SELECT key, value FROM meta WHERE key IN (?, ?)`, tagsGenKey, imagesGenKey)
	if err != nil {
		return false, err
	}
	var tg, ig string
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return false, err
		}
		if k == tagsGenKey {
			tg = v
		} else {
			ig = v
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	c := &s.names
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.images == nil || c.imagesGen != ig {
		c.images, c.imagesGen = map[int64]imageName{}, ig
	}
	if c.tags != nil && c.tagsGen == tg {
		return true, nil
	}
	if c.tags != nil && time.Since(c.loadedAt) < namesReloadEvery {
		return false, nil
	}
	tags := map[string][]string{}
	trows, err := s.query(ctx, s.db, `SELECT digest, tag FROM tags ORDER BY tag`)
	if err != nil {
		return false, err
	}
	if err := collect(trows, tags); err != nil {
		return false, err
	}
	envs := map[string][]string{}
	erows, err := s.query(ctx, s.db, `SELECT digest, environment FROM deployments_current ORDER BY environment`)
	if err != nil {
		return false, err
	}
	if err := collect(erows, envs); err != nil {
		return false, err
	}
	c.tags, c.envs, c.tagsGen, c.loadedAt = tags, envs, tg, time.Now()
	return true, nil
}

func collect(rows *sql.Rows, into map[string][]string) error {
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		into[k] = append(into[k], v)
	}
	return rows.Err()
}

// describe fills digests, repositories, tags and environments of rows
// whose image IDs are known, loading missing image names in batches.
func (s *DB) describe(ctx context.Context, ids []int64) (map[int64]imageName, error) {
	c := &s.names
	c.mu.Lock()
	var missing []int64
	out := make(map[int64]imageName, len(ids))
	for _, id := range ids {
		if n, ok := c.images[id]; ok {
			out[id] = n
		} else {
			missing = append(missing, id)
		}
	}
	c.mu.Unlock()
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	for _, batch := range chunks(missing, 500) {
		rows, err := s.query(ctx, s.db, `SELECT id, digest, repository FROM images WHERE id IN (`+placeholders(len(batch))+`)`, anySlice(batch)...)
		if err != nil {
			return nil, err
		}
		fetched := map[int64]imageName{}
		for rows.Next() {
			var id int64
			var n imageName
			if err := rows.Scan(&id, &n.digest, &n.repository); err != nil {
				rows.Close()
				return nil, err
			}
			fetched[id] = n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		c.mu.Lock()
		for id, n := range fetched {
			c.images[id] = n
			out[id] = n
		}
		c.mu.Unlock()
	}
	return out, nil
}

// tagsAndEnvs returns the tags and environments of digests: from the
// cache when it is current, else read for them.
func (s *DB) tagsAndEnvs(ctx context.Context, current bool, digests []string) (tags, envs map[string][]string, err error) {
	if !current {
		if tags, err = s.tagsOf(ctx, digests); err != nil {
			return nil, nil, err
		}
		envs, err = s.byDigest(ctx, `SELECT digest, environment FROM deployments_current WHERE digest IN (%s) ORDER BY environment`, digests)
		return tags, envs, err
	}
	c := &s.names
	c.mu.Lock()
	defer c.mu.Unlock()
	tags, envs = make(map[string][]string, len(digests)), make(map[string][]string, len(digests))
	for _, d := range digests {
		tags[d], envs[d] = c.tags[d], c.envs[d]
	}
	return tags, envs, nil
}
