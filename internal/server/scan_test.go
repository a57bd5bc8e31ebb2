package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestScanRequestsStayOnKnownRegistries: a developer may not make the
// server reach a registry socle does not follow; an admin may, and what
// the upstream answers never reaches the API's answer.
func TestScanRequestsStayOnKnownRegistries(t *testing.T) {
	s := newStack(t)
	var reached atomic.Int32
	// A hand-made hostile server whose answers carry text that must not
	// leak.
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"errors":[{"code":"NOT_FOUND","message":"INTERNAL-ONLY: db password is hunter2"}]}`))
	}))
	defer hostile.Close()
	ref := strings.TrimPrefix(hostile.URL, "http://") + "/internal/page:1"
	var out struct {
		Error struct{ Message string }
	}
	if code := s.call("POST", "/api/v1/scans", "developer", `{"reference":"`+ref+`"}`, &out); code != http.StatusForbidden {
		t.Fatalf("a developer's scan of an unknown registry: %d %s", code, out.Error.Message)
	}
	if reached.Load() != 0 {
		t.Fatal("the server reached the unknown registry for a developer")
	}
	code := s.call("POST", "/api/v1/scans", "admin", `{"reference":"`+ref+`"}`, &out)
	if code != http.StatusBadRequest || reached.Load() == 0 {
		t.Fatalf("an admin's scan: %d, reached %d", code, reached.Load())
	}
	if strings.Contains(out.Error.Message, "hunter2") || strings.Contains(out.Error.Message, "INTERNAL-ONLY") {
		t.Fatalf("the upstream body reached the answer: %s", out.Error.Message)
	}
}
