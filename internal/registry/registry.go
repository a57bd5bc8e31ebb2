package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Event reports a change to a manifest or tag.
type Event struct {
	// Action is "push" or "delete".
	Action     string
	Repository string
	// Tag is set when the manifest was pushed or deleted by tag.
	Tag       string
	Digest    string
	MediaType string
	At        time.Time
}

// Access is what a request wants to do.
type Access int

// Kinds of access, in increasing power.
const (
	AccessPull Access = iota + 1
	AccessPush
)

// Authorizer decides whether a request may have an access. It returns
// nil to allow, and an error to refuse (with a 401).
type Authorizer interface {
	Authorize(r *http.Request, a Access) error
}

// Options configure a Registry.
type Options struct {
	// Dir holds the blobs and the manifest journal.
	Dir string
	// OnEvent is called after a push or delete is durable and before the
	// client is answered; an error is logged, never returned to the
	// client.
	OnEvent func(ctx context.Context, ev Event) error
	// Authorizer, when set, checks every request.
	Authorizer Authorizer
	// Logger receives the registry's messages; nil is silent.
	Logger *slog.Logger
}

// Registry is the embedded registry's HTTP handler.
type Registry struct {
	inner   http.Handler
	dir     string
	blobs   string
	opts    Options
	log     *slog.Logger
	mu      sync.Mutex // serialises journal writes with their replay
	journal string
}

// repoName is the OCI distribution repository name grammar.
var repoName = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

var tagName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

// New opens (or creates) a registry in opts.Dir and replays its journal.
func New(opts Options) (*Registry, error) {
	if opts.Dir == "" {
		return nil, errors.New("registry: no directory")
	}
	r := &Registry{
		dir:     opts.Dir,
		blobs:   filepath.Join(opts.Dir, "blobs"),
		journal: filepath.Join(opts.Dir, "repositories"),
		opts:    opts,
		log:     opts.Logger,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	for _, d := range []string{r.blobs, r.journal} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("registry: %w", err)
		}
	}
	r.inner = ggcr.New(
		ggcr.WithBlobHandler(ggcr.NewDiskBlobHandler(r.blobs)),
		ggcr.WithReferrersSupport(true),
		ggcr.Logger(log.New(io.Discard, "", 0)),
	)
	if err := r.replay(); err != nil {
		return nil, err
	}
	return r, nil
}

// Manifest is one journaled manifest.
type Manifest struct {
	Repository string
	Digest     string
	MediaType  string
	Tags       []string
}

// Manifests lists everything the registry holds, for reconciliation.
func (r *Registry) Manifests() ([]Manifest, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.list()
}

