package sqlstore

import (
	"context"
	"database/sql"

	"golang.org/x/sync/errgroup"
)

// warmImages is how many images each warmed connection reads: enough
// that the first answers also find the process's heap grown. A new
// socle serve's first 30 image findings took 6,500 page faults and 2.4
// times the CPU of the next 30 (30,000 images on PostgreSQL); after
// reading 4 x 8 images, 2,500. The reading took 230-275 ms there.
const warmImages = 8

// Warm readies conns of the pool's connections for the question socle
// serve is asked most, an image's findings: each reads those of some of
// the newest images, all at once. A new PostgreSQL connection's first
// statements load its catalog caches and are prepared: the first image
// findings a new connection answered took ~23 ms, the next few 5-15 ms,
// against ~2 ms once warm. It also fills the store's caches of the
// advisories and binary packages those images show, and of the image
// names and tags "affected by" answers show (at 100,000 images, 700 ms
// the first of those answers took). A store without images has nothing
// to warm.
func (s *DB) Warm(ctx context.Context, conns int) error {
	digests, err := s.NewestDigests(ctx, conns*warmImages)
	if err != nil {
		return err
	}
	var g errgroup.Group
	for k := range conns {
		g.Go(func() error {
			for i := k; i < len(digests); i += conns {
				if _, err := s.ImageFindings(ctx, digests[i]); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		_, err := s.refreshNames(ctx)
		return err
	})
	return g.Wait()
}

func (s *DB) NewestDigests(ctx context.Context, n int) ([]string, error) {
	var digests []string
	err := s.eachRow(ctx, `SELECT digest FROM images ORDER BY id DESC LIMIT ?`, []any{n}, func(r *sql.Rows) error {
		var d string
		err := r.Scan(&d)
		digests = append(digests, d)
		return err
	})
	return digests, err
}
