package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// Timeouts bound outbound calls to registries and feeds.
type Timeouts struct {
	// Connect bounds dialling and the TLS handshake (default 10s).
	Connect time.Duration
	// Response bounds the wait for a response's headers (default 30s).
	Response time.Duration
	// Idle bounds a pause while a body streams (default 60s): a server
	// that trickles or stops sending is cut, a slow steady one is not.
	Idle time.Duration
}

func (t Timeouts) withDefaults() Timeouts {
	if t.Connect <= 0 {
		t.Connect = 10 * time.Second
	}
	if t.Response <= 0 {
		t.Response = 30 * time.Second
	}
	if t.Idle <= 0 {
		t.Idle = 60 * time.Second
	}
	return t
}

// NewTransport returns an HTTP transport whose every call has a
// deadline at each step: connecting, waiting for an answer, and each
// pause in the body. A tarpit cannot hold a caller.
func NewTransport(t Timeouts) http.RoundTripper {
	t = t.withDefaults()
	d := &net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	base := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   t.Connect,
		ResponseHeaderTimeout: t.Response,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   16,
		ForceAttemptHTTP2:     true,
	}
	return &idleTransport{next: base, idle: t.Idle}
}

// idleTransport cuts a response body that pauses longer than idle.
type idleTransport struct {
	next http.RoundTripper
	idle time.Duration
}

func (t *idleTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel(nil)
		return nil, err
	}
	resp.Body = newIdleBody(resp.Body, t.idle, cancel)
	return resp, nil
}

// ErrStalled is the cause of a body cut for pausing too long.
var ErrStalled = errors.New("the server stopped sending")

type idleBody struct {
	rc     io.ReadCloser
	timer  *time.Timer
	idle   time.Duration
	cancel context.CancelCauseFunc
}

func newIdleBody(rc io.ReadCloser, idle time.Duration, cancel context.CancelCauseFunc) *idleBody {
	b := &idleBody{rc: rc, idle: idle, cancel: cancel}
	b.timer = time.AfterFunc(idle, func() { cancel(fmt.Errorf("%w for %s", ErrStalled, idle)) })
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.timer.Reset(b.idle)
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	b.cancel(nil)
	return b.rc.Close()
}

// defaultTransport is the transport of registry calls when Options name
// none.
var defaultTransport = NewTransport(Timeouts{})
