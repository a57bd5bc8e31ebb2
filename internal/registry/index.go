package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// repository is the index of one repository: its manifests and tags.
type repository struct {
	manifests map[string]*manifestEntry // by digest
	tags      map[string]string         // tag → digest
}

// manifestEntry is a stored manifest. Its body is read from the journal.
type manifestEntry struct {
	mediaType    types.MediaType
	size         int64
	artifactType string
	annotations  map[string]string
	subject      string
	// pending: durable, but its scan is not queued yet. Only in-process
	// (trusted) reads see it.
	pending bool
}

// referrer is a manifest naming a subject.
type referrer struct {
	repo string
	desc v1.Descriptor
}

// Manifest is one journaled manifest, for reconciliation.
type Manifest struct {
	Repository string
	Digest     string
	MediaType  string
	Tags       []string
}

func (r *Registry) manifestPath(repo, digest string) string {
	return filepath.Join(r.journal, filepath.FromSlash(repo), "_manifests", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

func (r *Registry) tagPath(repo, tag string) string {
	return filepath.Join(r.journal, filepath.FromSlash(repo), "_tags", tag)
}

// load reads the journal into the index.
func (r *Registry) load() error {
	type tagFile struct{ repo, tag, digest string }
	var tags []tagFile
	n := 0
	err := filepath.WalkDir(r.journal, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(r.journal, p)
		rel = filepath.ToSlash(rel)
		if strings.Contains(filepath.Base(rel), ".tmp") {
			os.Remove(p) // an interrupted write
			return nil
		}
		if repo, hexd, ok := strings.Cut(rel, "/_manifests/sha256/"); ok && !strings.HasSuffix(hexd, ".type") {
			body, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			ct, _ := os.ReadFile(p + ".type")
			m, err := parseManifest(string(ct), body)
			if err != nil {
				r.log.Warn("registry journal holds an unreadable manifest; it is not served", "repository", repo, "digest", hexd, "err", err)
				return nil
			}
			r.index(repo, "sha256:"+hexd, int64(len(body)), m, false)
			n++
			return nil
		}
		if repo, tag, ok := strings.Cut(rel, "/_tags/"); ok {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tags = append(tags, tagFile{repo, tag, strings.TrimSpace(string(b))})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("registry journal: %w", err)
	}
	for _, t := range tags {
		if repo := r.repos[t.repo]; repo != nil && repo.manifests[t.digest] != nil {
			repo.tags[t.tag] = t.digest
		}
	}
	r.log.Info("registry journal loaded", "manifests", n, "tags", len(tags))
	return nil
}

// index adds a manifest to the index; r.mu is held or not needed.
func (r *Registry) index(repo, digest string, size int64, m *parsedManifest, pending bool) {
	rp := r.repos[repo]
	if rp == nil {
		rp = &repository{manifests: map[string]*manifestEntry{}, tags: map[string]string{}}
		r.repos[repo] = rp
	}
	e := &manifestEntry{mediaType: m.MediaType, size: size, artifactType: m.ArtifactType, annotations: m.Annotations, pending: pending}
	if m.Subject != nil {
		e.subject = m.Subject.Digest.String()
		h, _ := v1.NewHash(digest)
		desc := v1.Descriptor{MediaType: m.MediaType, Size: size, Digest: h, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
		if desc.ArtifactType == "" && len(m.Blobs) > 0 {
			desc.ArtifactType = string(m.Blobs[0].MediaType) // the config's type, as the spec says
		}
		r.referrers[e.subject] = append(slices.DeleteFunc(r.referrers[e.subject], func(x referrer) bool {
			return x.repo == repo && x.desc.Digest == h
		}), referrer{repo: repo, desc: desc})
	}
	rp.manifests[digest] = e
}

// unindex removes a manifest and its tags; r.mu is held.
func (r *Registry) unindex(repo, digest string) {
	rp := r.repos[repo]
	if rp == nil {
		return
	}
	if e := rp.manifests[digest]; e != nil && e.subject != "" {
		r.referrers[e.subject] = slices.DeleteFunc(r.referrers[e.subject], func(x referrer) bool {
			return x.repo == repo && x.desc.Digest.String() == digest
		})
		if len(r.referrers[e.subject]) == 0 {
			delete(r.referrers, e.subject)
		}
	}
	delete(rp.manifests, digest)
	for t, d := range rp.tags {
		if d == digest {
			delete(rp.tags, t)
		}
	}
	if len(rp.manifests) == 0 {
		delete(r.repos, repo)
	}
}

// resolve finds a manifest by tag or digest; trusted reads see pending
// ones.
func (r *Registry) resolve(repo, ref string, trusted bool) (string, *manifestEntry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rp := r.repos[repo]
	if rp == nil {
		return "", nil, false
	}
	digest := ref
	if !strings.HasPrefix(ref, "sha256:") {
		d, ok := rp.tags[ref]
		if !ok {
			return "", nil, false
		}
		digest = d
	}
	e := rp.manifests[digest]
	if e == nil || (e.pending && !trusted) {
		return "", nil, false
	}
	return digest, e, true
}

func (r *Registry) getManifest(w http.ResponseWriter, req *http.Request, rt route) error {
	digest, e, ok := r.resolve(rt.repo, rt.ref, req.Context().Value(trustedKey{}) != nil)
	if !ok {
		return errorf(http.StatusNotFound, "MANIFEST_UNKNOWN", "no manifest %s in %s", rt.ref, rt.repo)
	}
	body, err := os.ReadFile(r.manifestPath(rt.repo, digest))
	if err != nil {
		return fmt.Errorf("reading manifest %s: %w", digest, err)
	}
	w.Header().Set("Content-Type", string(e.mediaType))
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodGet {
		w.Write(body)
	}
	return nil
}

// putManifest stores a manifest: parsed and checked, its blobs present,
// the tag rules kept; durable on disk, then its scan queued, then
// visible, then answered. A failure at any step leaves nothing served.
func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, rt route, p Principal) error {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxManifest+1))
	if err != nil {
		return errorf(http.StatusBadRequest, "MANIFEST_INVALID", "reading the manifest: %v", err)
	}
	isDigest := strings.HasPrefix(rt.ref, "sha256:")
	if !isDigest && !tagName.MatchString(rt.ref) {
		return errorf(http.StatusBadRequest, "TAG_INVALID", "invalid tag")
	}
	sum := sha256.Sum256(body)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if isDigest && rt.ref != digest {
		return errorf(http.StatusBadRequest, "DIGEST_INVALID", "manifest does not match its digest")
	}
	m, err := parseManifest(req.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	if err := r.checkReferences(rt.repo, m); err != nil {
		return err
	}
	tag := ""
	if !isDigest {
		tag = rt.ref
		unlock := r.writeMu.lock(rt.repo + ":" + tag)
		defer unlock()
		if err := r.checkTagMove(rt.repo, tag, digest, p); err != nil {
			return err
		}
	}
	unlock := r.writeMu.lock(rt.repo + "@" + digest)
	defer unlock()
	_, existing, known := r.resolve(rt.repo, digest, true)
	if !known {
		if err := r.opts.syncFile(r.manifestPath(rt.repo, digest)+".type", []byte(m.MediaType)); err != nil {
			return fmt.Errorf("persisting manifest %s: %w", digest, err)
		}
		if err := r.opts.syncFile(r.manifestPath(rt.repo, digest), body); err != nil {
			os.Remove(r.manifestPath(rt.repo, digest) + ".type")
			return fmt.Errorf("persisting manifest %s: %w", digest, err)
		}
		r.mu.Lock()
		r.index(rt.repo, digest, int64(len(body)), m, true)
		r.mu.Unlock()
	}
	withdraw := func() {
		if known {
			return
		}
		r.mu.Lock()
		r.unindex(rt.repo, digest)
		r.mu.Unlock()
		os.Remove(r.manifestPath(rt.repo, digest))
		os.Remove(r.manifestPath(rt.repo, digest) + ".type")
	}
	if tag != "" {
		if err := r.opts.syncFile(r.tagPath(rt.repo, tag), []byte(digest)); err != nil {
			withdraw()
			return fmt.Errorf("persisting tag %s: %w", tag, err)
		}
	}
	if r.opts.OnEvent != nil {
		ev := Event{Action: "push", Actor: p.Name, Repository: rt.repo, Tag: tag, Digest: digest, MediaType: string(m.MediaType), At: time.Now().UTC()}
		if err := r.opts.OnEvent(req.Context(), ev); err != nil {
			if tag != "" {
				r.restoreTag(rt.repo, tag)
			}
			withdraw()
			r.log.Error("queueing the scan of a push failed; the push is refused", "repository", rt.repo, "digest", digest, "err", err)
			return errorf(http.StatusServiceUnavailable, "UNAVAILABLE", "the push could not be recorded for scanning; try again")
		}
	}
	r.mu.Lock()
	if existing == nil {
		if e := r.repos[rt.repo].manifests[digest]; e != nil {
			e.pending = false
		}
	}
	if tag != "" {
		r.repos[rt.repo].tags[tag] = digest
	}
	r.mu.Unlock()
	if m.Subject != nil {
		w.Header().Set("OCI-Subject", m.Subject.Digest.String())
	}
	w.Header().Set("Location", "/v2/"+rt.repo+"/manifests/"+digest)
	w.Header().Set("Docker-Content-Digest", digest)
	w.WriteHeader(http.StatusCreated)
	return nil
}

// restoreTag puts a tag's journal file back as the index has it, after
// a push that moved it failed.
func (r *Registry) restoreTag(repo, tag string) {
	r.mu.RLock()
	var old string
	if rp := r.repos[repo]; rp != nil {
		old = rp.tags[tag]
	}
	r.mu.RUnlock()
	if old == "" {
		os.Remove(r.tagPath(repo, tag))
		return
	}
	if err := r.opts.syncFile(r.tagPath(repo, tag), []byte(old)); err != nil {
		r.log.Error("restoring a tag after a failed push", "repository", repo, "tag", tag, "err", err)
	}
}

// checkReferences wants an image manifest's blobs in the registry (and
// touches them, so that a collection running now keeps them), and an
// index's children in the repository.
func (r *Registry) checkReferences(repo string, m *parsedManifest) error {
	for _, d := range m.Blobs {
		if !r.touchBlob(d.Digest) {
			return errorf(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "blob %s is not in the registry", d.Digest)
		}
	}
	for _, d := range m.Children {
		if _, _, ok := r.resolve(repo, d.Digest.String(), true); !ok {
			return errorf(http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", "manifest %s is not in %s", d.Digest, repo)
		}
	}
	return nil
}

// checkTagMove applies the tag rules to a push of tag → digest.
func (r *Registry) checkTagMove(repo, tag, digest string, p Principal) error {
	if env := r.protected(repo, tag); env != "" && !p.Promoter {
		return errorf(http.StatusForbidden, "DENIED", "%s:%s is the %s environment's tag: only socle moves it, through its gates (socle promote %s@%s --to %s)", repo, tag, env, repo, digest, env)
	}
	curDigest, _, exists := r.resolve(repo, tag, true)
	if exists && curDigest != digest && r.opts.Immutable != nil && r.opts.Immutable(repo, tag) {
		return errorf(http.StatusForbidden, "DENIED", "%s:%s is immutable and points at %s: push a new tag", repo, tag, curDigest)
	}
	return nil
}

func (r *Registry) protected(repo, tag string) string {
	if r.opts.Protected == nil {
		return ""
	}
	return r.opts.Protected(repo, tag)
}

// deleteManifest removes a tag, or a manifest and its tags. Environment
// tags, and manifests they point at, are the promoter's.
func (r *Registry) deleteManifest(w http.ResponseWriter, req *http.Request, rt route, p Principal) error {
	digest, _, ok := r.resolve(rt.repo, rt.ref, true)
	if !ok {
		return errorf(http.StatusNotFound, "MANIFEST_UNKNOWN", "no manifest %s in %s", rt.ref, rt.repo)
	}
	var tags []string
	if strings.HasPrefix(rt.ref, "sha256:") {
		r.mu.RLock()
		for t, d := range r.repos[rt.repo].tags {
			if d == digest {
				tags = append(tags, t)
			}
		}
		r.mu.RUnlock()
	} else {
		tags = []string{rt.ref}
	}
	if !p.Promoter {
		for _, t := range tags {
			if env := r.protected(rt.repo, t); env != "" {
				return errorf(http.StatusForbidden, "DENIED", "%s:%s is the %s environment's tag: only socle moves it (socle rollback)", rt.repo, t, env)
			}
		}
	}
	for _, t := range tags {
		if err := os.Remove(r.tagPath(rt.repo, t)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	r.mu.Lock()
	if strings.HasPrefix(rt.ref, "sha256:") {
		r.unindex(rt.repo, digest)
	} else if rp := r.repos[rt.repo]; rp != nil {
		delete(rp.tags, rt.ref)
	}
	r.mu.Unlock()
	if strings.HasPrefix(rt.ref, "sha256:") {
		for _, p := range []string{r.manifestPath(rt.repo, digest), r.manifestPath(rt.repo, digest) + ".type"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	if r.opts.OnEvent != nil {
		evs := []Event{{Action: "delete", Actor: p.Name, Repository: rt.repo, Digest: digest, At: time.Now().UTC()}}
		if !strings.HasPrefix(rt.ref, "sha256:") {
			evs[0].Tag = rt.ref
		}
		for _, ev := range evs {
			if err := r.opts.OnEvent(req.Context(), ev); err != nil {
				r.log.Error("registry event hook failed", "repository", ev.Repository, "digest", ev.Digest, "err", err)
			}
		}
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// Manifests lists everything the registry serves, for reconciliation.
func (r *Registry) Manifests() ([]Manifest, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Manifest
	for name, rp := range r.repos {
		for d, e := range rp.manifests {
			if !e.pending {
				out = append(out, Manifest{Repository: name, Digest: d, MediaType: string(e.mediaType)})
			}
		}
	}
	for i := range out {
		for t, d := range r.repos[out[i].Repository].tags {
			if d == out[i].Digest {
				out[i].Tags = append(out[i].Tags, t)
			}
		}
		sort.Strings(out[i].Tags)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Repository != out[j].Repository {
			return out[i].Repository < out[j].Repository
		}
		return out[i].Digest < out[j].Digest
	})
	return out, nil
}

// pageParams reads ?n= and ?last=.
func pageParams(req *http.Request) (int, string, error) {
	n := 1000
	if v := req.URL.Query().Get("n"); v != "" {
		x, err := strconv.Atoi(v)
		if err != nil || x < 0 {
			return 0, "", errorf(http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "n must be a non-negative number")
		}
		n = min(x, 10000)
	}
	return n, req.URL.Query().Get("last"), nil
}

// page writes a sorted list from after last, n at most, with a Link to
// the next page.
func page(w http.ResponseWriter, req *http.Request, all []string, n int, last string) []string {
	sort.Strings(all)
	i := sort.SearchStrings(all, last)
	if last != "" && i < len(all) && all[i] == last {
		i++
	}
	out := all[i:]
	if len(out) > n {
		out = out[:n]
		q := req.URL.Query()
		q.Set("last", out[len(out)-1])
		q.Set("n", strconv.Itoa(n))
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, req.URL.Path, q.Encode()))
	}
	return out
}

func (r *Registry) tagList(w http.ResponseWriter, req *http.Request, repo string) error {
	n, last, err := pageParams(req)
	if err != nil {
		return err
	}
	r.mu.RLock()
	rp := r.repos[repo]
	var all []string
	if rp != nil {
		for t, d := range rp.tags {
			if e := rp.manifests[d]; e != nil && !e.pending {
				all = append(all, t)
			}
		}
	}
	r.mu.RUnlock()
	if rp == nil {
		return errorf(http.StatusNotFound, "NAME_UNKNOWN", "no repository %s", repo)
	}
	return writeJSONBody(w, map[string]any{"name": repo, "tags": nonNil(page(w, req, all, n, last))})
}

func (r *Registry) catalog(w http.ResponseWriter, req *http.Request) error {
	n, last, err := pageParams(req)
	if err != nil {
		return err
	}
	r.mu.RLock()
	all := make([]string, 0, len(r.repos))
	for name := range r.repos {
		all = append(all, name)
	}
	r.mu.RUnlock()
	return writeJSONBody(w, map[string]any{"repositories": nonNil(page(w, req, all, n, last))})
}

// referrerList answers the OCI 1.1 referrers API: an index of the
// manifests of the repository whose subject is the digest, filtered by
// artifactType when asked.
func (r *Registry) referrerList(w http.ResponseWriter, req *http.Request, rt route) error {
	if _, err := v1.NewHash(rt.ref); err != nil {
		return errorf(http.StatusBadRequest, "DIGEST_INVALID", "%v", err)
	}
	filter := req.URL.Query().Get("artifactType")
	r.mu.RLock()
	var ds []v1.Descriptor
	for _, ref := range r.referrers[rt.ref] {
		if ref.repo != rt.repo || (filter != "" && ref.desc.ArtifactType != filter) {
			continue
		}
		if e := r.repos[rt.repo].manifests[ref.desc.Digest.String()]; e == nil || e.pending {
			continue
		}
		ds = append(ds, ref.desc)
	}
	r.mu.RUnlock()
	sort.Slice(ds, func(i, j int) bool { return ds[i].Digest.String() < ds[j].Digest.String() })
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", string(types.OCIImageIndex))
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: ds}
	if idx.Manifests == nil {
		idx.Manifests = []v1.Descriptor{}
	}
	return writeJSONBody(w, idx)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func writeJSONBody(w http.ResponseWriter, v any) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		return err
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	_, err := w.Write(buf.Bytes())
	return err
}
