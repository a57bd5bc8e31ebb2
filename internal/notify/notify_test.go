package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
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
	if err := notify.Verify("s3cret", bodies[0], sigs[0], time.Now(), 5*time.Minute); err != nil {
		t.Fatalf("the signature does not verify: %v", err)
	}
	if notify.Verify("other", bodies[0], sigs[0], time.Now(), 5*time.Minute) == nil {
		t.Fatal("the signature verifies with another secret")
	}
	// A replay, ten minutes later, is refused by a receiver allowing five.
	if err := notify.Verify("s3cret", bodies[0], sigs[0], time.Now().Add(10*time.Minute), 5*time.Minute); !errors.Is(err, notify.ErrReplay) {
		t.Fatalf("a replayed delivery: %v", err)
	}
	// The time is signed: changing it breaks the signature.
	forged := strings.Replace(sigs[0], "t=", "t=9", 1)
	if notify.Verify("s3cret", bodies[0], forged, time.Now(), 5*time.Minute) == nil {
		t.Fatal("a delivery with an edited time verifies")
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

// TestDeliveriesDoNotFollowRedirects: a receiver that redirects does not
// get the signed body sent on to where it points.
func TestDeliveriesDoNotFollowRedirects(t *testing.T) {
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer elsewhere.Close()
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	n := &notify.Notifier{Backoff: time.Millisecond, Attempts: 1, Hooks: []notify.Webhook{{URL: redirect.URL, Secret: "s"}}}
	if err := n.Send(context.Background(), notify.EventFindingsNew, nil); err == nil {
		t.Fatal("a redirect counted as a delivery")
	}
	if reached.Load() != 0 {
		t.Fatal("the delivery followed the redirect")
	}
}
