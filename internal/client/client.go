package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Client calls a socle server's API with a token.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (a test's TLS roots, a transport).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// New returns a client of the server at server (http(s)://host[:port]).
func New(server, token string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(server, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want http(s)://host[:port]", server)
	}
	c := &Client{base: u, token: token, http: &http.Client{Timeout: 10 * time.Minute}}
	for _, o := range opts {
		o(c)
	}
	// A redirect would carry the token elsewhere: never follow one.
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

// WithCAFile trusts the PEM certificates of file (a self-signed server's
// CA) besides the system's roots.
func WithCAFile(file string) (Option, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("the server's CA: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("the server's CA %s holds no PEM certificate", file)
	}
	return func(c *Client) {
		c.http.Transport = &http.Transport{Proxy: http.ProxyFromEnvironment, TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 5 * time.Minute, IdleConnTimeout: 90 * time.Second}
	}, nil
}

// FromContext returns the client of a login context.
func FromContext(c Context) (*Client, error) {
	var opts []Option
	if c.CAFile != "" {
		o, err := WithCAFile(c.CAFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	return New(c.Server, c.Token, opts...)
}

// WithToken returns a copy of the client that sends another token.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// Server is the server's address.
func (c *Client) Server() string { return c.base.String() }

// Error is an error answer of the API.
type Error struct {
	Status  int
	Message string
	// Body is the whole answer, for error answers that carry more (a
	// blocked promotion's gates).
	Body []byte
}

func (e *Error) Error() string {
	switch e.Status {
	case http.StatusUnauthorized:
		return "the server refused the token (" + e.Message + "): socle login again, or set SOCLE_TOKEN"
	}
	return e.Message
}

// Sentinels an Error matches with errors.Is, by status.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrBadRequest   = errors.New("bad request")
)

// Is maps the status to a sentinel.
func (e *Error) Is(target error) bool {
	return map[int]error{
		http.StatusUnauthorized: ErrUnauthorized, http.StatusForbidden: ErrForbidden, http.StatusNotFound: ErrNotFound,
		http.StatusConflict: ErrConflict, http.StatusBadRequest: ErrBadRequest,
	}[e.Status] == target
}

// maxAnswer bounds an answer read into memory.
const maxAnswer = 256 << 20

// Do sends in (JSON, when not nil) to method path (with its query) and
// decodes the JSON answer into out (when not nil).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	resp, err := c.send(ctx, method, path, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return nil
}

// Raw sends a body and returns the answer's bytes, for downloads and
// uploads that are not JSON.
func (c *Client) Raw(ctx context.Context, method, path string, body io.Reader, contentType string) ([]byte, error) {
	resp, err := c.send(ctx, method, path, body, contentType)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
}

func (c *Client) send(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	u := *c.base
	p, q, _ := strings.Cut(path, "?")
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawQuery = q
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching socle at %s: %w", c.base, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &e) != nil || e.Error.Message == "" {
			e.Error.Message = fmt.Sprintf("%s %s: HTTP %d", method, p, resp.StatusCode)
		}
		return nil, &Error{Status: resp.StatusCode, Message: e.Error.Message, Body: b}
	}
	return resp, nil
}
