package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Event reports a change to a manifest, tag or blob.
type Event struct {
	// Action is "push", "delete" (a manifest or tag) or "delete-blob".
	Action string
	// Actor is who did it, as the Authorizer named them.
	Actor      string
	Repository string
	// Tag is set when the manifest was pushed or deleted by tag.
	Tag       string
	Digest    string
	MediaType string
	At        time.Time
}

// Action is what a request does to a repository.
type Action int

// Actions, in increasing power.
const (
	ActionPull Action = iota + 1
	ActionPush
	ActionDelete
)

func (a Action) String() string {
	switch a {
	case ActionPull:
		return "pull"
	case ActionPush:
		return "push"
	case ActionDelete:
		return "delete"
	}
	return "unknown"
}

// Access is what a request wants: an action on a repository ("" for the
// catalog and the base endpoint).
type Access struct {
	Action     Action
	Repository string
}

// Principal is who a request acts as, as far as the registry cares.
type Principal struct {
	Name string
	// Promoter may move environment tags: socle's promoter and rollback,
	// and nothing else.
	Promoter bool
}

// Errors an Authorizer returns.
var (
	// ErrUnauthenticated: no valid credential; answered 401 with a
	// challenge, so that docker login and crane auth send one.
	ErrUnauthenticated = errors.New("authentication required")
	// ErrDenied: the credential may not do this; answered 403.
	ErrDenied = errors.New("access denied")
)

// Authorizer decides whether a request may have an access, and who it
// acts as. It returns ErrUnauthenticated, or an error wrapping
// ErrDenied, to refuse.
type Authorizer interface {
	Authorize(r *http.Request, a Access) (Principal, error)
}

// Options configure a Registry.
type Options struct {
	// Dir holds the blobs, the uploads and the manifest journal.
	Dir string
	// OnEvent is called after a push is durable and before it is visible
	// or answered: an error fails the push with a 5xx and withdraws the
	// manifest. For a delete it is called after the delete.
	OnEvent func(ctx context.Context, ev Event) error
	// Authorizer, when set, checks every request. Without one the
	// registry is open for pulls and pushes (loopback), and refuses
	// deletes.
	Authorizer Authorizer
	// PromoterSecret, when set, is a credential (a bearer token, or a
	// basic-auth password) that acts as the promoter.
	PromoterSecret string
	// Protected names the environment a tag belongs to ("" for none):
	// only the promoter may move or delete such a tag.
	Protected func(repository, tag string) string
	// Immutable reports whether a tag may never point at another digest
	// once pushed.
	Immutable func(repository, tag string) bool
	// MaxBlobSize bounds one blob (default 16 GiB).
	MaxBlobSize int64
	// UploadTimeout is how long an upload may sit without a byte before
	// it is dropped and its file removed (default 1h).
	UploadTimeout time.Duration
	// ReadIdle is how long a request body may stall before the request
	// fails (default 2m); a slow upload that keeps moving is not cut.
	ReadIdle time.Duration
	// Logger receives the registry's messages; nil is silent.
	Logger *slog.Logger

	// syncFile writes a file durably; tests replace it to inject faults.
	syncFile func(path string, data []byte) error
}

// Registry is the embedded registry's HTTP handler.
type Registry struct {
	opts    Options
	log     *slog.Logger
	blobs   string
	uploads string
	journal string

	// mu guards the index of repositories, manifests and tags. It is
	// held only for map operations, never across a client's I/O.
	mu    sync.RWMutex
	repos map[string]*repository
	// referrers maps a subject digest to the manifests that name it.
	referrers map[string][]referrer

	// blobMu makes a blob's existence check and touch (manifest push)
	// atomic with its removal (garbage collection).
	blobMu sync.Mutex

	upMu      sync.Mutex
	upRunning map[string]*upload

	// writeMu serialises journal writes per repository and tag.
	writeMu keyedMutex

	stopJanitor context.CancelFunc
}

// repoName is the OCI distribution repository name grammar.
var repoName = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

var tagName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// New opens (or creates) a registry in opts.Dir, loads its journal, and
// starts dropping abandoned uploads; Close stops that.
func New(opts Options) (*Registry, error) {
	if opts.Dir == "" {
		return nil, errors.New("registry: no directory")
	}
	if opts.MaxBlobSize <= 0 {
		opts.MaxBlobSize = 16 << 30
	}
	if opts.UploadTimeout <= 0 {
		opts.UploadTimeout = time.Hour
	}
	if opts.ReadIdle <= 0 {
		opts.ReadIdle = 2 * time.Minute
	}
	if opts.syncFile == nil {
		opts.syncFile = writeFileSync
	}
	r := &Registry{
		opts:      opts,
		log:       opts.Logger,
		blobs:     filepath.Join(opts.Dir, "blobs"),
		uploads:   filepath.Join(opts.Dir, "uploads"),
		journal:   filepath.Join(opts.Dir, "repositories"),
		repos:     map[string]*repository{},
		referrers: map[string][]referrer{},
		upRunning: map[string]*upload{},
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{r.blobs, r.uploads, r.journal} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	// Uploads do not survive a restart: their clients start again.
	if err := clearDir(r.uploads); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.stopJanitor = cancel
	go r.janitor(ctx)
	return r, nil
}

// Close stops the registry's background work.
func (r *Registry) Close() error {
	r.stopJanitor()
	return nil
}

// regError is a distribution API error answer.
type regError struct {
	status  int
	code    string
	message string
}

func (e *regError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *regError {
	return &regError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	type detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Errors []detail `json:"errors"`
	}{[]detail{{code, msg}}})
}

