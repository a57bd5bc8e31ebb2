package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// BenchFactory returns an empty store for one benchmark.
type BenchFactory func(b *testing.B) store.Store

// Bench runs the store's hot-path benchmarks: indexing images from many
// goroutines (group commit), an image's findings, the images affected by
// an advisory matching two versions of a package, and ending a match
// that more and more images hold (its cost must not grow with them).
// The packages are hand-made: 200 an image, 80 shared by every image as
// a base would be, 119 drawn from a pool of 2,000, and one of two
// versions of lib.
func Bench(b *testing.B, newStore BenchFactory) {
	b.Run("PutImageParallel", func(b *testing.B) {
		s := newStore(b)
		defer s.Close()
		var n atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(n.Add(1))
				if _, err := s.PutImage(ctx, image(fmt.Sprintf("sha256:p%d", i), "r/bench", time.Now()), benchPackages(i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("ImageFindings", func(b *testing.B) {
		s := newStore(b)
		defer s.Close()
		fillBench(b, s, 500)
		b.ResetTimer()
		for i := range b.N {
			fs, err := s.ImageFindings(ctx, fmt.Sprintf("sha256:f%d", i%500))
			if err != nil || len(fs) == 0 {
				b.Fatalf("%d findings, %v", len(fs), err)
			}
		}
	})
	b.Run("AffectedImages/images=2000", func(b *testing.B) {
		s := newStore(b)
		defer s.Close()
		fillBench(b, s, 2000)
		b.ResetTimer()
		for range b.N {
			// Two versions of one package, each held by half the images.
			res, err := s.AffectedImages(ctx, store.AffectedQuery{Advisory: "CVE-2099-2", Limit: 100})
			if err != nil || res.Images != 2000 || len(res.Rows) != 100 {
				b.Fatalf("%d images, %d rows, %v", res.Images, len(res.Rows), err)
			}
		}
	})
	b.Run("ClaimJob/queued=20000", func(b *testing.B) {
		// A runner's turn (claim the oldest job, finish it) with a long
		// queue ahead of it, as after an upgrade that queues a check of
		// every image: its cost must not grow with the jobs done before.
		s := newStore(b)
		defer s.Close()
		queue(b, s, 20000+b.N)
		b.ResetTimer()
		for range b.N {
			j, err := s.ClaimJob(ctx, "bench", []string{"check"}, time.Minute)
			if err != nil || j == nil {
				b.Fatalf("%v %v", j, err)
			}
			if err := s.FinishJob(ctx, j.ID, "bench", "", false, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, images := range []int{100, 2000} {
		b.Run(fmt.Sprintf("EndMatch/images=%d", images), func(b *testing.B) {
			s := newStore(b)
			defer s.Close()
			fillBench(b, s, images)
			rows, err := s.PackagesNamed(ctx, "Debian:12", "base0")
			if err != nil || len(rows) != 1 {
				b.Fatalf("%v %v", rows, err)
			}
			b.ResetTimer()
			for i := range b.N {
				// Each iteration ends the match and opens it again: two
				// changes of one (package version, advisory) pair.
				if _, err := s.SetPackageMatches(ctx, rows[0].ID, nil, nil, time.Unix(int64(2*i+1), 0)); err != nil {
					b.Fatal(err)
				}
				if _, err := s.SetPackageMatches(ctx, rows[0].ID, []store.PackageMatch{{AdvisoryID: "CVE-2099-1", FixedVersion: "2"}}, nil, time.Unix(int64(2*i+2), 0)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// queue enqueues n check jobs, from 8 goroutines.
func queue(b *testing.B, s store.Store, n int) {
	var next atomic.Int64
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, _, err := s.EnqueueJob(ctx, "check", fmt.Sprint("check:", i), []byte("{}")); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
}

func benchPackages(i int) []store.ImagePackage {
	out := make([]store.ImagePackage, 0, 200)
	for k := range 80 {
		out = append(out, pkg("Debian:12", fmt.Sprint("base", k), "1", fmt.Sprint("base", k)))
	}
	for k := range 119 {
		n := (i*7919 + k*104729) % 2000
		out = append(out, pkg("Debian:12", fmt.Sprint("app", n), "1", fmt.Sprint("app", n)))
	}
	return append(out, pkg("Debian:12", "lib", fmt.Sprint(1+i%2), "lib"))
}

// fillBench stores images sha256:f0... with benchPackages, and matches
// one advisory to every base package.
func fillBench(b *testing.B, s store.Store, images int) {
	if _, err := s.UpsertAdvisories(ctx, []store.Advisory{advisory("CVE-2099-1", time.Unix(0, 0), nil, store.Affected{Ecosystem: "Debian:12", Name: "base0", Spec: []byte("hand-made")}),
		advisory("CVE-2099-2", time.Unix(0, 0), nil, store.Affected{Ecosystem: "Debian:12", Name: "lib", Spec: []byte("hand-made")})}); err != nil {
		b.Fatal(err)
	}
	for i := range images {
		if _, err := s.PutImage(ctx, image(fmt.Sprintf("sha256:f%d", i), "r/bench", time.Unix(0, 0)), benchPackages(i)); err != nil {
			b.Fatal(err)
		}
	}
	var ups []store.MatchUpdate
	for k := range 80 {
		rows, err := s.PackagesNamed(ctx, "Debian:12", fmt.Sprint("base", k))
		if err != nil || len(rows) != 1 {
			b.Fatalf("%v %v", rows, err)
		}
		ups = append(ups, store.MatchUpdate{PackageID: rows[0].ID, Matches: []store.PackageMatch{{AdvisoryID: "CVE-2099-1", FixedVersion: "2"}}})
	}
	libs, err := s.PackagesNamed(ctx, "Debian:12", "lib")
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range libs {
		ups = append(ups, store.MatchUpdate{PackageID: r.ID, Matches: []store.PackageMatch{{AdvisoryID: "CVE-2099-2", FixedVersion: "3"}}})
	}
	if _, err := s.SetMatches(ctx, ups, time.Unix(0, 0)); err != nil {
		b.Fatal(err)
	}
}