func (r *Registry) list() ([]Manifest, error) {
	byKey := map[string]*Manifest{}
	var out []*Manifest
	err := filepath.WalkDir(r.journal, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(r.journal, p)
		rel = filepath.ToSlash(rel)
		switch {
		case strings.Contains(rel, "/_manifests/sha256/") && !strings.HasSuffix(rel, ".type") && !strings.Contains(filepath.Base(rel), ".tmp"):
			repo, hexd, _ := strings.Cut(rel, "/_manifests/sha256/")
			ct, _ := os.ReadFile(p + ".type")
			m := &Manifest{Repository: repo, Digest: "sha256:" + hexd, MediaType: string(ct)}
			byKey[repo+"@"+m.Digest] = m
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry journal: %w", err)
	}
	err = filepath.WalkDir(r.journal, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(r.journal, p)
		rel = filepath.ToSlash(rel)
		if repo, tag, ok := strings.Cut(rel, "/_tags/"); ok && !strings.Contains(tag, ".tmp") {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if m, ok := byKey[repo+"@"+strings.TrimSpace(string(b))]; ok {
				m.Tags = append(m.Tags, tag)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry journal: %w", err)
	}
	res := make([]Manifest, 0, len(out))
	for _, m := range out {
		sort.Strings(m.Tags)
		res = append(res, *m)
	}
	sort.Slice(res, func(i, j int) bool {
		if res[i].Repository != res[j].Repository {
			return res[i].Repository < res[j].Repository
		}
		return res[i].Digest < res[j].Digest
	})
	return res, nil
}

// replay feeds the journal back into the in-memory handler: children
// (image manifests) before the indexes that list them, then tags.
func (r *Registry) replay() error {
	ms, err := r.list()
	if err != nil {
		return err
	}
	sort.SliceStable(ms, func(i, j int) bool {
		return !types.MediaType(ms[i].MediaType).IsIndex() && types.MediaType(ms[j].MediaType).IsIndex()
	})
	for _, m := range ms {
		data, err := os.ReadFile(r.manifestPath(m.Repository, m.Digest))
		if err != nil {
			return err
		}
		for _, ref := range append([]string{m.Digest}, m.Tags...) {
			req := httptest.NewRequest(http.MethodPut, "/v2/"+m.Repository+"/manifests/"+ref, bytes.NewReader(data))
			req.Header.Set("Content-Type", m.MediaType)
			rec := httptest.NewRecorder()
			r.inner.ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				r.log.Warn("registry replay refused a manifest", "repository", m.Repository, "ref", ref, "status", rec.Code, "body", rec.Body.String())
			}
		}
	}
	r.log.Info("registry journal replayed", "manifests", len(ms))
	return nil
}

func (r *Registry) manifestPath(repo, digest string) string {
	return filepath.Join(r.journal, filepath.FromSlash(repo), "_manifests", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func (r *Registry) tagPath(repo, tag string) string {
	return filepath.Join(r.journal, filepath.FromSlash(repo), "_tags", tag)
}

// writeFileSync writes a file atomically and durably: temp file, fsync,
// rename, fsync of the directory.
func writeFileSync(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), filepath.Base(p)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return err
	}
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
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
	for _, kind := range []string{"/manifests/", "/blobs/uploads/", "/blobs/", "/tags/", "/referrers/"} {
		if i := strings.LastIndex(rest, kind); i > 0 {
			return route{repo: rest[:i], kind: strings.Trim(kind, "/"), ref: rest[i+len(kind):]}, true
		}
	}
	if strings.HasSuffix(rest, "/blobs/uploads") {
		return route{repo: strings.TrimSuffix(rest, "/blobs/uploads"), kind: "blobs/uploads"}, true
	}
	return route{}, false
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

// ServeHTTP implements the distribution API.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.opts.Authorizer != nil {
		access := AccessPull
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			access = AccessPush
		}
		if err := r.opts.Authorizer.Authorize(req, access); err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="socle"`)
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", err.Error())
			return
		}
	}
	r.serve(w, req)
}

// serve handles a request whose access was checked.
func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	rt, ok := parseRoute(req.URL.Path)
	if ok {
		if !repoName.MatchString(rt.repo) || len(rt.repo) > 255 {
			writeError(w, http.StatusBadRequest, "NAME_INVALID", "invalid repository name")
			return
		}
		switch {
		case rt.kind == "manifests" && (req.Method == http.MethodPut || req.Method == http.MethodDelete):
			r.handleManifestWrite(w, req, rt)
			return
		case rt.kind == "blobs/uploads" && req.Method == http.MethodPost && req.URL.Query().Get("mount") != "":
			if r.mount(w, req, rt) {
				return
			}
		}
	}
	r.inner.ServeHTTP(w, req)
}

// mount answers a cross-repository mount from the shared blob store:
// the blob is already there, whichever repository pushed it.
func (r *Registry) mount(w http.ResponseWriter, req *http.Request, rt route) bool {
	h, err := v1.NewHash(req.URL.Query().Get("mount"))
	if err != nil {
		return false
	}
	if _, err := os.Stat(filepath.Join(r.blobs, h.Algorithm, h.Hex)); err != nil {
		return false // fall back to a normal upload
	}
	w.Header().Set("Location", "/v2/"+rt.repo+"/blobs/"+h.String())
	w.Header().Set("Docker-Content-Digest", h.String())
	w.WriteHeader(http.StatusCreated)
	return true
}

const maxManifest = 4 << 20

func (r *Registry) handleManifestWrite(w http.ResponseWriter, req *http.Request, rt route) {
	var body []byte
	if req.Method == http.MethodPut {
		b, err := io.ReadAll(io.LimitReader(req.Body, maxManifest+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", err.Error())
			return
		}
		if len(b) > maxManifest {
			writeError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", "manifest too large")
			return
		}
		body = b
		isDigest := strings.HasPrefix(rt.ref, "sha256:")
		if !isDigest && !tagName.MatchString(rt.ref) {
			writeError(w, http.StatusBadRequest, "TAG_INVALID", "invalid tag")
			return
		}
		if isDigest {
			sum := sha256.Sum256(b)
			if rt.ref != "sha256:"+hex.EncodeToString(sum[:]) {
				writeError(w, http.StatusBadRequest, "DIGEST_INVALID", "manifest does not match its digest")
				return
			}
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	r.mu.Lock()
	rec := httptest.NewRecorder()
	r.inner.ServeHTTP(rec, req)
	var ev *Event
	var err error
	switch {
	case req.Method == http.MethodPut && rec.Code == http.StatusCreated:
		ev, err = r.persistPut(req, rt, body, rec.Header().Get("Docker-Content-Digest"))
	case req.Method == http.MethodDelete && rec.Code == http.StatusAccepted:
		ev, err = r.persistDelete(rt)
	}
	r.mu.Unlock()
	if err != nil {
		r.log.Error("registry journal write failed", "repository", rt.repo, "ref", rt.ref, "err", err)
		writeError(w, http.StatusInternalServerError, "UNKNOWN", "could not persist the manifest")
		return
	}
	if ev != nil && r.opts.OnEvent != nil {
		if err := r.opts.OnEvent(req.Context(), *ev); err != nil {
			r.log.Error("registry event hook failed", "repository", ev.Repository, "digest", ev.Digest, "err", err)
		}
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func (r *Registry) persistPut(req *http.Request, rt route, body []byte, digest string) (*Event, error) {
	ct := req.Header.Get("Content-Type")
	if err := writeFileSync(r.manifestPath(rt.repo, digest)+".type", []byte(ct)); err != nil {
		return nil, err
	}
	if err := writeFileSync(r.manifestPath(rt.repo, digest), body); err != nil {
		return nil, err
	}
	ev := &Event{Action: "push", Repository: rt.repo, Digest: digest, MediaType: ct, At: time.Now().UTC()}
	if !strings.HasPrefix(rt.ref, "sha256:") {
		if err := writeFileSync(r.tagPath(rt.repo, rt.ref), []byte(digest)); err != nil {
			return nil, err
		}
		ev.Tag = rt.ref
	}
	return ev, nil
}

func (r *Registry) persistDelete(rt route) (*Event, error) {
	ev := &Event{Action: "delete", Repository: rt.repo, At: time.Now().UTC()}
	if strings.HasPrefix(rt.ref, "sha256:") {
		ev.Digest = rt.ref
		for _, p := range []string{r.manifestPath(rt.repo, rt.ref), r.manifestPath(rt.repo, rt.ref) + ".type"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
		}
		return ev, nil
	}
	ev.Tag = rt.ref
	if b, err := os.ReadFile(r.tagPath(rt.repo, rt.ref)); err == nil {
		ev.Digest = strings.TrimSpace(string(b))
	}
	if err := os.Remove(r.tagPath(rt.repo, rt.ref)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return ev, nil
}
