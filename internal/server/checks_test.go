package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
)

// TestPushedImagesAreChecked: an image pushed to the embedded registry
// is checked as it is scanned (a hand-made image with a setuid binary is
// caught, in its layer); when the kept check ran other rules, queueing a
// check runs the current ones.
func TestPushedImagesAreChecked(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	img := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "usr/bin/helper", Content: []byte("#!/bin/sh\n"), Mode: 0o4755}})) // hand-made
	digest := s.push(img, "team/setuid", "1")
	s.waitImage(digest)
	kept, err := s.st.ImageCheck(ctx, digest)
	if err != nil {
		t.Fatal(err)
	}
	res, err := check.DecodeResult(kept)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	diffID, _ := layers[0].DiffID()
	found := false
	for _, f := range res.Findings {
		found = found || (f.Rule == "img-setuid" && f.Object == "/usr/bin/helper" && f.Layer == diffID.String())
	}
	if !found || kept.RulesVersion != check.RulesVersion() {
		t.Fatalf("check %+v, findings %+v", kept, res.Findings)
	}
	// Rules changed since: the check is queued again and runs them.
	kept.RulesVersion = "older"
	if err := s.st.PutImageCheck(ctx, kept); err != nil {
		t.Fatal(err)
	}
	stale, err := s.st.ImagesToCheck(ctx, check.RulesVersion(), 10)
	if err != nil || len(stale) != 1 || stale[0].Digest != digest {
		t.Fatalf("stale %v %v", stale, err)
	}
	if err := s.watcher.EnqueueCheck(ctx, stale[0].Repository, digest, check.RulesVersion()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := s.st.ImageCheck(ctx, digest)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if c.RulesVersion == check.RulesVersion() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the image was never checked again")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
