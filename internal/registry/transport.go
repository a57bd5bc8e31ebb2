package registry

import (
	"io"
	"net/http"
	"strconv"
	"sync"
)

// Transport returns an http.RoundTripper that serves requests from the
// registry in process, streaming bodies without buffering them, and
// without the authorizer: it is how socle itself reads what was pushed.
// The request's host is ignored.
func (r *Registry) Transport() http.RoundTripper {
	return handlerTransport{h: http.HandlerFunc(r.serveInternal)}
}

// serveInternal is ServeHTTP without the authorizer.
func (r *Registry) serveInternal(w http.ResponseWriter, req *http.Request) {
	r.serve(w, req)
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
