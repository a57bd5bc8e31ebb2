package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func (r *Registry) blobPath(h v1.Hash) string {
	return filepath.Join(r.blobs, h.Algorithm, h.Hex)
}

// parseDigest reads a sha256 digest from a request.
func parseDigest(s string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil || h.Algorithm != "sha256" {
		return v1.Hash{}, errorf(http.StatusBadRequest, "DIGEST_INVALID", "%q is not a sha256 digest", s)
	}
	return h, nil
}

// touchBlob reports whether a blob exists and, if so, marks it used now:
// a collection running at the same time keeps a blob touched after its
// start.
func (r *Registry) touchBlob(h v1.Hash) bool {
	r.blobMu.Lock()
	defer r.blobMu.Unlock()
	now := time.Now()
	return os.Chtimes(r.blobPath(h), now, now) == nil
}

func (r *Registry) getBlob(w http.ResponseWriter, req *http.Request, rt route) error {
	h, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	if req.Method == http.MethodHead {
		// A client checks a blob before it pushes a manifest that names
		// it: keep it from a collection in the meantime.
		if !r.touchBlob(h) {
			return errorf(http.StatusNotFound, "BLOB_UNKNOWN", "no blob %s", h)
		}
	}
	f, err := os.Open(r.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(http.StatusNotFound, "BLOB_UNKNOWN", "no blob %s", h)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Docker-Content-Digest", h.String())
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, req, "", time.Time{}, f)
	return nil
}