func (r *Registry) fail(w http.ResponseWriter, err error) {
	var re *regError
	if errors.As(err, &re) {
		if re.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="socle"`)
		}
		writeError(w, re.status, re.code, re.message)
		return
	}
	// Never show an internal error's text: it can name paths.
	r.log.Error("registry request failed", "err", err)
	writeError(w, http.StatusInternalServerError, "UNKNOWN", "internal error; see the server log")
}

// route splits /v2/<repo>/<kind>/<ref>.
type route struct {
	repo, kind, ref string
}

func parseRoute(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return route{}, false
	}
	if rest == "_catalog" {
		return route{kind: "catalog"}, true
	}
	if strings.HasSuffix(rest, "/tags/list") {
		return route{repo: strings.TrimSuffix(rest, "/tags/list"), kind: "tags"}, true
	}
	for _, kind := range []string{"/manifests/", "/blobs/uploads/", "/blobs/", "/referrers/"} {
		if i := strings.LastIndex(rest, kind); i > 0 {
			return route{repo: rest[:i], kind: strings.Trim(kind, "/"), ref: rest[i+len(kind):]}, true
		}
	}
	if strings.HasSuffix(rest, "/blobs/uploads") {
		return route{repo: strings.TrimSuffix(rest, "/blobs/uploads"), kind: "blobs/uploads"}, true
	}
	return route{}, false
}

// action is what a request on a route does.
func (rt route) action(method string) Action {
	switch method {
	case http.MethodGet, http.MethodHead:
		return ActionPull
	case http.MethodDelete:
		if rt.kind == "blobs/uploads" {
			return ActionPush // cancelling one's own upload
		}
		return ActionDelete
	}
	return ActionPush
}

// trustedKey marks requests served in process, which act as the
// promoter and need no credential.
type trustedKey struct{}

// ServeHTTP implements the distribution API.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if req.URL.Path == "/v2" || req.URL.Path == "/v2/" {
		if _, err := r.authorize(req, Access{Action: ActionPull}); err != nil {
			r.fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
		return
	}
	rt, ok := parseRoute(req.URL.Path)
	if !ok {
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", "no such endpoint")
		return
	}
	if rt.kind != "catalog" && (!repoName.MatchString(rt.repo) || len(rt.repo) > 255) {
		writeError(w, http.StatusBadRequest, "NAME_INVALID", "invalid repository name")
		return
	}
	p, err := r.authorize(req, Access{Action: rt.action(req.Method), Repository: rt.repo})
	if err != nil {
		r.fail(w, err)
		return
	}
	if err := r.serve(w, req, rt, p); err != nil {
		r.fail(w, err)
	}
}

// authorize finds who a request acts as, and whether it may.
func (r *Registry) authorize(req *http.Request, a Access) (Principal, error) {
	if req.Context().Value(trustedKey{}) != nil {
		return Principal{Name: "socle", Promoter: true}, nil
	}
	if r.opts.PromoterSecret != "" && presents(req, r.opts.PromoterSecret) {
		return Principal{Name: "socle promoter", Promoter: true}, nil
	}
	if r.opts.Authorizer == nil {
		if a.Action == ActionDelete {
			return Principal{}, errorf(http.StatusForbidden, "DENIED", "deletes need an admin token, and this registry runs without tokens")
		}
		return Principal{Name: "anonymous"}, nil
	}
	p, err := r.opts.Authorizer.Authorize(req, a)
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return p, errorf(http.StatusUnauthorized, "UNAUTHORIZED", "%v", err)
	case err != nil:
		return p, errorf(http.StatusForbidden, "DENIED", "%v", err)
	}
	return p, nil
}

// presents reports whether a request carries secret as a bearer token or
// a basic-auth password, compared in constant time.
func presents(req *http.Request, secret string) bool {
	got := ""
	if h, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		got = strings.TrimSpace(h)
	} else if _, pass, ok := req.BasicAuth(); ok {
		got = pass
	}
	return got != "" && constantTimeEqual(got, secret)
}

// serve handles a request whose access was checked.
func (r *Registry) serve(w http.ResponseWriter, req *http.Request, rt route, p Principal) error {
	switch {
	case rt.kind == "catalog" && req.Method == http.MethodGet:
		return r.catalog(w, req)
	case rt.kind == "tags" && req.Method == http.MethodGet:
		return r.tagList(w, req, rt.repo)
	case rt.kind == "referrers" && req.Method == http.MethodGet:
		return r.referrerList(w, req, rt)
	case rt.kind == "manifests":
		switch req.Method {
		case http.MethodGet, http.MethodHead:
			return r.getManifest(w, req, rt)
		case http.MethodPut:
			return r.putManifest(w, req, rt, p)
		case http.MethodDelete:
			return r.deleteManifest(w, req, rt, p)
		}
	case rt.kind == "blobs":
		switch req.Method {
		case http.MethodGet, http.MethodHead:
			return r.getBlob(w, req, rt)
		case http.MethodDelete:
			return r.deleteBlob(w, req, rt, p)
		}
	case rt.kind == "blobs/uploads":
		switch req.Method {
		case http.MethodPost:
			return r.startUpload(w, req, rt)
		case http.MethodPatch:
			return r.patchUpload(w, req, rt)
		case http.MethodPut:
			return r.finishUpload(w, req, rt)
		case http.MethodGet:
			return r.uploadStatus(w, req, rt)
		case http.MethodDelete:
			return r.cancelUpload(w, req, rt)
		}
	}
	return errorf(http.StatusMethodNotAllowed, "UNSUPPORTED", "%s is not supported here", req.Method)
}

// keyedMutex locks by key, for short critical sections of one repository
// or tag.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
