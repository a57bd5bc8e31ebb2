package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/store"
)

// TestFixRunsAPI: fix runs are listed with their timeline, shown on the
// dashboard, and only an admin pauses, resumes or cancels one; a run in
// a state that does not allow it answers 409; everything is audited.
func TestFixRunsAPI(t *testing.T) {
	s := newStack(t)
	ctx := context.Background()
	at := time.Now().UTC().Add(-time.Minute)
	id, err := s.st.CreateFixRun(ctx, store.FixRun{Advisories: []string{"CVE-2024-1"}, Status: store.FixRunning, StartedAt: at}) // hand-made
	if err != nil {
		t.Fatal(err)
	}
	if err := s.st.AppendFixStep(ctx, id, store.FixStep{At: at, Name: "sync", OK: true}); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Runs []struct {
			ID       int64           `json:"id"`
			Timeline []store.FixStep `json:"timeline"`
		} `json:"runs"`
	}
	if code := s.call("GET", "/api/v1/fixruns", "viewer", "", &list); code != 200 || len(list.Runs) != 1 || len(list.Runs[0].Timeline) != 1 {
		t.Fatalf("%d %+v", code, list)
	}
	if code := s.call("POST", "/api/v1/fixruns/1/pause", "approver", "", nil); code != http.StatusForbidden {
		t.Fatalf("an approver paused a run: %d", code)
	}
	var run store.FixRun
	if code := s.call("POST", "/api/v1/fixruns/1/pause", "admin", "", &run); code != 200 || run.Status != store.FixPaused {
		t.Fatalf("pause: %d %+v", code, run)
	}
	if code := s.call("POST", "/api/v1/fixruns/1/pause", "admin", "", nil); code != http.StatusConflict {
		t.Fatalf("pausing a paused run: %d", code)
	}
	if code := s.call("POST", "/api/v1/fixruns/1/cancel", "admin", "", &run); code != 200 || run.Status != store.FixCancelled {
		t.Fatalf("cancel: %d %+v", code, run)
	}
	if code := s.call("POST", "/api/v1/fixruns/1/explode", "admin", "", nil); code != http.StatusBadRequest {
		t.Fatalf("unknown action: %d", code)
	}
	if code := s.call("GET", "/api/v1/fixruns/99", "viewer", "", nil); code != http.StatusNotFound {
		t.Fatalf("missing run: %d", code)
	}
	evs, _ := s.st.AuditEvents(ctx, 0, 1000)
	seen := map[string]bool{}
	for _, ev := range evs {
		seen[ev.Action] = true
	}
	if !seen["fixrun.pause"] || !seen["fixrun.cancel"] {
		t.Fatalf("audit %v", seen)
	}
	var mttr struct {
		Environments []any `json:"environments"`
	}
	if code := s.call("GET", "/api/v1/fixruns/mttr", "viewer", "", &mttr); code != 200 {
		t.Fatalf("mttr: %d", code)
	}
}
