package registry

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Transport returns an http.RoundTripper that serves requests from the
// registry in process, streaming bodies without buffering them. Its
// requests need no credential and act as socle itself (the promoter):
// it is how socle reads what was pushed, and how its promoter moves
// environment tags. It also sees pushes whose scan is not queued yet.
// The request's host is ignored.
func (r *Registry) Transport() http.RoundTripper {
	return handlerTransport{h: http.HandlerFunc(r.serveTrusted)}
}

// serveTrusted serves a request made in process.
func (r *Registry) serveTrusted(w http.ResponseWriter, req *http.Request) {
	r.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), trustedKey{}, true)))
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	pr, pw := io.Pipe()
	rw := &pipeWriter{
		header: http.Header{},
		body:   pw,
		ready:  make(chan struct{}),
		req:    req,
	}
	go func() {
		defer func() {
			rw.WriteHeader(http.StatusOK) // no-op when already written
			pw.Close()
		}()
		t.h.ServeHTTP(rw, req)
	}()
	select {
	case <-rw.ready:
	case <-req.Context().Done():
		pw.CloseWithError(req.Context().Err())
		return nil, req.Context().Err()
	}
	resp := &http.Response{
		Status:        http.StatusText(rw.status),
		StatusCode:    rw.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rw.header,
		Body:          pr,
		ContentLength: -1,
		Request:       req,
	}
	if cl := rw.header.Get("Content-Length"); cl != "" {
		if n, err := strconv.ParseInt(cl, 10, 64); err == nil {
			resp.ContentLength = n
		}
	}
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
		go io.Copy(io.Discard, pr)
	}
	return resp, nil
}

// pipeWriter is a ResponseWriter whose body streams into a pipe.
type pipeWriter struct {
	header http.Header
	body   *io.PipeWriter
	status int
	once   sync.Once
	ready  chan struct{}
	req    *http.Request
}

func (p *pipeWriter) Header() http.Header { return p.header }

func (p *pipeWriter) WriteHeader(code int) {
	p.once.Do(func() {
		p.status = code
		close(p.ready)
	})
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.body.Write(b)
}

// Route returns a RoundTripper that sends requests for any of hosts to
// local (the registry in process) and every other one to next: how a
// client that talks to several registries reaches the embedded one as
// socle.
func Route(hosts []string, local, next http.RoundTripper) http.RoundTripper {
	t := routeTransport{hosts: map[string]bool{}, local: local, next: next}
	for _, h := range hosts {
		t.hosts[h] = true
	}
	return t
}

type routeTransport struct {
	hosts       map[string]bool
	local, next http.RoundTripper
}

func (t routeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.hosts[req.URL.Host] {
		return t.local.RoundTrip(req)
	}
	return t.next.RoundTrip(req)
}

// LocalNames are the host:port names a listener on addr answers to on
// this machine: addr itself, and for a loopback or unspecified host,
// localhost, 127.0.0.1, [::1] and the host name.
func LocalNames(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return []string{addr}
	}
	out := []string{addr}
	ip := net.ParseIP(host)
	if host == "localhost" || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified())) {
		for _, h := range []string{"localhost", "127.0.0.1", "::1"} {
			out = append(out, net.JoinHostPort(h, port))
		}
		if ip == nil || ip.IsUnspecified() {
			if name, err := os.Hostname(); err == nil {
				out = append(out, net.JoinHostPort(name, port))
			}
		}
	}
	return out
}

// PromoterKeychain returns a keychain that presents the promoter secret
// to the registry at host and asks next for every other registry: how
// socle's command line, on the host running socle serve, moves
// environment tags in the embedded registry.
func PromoterKeychain(host, secret string, next authn.Keychain) authn.Keychain {
	return promoterKeychain{host: host, secret: secret, next: next}
}

type promoterKeychain struct {
	host, secret string
	next         authn.Keychain
}

func (k promoterKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.host {
		return &authn.Basic{Username: "socle-promoter", Password: k.secret}, nil
	}
	return k.next.Resolve(r)
}
