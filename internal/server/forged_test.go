package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
)

// The layer-cache attacks of the CLI tests, through pushes to the
// embedded registry: hand-made layers of one npm package.json each,
// minimist 1.2.6 (clean) or 1.2.5 (affected by the real GHSA record).

// TestPushedForgedDiffIDIsRefused: after a clean image is scanned, a
// pushed image claiming the clean layer's DiffID for a vulnerable layer
// is not indexed; its scan job fails and names the layer.
func TestPushedForgedDiffIDIsRefused(t *testing.T) {
	s := newStack(t)
	s.importAdvisories("osv", "ghsa", "GHSA-xvch-5gv4-984h.json")
	clean := testenv.NPMPackage(t, "minimist", "1.2.6")
	vulnerable := testenv.NPMPackage(t, "minimist", "1.2.5")
	s.waitImage(s.push(testenv.Image(t, clean), "apps/clean", "1"))
	forged := testenv.ForgeDiffID(t, testenv.Image(t, vulnerable), 0, testenv.DiffID(t, clean))
	d := s.push(forged, "apps/forged", "1")
	job := s.waitJobFailed(d)
	ld, _ := vulnerable.Digest()
	if !strings.Contains(job.Error, "layer 0") || !strings.Contains(job.Error, ld.String()) {
		t.Fatalf("the failed scan does not name the layer: %s", job.Error)
	}
	if ok, _ := s.st.HasImage(context.Background(), d); ok {
		t.Fatal("the forged image was indexed")
	}
	s.assertMinimist(testenv.Image(t, vulnerable), "apps/honest")
}

// TestPushedPoisonLayerIsRefused: a pushed image claiming the DiffID of
// a vulnerable layer not yet seen, holding harmless bytes, is refused,
// and does not blank that layer for the real image pushed after it.
func TestPushedPoisonLayerIsRefused(t *testing.T) {
	s := newStack(t)
	s.importAdvisories("osv", "ghsa", "GHSA-xvch-5gv4-984h.json")
	clean := testenv.NPMPackage(t, "minimist", "1.2.6")
	vulnerable := testenv.NPMPackage(t, "minimist", "1.2.5")
	poison := testenv.ForgeDiffID(t, testenv.Image(t, clean), 0, testenv.DiffID(t, vulnerable))
	if job := s.waitJobFailed(s.push(poison, "apps/poison", "1")); !strings.Contains(job.Error, "DiffID") {
		t.Fatalf("the poison image's scan: %s", job.Error)
	}
	s.assertMinimist(testenv.Image(t, vulnerable), "apps/real")
}

// waitJobFailed waits for the scan job of digest to fail for good.
func (s *stack) waitJobFailed(digest string) store.Job {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		js, _ := s.st.Jobs(context.Background(), 100)
		for _, j := range js {
			if strings.Contains(string(j.Payload), digest) && j.State == store.JobFailed {
				return j
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("the scan of %s never failed", digest)
	return store.Job{}
}

// assertMinimist pushes img and wants its minimist finding indexed.
func (s *stack) assertMinimist(img v1.Image, repo string) {
	s.t.Helper()
	d := s.push(img, repo, "1")
	s.waitImage(d)
	fs, err := s.st.ImageFindings(context.Background(), d)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, f := range fs {
		if f.AdvisoryID == "GHSA-xvch-5gv4-984h" {
			return
		}
	}
	s.t.Fatalf("the vulnerable image %s has no minimist finding: %+v", d, fs)
}
