package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/notify"
)

// TestRetriesAndSignature: a receiver that fails twice gets the event on
// the third attempt, signed; a 400 is not retried; a hook that does not
// want the event gets nothing.
func TestRetriesAndSignature(t *testing.T) {
	var mu sync.Mutex
	var bodies [][]byte
	var sigs []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, b)
		sigs = append(sigs, r.Header.Get("X-Socle-Signature"))
	}))
	defer srv.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadRequest) }))
	defer bad.Close()
	n := &notify.Notifier{Backoff: time.Millisecond, Hooks: []notify.Webhook{
		{URL: srv.URL + "/hook?token=secret-in-query", Secret: "s3cret", Events: []string{notify.EventFindingsNew}},
		{URL: srv.URL + "/other", Events: []string{notify.EventRemediationDone}},
	}}
	if err := n.Send(context.Background(), notify.EventFindingsNew, map[string]int{"opened": 2}); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || len(bodies) != 1 {
		t.Fatalf("%d calls, %d deliveries", calls, len(bodies))
	}
	if !notify.Verify("s3cret", bodies[0], sigs[0]) || notify.Verify("other", bodies[0], sigs[0]) {
		t.Fatal("the signature does not verify")
	}
	var env struct {
		Event string
		Data  map[string]int
	}
	json.Unmarshal(bodies[0], &env)
	if env.Event != notify.EventFindingsNew || env.Data["opened"] != 2 {
		t.Fatalf("body %s", bodies[0])
	}
	n = &notify.Notifier{Backoff: time.Millisecond, Hooks: []notify.Webhook{{URL: bad.URL + "/x?key=hidden"}}}
	err := n.Send(context.Background(), notify.EventRemediationDone, nil)
	if err == nil || !strings.Contains(err.Error(), "not retried") || strings.Contains(err.Error(), "hidden") {
		t.Fatalf("400: %v", err)
	}
	n = &notify.Notifier{Backoff: time.Millisecond, Attempts: 2, Hooks: []notify.Webhook{{URL: "http://127.0.0.1:1/x?key=hidden"}}}
	err = n.Send(context.Background(), notify.EventRemediationDone, nil)
	if err == nil || strings.Contains(err.Error(), "hidden") {
		t.Fatalf("unreachable: %v", err)
	}
}