// deleteBlob removes a blob no manifest references (admin only, which
// the access check saw to).
func (r *Registry) deleteBlob(w http.ResponseWriter, req *http.Request, rt route, p Principal) error {
	h, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	start := time.Now()
	refs, err := r.referencedBlobs()
	if err != nil {
		return err
	}
	if n := refs[h.String()]; n > 0 {
		return errorf(http.StatusConflict, "DENIED", "blob %s is referenced by %d manifests: it is never deleted while in use", h, n)
	}
	r.blobMu.Lock()
	if fi, serr := os.Stat(r.blobPath(h)); serr == nil && fi.ModTime().After(start) {
		r.blobMu.Unlock()
		return errorf(http.StatusConflict, "DENIED", "blob %s was just used by a push: it is never deleted while in use", h)
	}
	err = os.Remove(r.blobPath(h))
	r.blobMu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		return errorf(http.StatusNotFound, "BLOB_UNKNOWN", "no blob %s", h)
	}
	if err != nil {
		return err
	}
	if r.opts.OnEvent != nil {
		ev := Event{Action: "delete-blob", Actor: p.Name, Repository: rt.repo, Digest: h.String(), At: time.Now().UTC()}
		if err := r.opts.OnEvent(req.Context(), ev); err != nil {
			r.log.Error("registry event hook failed", "digest", ev.Digest, "err", err)
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// upload is a blob upload in progress: its bytes go to a file as they
// arrive, hashed on the way; only this upload's lock is held while a
// client sends.
type upload struct {
	mu       sync.Mutex
	id       string
	repo     string
	file     *os.File
	size     int64
	hash     hash.Hash
	lastSeen time.Time
	done     bool
}

func (r *Registry) uploadLocation(repo, id string) string {
	return "/v2/" + repo + "/blobs/uploads/" + id
}

// startUpload begins an upload, mounts a blob the registry already has,
// or takes a whole blob in one request (?digest=).
func (r *Registry) startUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	q := req.URL.Query()
	if m := q.Get("mount"); m != "" {
		if h, err := parseDigest(m); err == nil && r.touchBlob(h) {
			w.Header().Set("Location", "/v2/"+rt.repo+"/blobs/"+h.String())
			w.Header().Set("Docker-Content-Digest", h.String())
			w.WriteHeader(http.StatusCreated)
			return nil
		}
		// Unknown blob: a normal upload, as the spec says.
	}
	u, err := r.newUpload(rt.repo)
	if err != nil {
		return err
	}
	if d := q.Get("digest"); d != "" {
		u.mu.Lock()
		defer u.mu.Unlock()
		if err := r.receive(w, req, u); err != nil {
			r.dropUpload(u)
			return err
		}
		return r.commit(w, u, d)
	}
	w.Header().Set("Location", r.uploadLocation(rt.repo, u.id))
	w.Header().Set("Docker-Upload-UUID", u.id)
	w.Header().Set("Range", "0-0")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (r *Registry) newUpload(repo string) (*upload, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(b)
	f, err := os.OpenFile(filepath.Join(r.uploads, id), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("starting an upload: %w", err)
	}
	u := &upload{id: id, repo: repo, file: f, hash: sha256.New(), lastSeen: time.Now()}
	r.upMu.Lock()
	r.upRunning[id] = u
	r.upMu.Unlock()
	return u, nil
}

// takeUpload finds an upload of the route's repository and locks it.
func (r *Registry) takeUpload(rt route) (*upload, error) {
	r.upMu.Lock()
	u := r.upRunning[rt.ref]
	r.upMu.Unlock()
	if u == nil || u.repo != rt.repo {
		return nil, errorf(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "no upload %s", rt.ref)
	}
	u.mu.Lock()
	if u.done {
		u.mu.Unlock()
		return nil, errorf(http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "no upload %s", rt.ref)
	}
	return u, nil
}

// receive appends a request body to an upload, hashing it, with a read
// deadline renewed while bytes arrive: a stalled client times out, a
// slow one that keeps sending does not.
func (r *Registry) receive(w http.ResponseWriter, req *http.Request, u *upload) error {
	if cr := req.Header.Get("Content-Range"); cr != "" {
		start, _, ok := strings.Cut(cr, "-")
		if n, err := strconv.ParseInt(strings.TrimPrefix(start, "bytes="), 10, 64); !ok || err != nil || n != u.size {
			return errorf(http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", "the chunk starts at %s; the upload has %d bytes", start, u.size)
		}
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 256<<10)
	for {
		_ = rc.SetReadDeadline(time.Now().Add(r.opts.ReadIdle))
		n, err := req.Body.Read(buf)
		if n > 0 {
			if u.size+int64(n) > r.opts.MaxBlobSize {
				return errorf(http.StatusRequestEntityTooLarge, "SIZE_INVALID", "blob larger than %d bytes", r.opts.MaxBlobSize)
			}
			if _, werr := u.file.Write(buf[:n]); werr != nil {
				return fmt.Errorf("writing upload %s: %w", u.id, werr)
			}
			u.hash.Write(buf[:n])
			u.size += int64(n)
			u.lastSeen = time.Now()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return errorf(http.StatusBadRequest, "BLOB_UPLOAD_INVALID", "reading the upload: %v", err)
		}
	}
	_ = rc.SetReadDeadline(time.Time{})
	return nil
}

func (r *Registry) patchUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	u, err := r.takeUpload(rt)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	if err := r.receive(w, req, u); err != nil {
		var re *regError
		if !errors.As(err, &re) || re.status != http.StatusRequestedRangeNotSatisfiable {
			r.dropUpload(u)
		}
		return err
	}
	w.Header().Set("Location", r.uploadLocation(rt.repo, u.id))
	w.Header().Set("Docker-Upload-UUID", u.id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(u.size-1, 0)))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func (r *Registry) finishUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	u, err := r.takeUpload(rt)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	if err := r.receive(w, req, u); err != nil {
		r.dropUpload(u)
		return err
	}
	return r.commit(w, u, req.URL.Query().Get("digest"))
}

// commit checks the upload's digest and moves its file into the blob
// store, durably. u.mu is held.
func (r *Registry) commit(w http.ResponseWriter, u *upload, want string) error {
	defer r.dropUpload(u)
	h, err := parseDigest(want)
	if err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(u.hash.Sum(nil)); got != h.String() {
		return errorf(http.StatusBadRequest, "DIGEST_INVALID", "the upload's bytes hash to %s, not %s", got, h)
	}
	if err := u.file.Sync(); err != nil {
		return fmt.Errorf("persisting blob %s: %w", h, err)
	}
	dst := r.blobPath(h)
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return err
	}
	r.blobMu.Lock()
	err = os.Rename(u.file.Name(), dst)
	r.blobMu.Unlock()
	if err != nil {
		return fmt.Errorf("persisting blob %s: %w", h, err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("persisting blob %s: %w", h, err)
	}
	w.Header().Set("Location", "/v2/"+u.repo+"/blobs/"+h.String())
	w.Header().Set("Docker-Content-Digest", h.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (r *Registry) uploadStatus(w http.ResponseWriter, req *http.Request, rt route) error {
	u, err := r.takeUpload(rt)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	w.Header().Set("Location", r.uploadLocation(rt.repo, u.id))
	w.Header().Set("Docker-Upload-UUID", u.id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(u.size-1, 0)))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (r *Registry) cancelUpload(w http.ResponseWriter, req *http.Request, rt route) error {
	u, err := r.takeUpload(rt)
	if err != nil {
		return err
	}
	defer u.mu.Unlock()
	r.dropUpload(u)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// dropUpload forgets an upload and removes its file (gone already when
// it was committed). u.mu is held.
func (r *Registry) dropUpload(u *upload) {
	u.done = true
	u.file.Close()
	os.Remove(u.file.Name())
	r.upMu.Lock()
	delete(r.upRunning, u.id)
	r.upMu.Unlock()
}

// janitor drops uploads idle for longer than the upload timeout.
func (r *Registry) janitor(ctx context.Context) {
	t := time.NewTicker(max(r.opts.UploadTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.expireUploads(time.Now())
		}
	}
}

// expireUploads drops the uploads idle since before now - timeout. An
// upload whose client is sending is locked and left alone.
func (r *Registry) expireUploads(now time.Time) int {
	r.upMu.Lock()
	var idle []*upload
	for _, u := range r.upRunning {
		idle = append(idle, u)
	}
	r.upMu.Unlock()
	n := 0
	for _, u := range idle {
		if !u.mu.TryLock() {
			continue
		}
		if !u.done && now.Sub(u.lastSeen) > r.opts.UploadTimeout {
			r.dropUpload(u)
			n++
			r.log.Info("dropped an abandoned upload", "repository", u.repo, "bytes", u.size)
		}
		u.mu.Unlock()
	}
	return n
}

// Uploads returns how many uploads are in progress.
func (r *Registry) Uploads() int {
	r.upMu.Lock()
	defer r.upMu.Unlock()
	return len(r.upRunning)
}
