package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/jobs"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
)

// KindScan is the job kind of an image scan.
const KindScan = "scan"

// ScanRequest is the payload of a scan job.
type ScanRequest struct {
	// Repository is the name recorded in the index: the repository in
	// the embedded registry, or host/path elsewhere.
	Repository string `json:"repository"`
	// Tag, when set, is moved to the digest once it is scanned.
	Tag string `json:"tag,omitempty"`
	// Digest is the manifest to scan (an image, or an index whose
	// images are scanned).
	Digest string `json:"digest"`
	// Embedded says the image is read from the embedded registry in
	// process; otherwise from Repository's registry over the network.
	Embedded bool `json:"embedded,omitempty"`
}

// Store is what the watcher reads and writes.
type Store interface {
	EnqueueJob(ctx context.Context, kind, key string, payload []byte) (int64, bool, error)
	PutTag(ctx context.Context, ev store.TagEvent) error
	DeleteTag(ctx context.Context, repository, tag string, at time.Time) error
	Tags(ctx context.Context, repository string) ([]store.TagEvent, error)
	HasImage(ctx context.Context, digest string) (bool, error)
}

// Watcher turns registry changes into scan jobs and runs them.
type Watcher struct {
	st       Store
	scanner  *scan.Scanner
	embedded *registry.Registry
	host     string
	remote   source.Options
	known    map[string]bool
	log      *slog.Logger
	wake     func()
	now      func() time.Time
	check    ImageChecker
}

// isEmbedded tells a repository of the embedded registry: its first
// element names no host.
func (w *Watcher) isEmbedded(repository string) bool {
	if w.embedded == nil {
		return false
	}
	first, _, _ := strings.Cut(repository, "/")
	return !strings.ContainsAny(first, ".:") && first != "localhost"
}

// Options configure a Watcher.
type Options struct {
	// Embedded is the embedded registry, or nil when socle uses an
	// external one.
	Embedded *registry.Registry
	// EmbeddedHost is the host:port clients push to the embedded
	// registry with; references to it are read in process.
	EmbeddedHost string
	// Remote configures access to other registries.
	Remote source.Options
	// Known are the hosts of the other registries socle follows
	// (registry.url, watch:): a user who is not an admin may ask for a
	// scan of an image there, or in the embedded registry, and nowhere
	// else.
	Known []string
	// Wake is called after a job is queued (a runner's Wake).
	Wake   func()
	Logger *slog.Logger
	// Check, when set, runs the image checks on every image scanned, and
	// on the images a check job names (socle serve re-checks when the
	// rules change).
	Check ImageChecker
}

// ImageChecker checks one image of a repository.
type ImageChecker func(ctx context.Context, repository, digest string, img v1.Image) error

// KindCheck is the kind of the jobs that re-run the image checks.
const KindCheck = "check-image"

// New returns a Watcher.
func New(st Store, sc *scan.Scanner, o Options) *Watcher {
	w := &Watcher{st: st, scanner: sc, embedded: o.Embedded, host: o.EmbeddedHost, remote: o.Remote, log: o.Logger, wake: o.Wake, now: time.Now,
		known: map[string]bool{}, check: o.Check}
	for _, h := range o.Known {
		w.known[h] = true
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.wake == nil {
		w.wake = func() {}
	}
	return w
}

// signatureTag matches the tags cosign stores signatures, attestations
// and SBOMs under: they are not images to scan.
var signatureTag = regexp.MustCompile(`^sha256-[0-9a-f]{64}(\.[a-z]+)?$`)

// Enqueue queues a scan; the job key makes a second request for the same
// digest and tag a no-op while the first is pending.
func (w *Watcher) Enqueue(ctx context.Context, req ScanRequest) (int64, error) {
	if err := oci.ValidateDigest(req.Digest); err != nil {
		return 0, err
	}
	b, _ := json.Marshal(req)
	id, _, err := w.st.EnqueueJob(ctx, KindScan, "scan:"+req.Repository+"@"+req.Digest+":"+req.Tag, b)
	if err != nil {
		return 0, err
	}
	w.wake()
	return id, nil
}

// ErrUnknownRegistry refuses a scan of a registry socle does not follow.
var ErrUnknownRegistry = errors.New("socle scans only the embedded registry and the registries it follows (registry.url, watch:); an admin may scan any")

// ErrUnreachable is a reference socle could not resolve; the upstream
// answer stays in the server's log.
var ErrUnreachable = errors.New("the registry could not resolve the reference")

// resolveTimeout bounds the resolution of a reference a user names.
const resolveTimeout = 15 * time.Second

// EnqueueReference queues a scan of an image a user names. A reference
// without a registry host ("team/app:1"), or on the embedded registry's
// host, is read from the embedded registry; any other must be on a
// registry socle follows, unless anyRegistry (an admin asks). An
// upstream error body is never part of the error returned.
func (w *Watcher) EnqueueReference(ctx context.Context, ref string, anyRegistry bool) (int64, error) {
	embedded := false
	path := ref
	if w.embedded != nil {
		first, rest, ok := strings.Cut(ref, "/")
		switch {
		case !ok:
			embedded = true // a bare name: "app:1"
		case first == w.host:
			embedded, path = true, rest
		case !strings.ContainsAny(first, ".:") && first != "localhost":
			embedded = true
		}
	}
	opts := w.remote
	full := path
	if embedded {
		opts.Transport = w.embedded.Transport()
		full = "localhost/" + path
	}
	r, err := name.ParseReference(full, opts.NameOptions()...)
	if err != nil {
		return 0, fmt.Errorf("reference %q: %w", ref, err)
	}
	if !embedded && !anyRegistry && !w.known[r.Context().RegistryStr()] {
		return 0, fmt.Errorf("%w (%s is not one)", ErrUnknownRegistry, r.Context().RegistryStr())
	}
	rctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	desc, err := remote.Head(r, opts.RemoteOptions(rctx)...)
	if err != nil {
		w.log.Warn("resolving a reference to scan", "reference", ref, "err", err)
		var te *transport.Error
		if errors.As(err, &te) {
			return 0, fmt.Errorf("%w: %q (HTTP %d)", ErrUnreachable, ref, te.StatusCode)
		}
		return 0, fmt.Errorf("%w: %q", ErrUnreachable, ref)
	}
	repo := r.Context().RepositoryStr()
	if !embedded {
		repo = r.Context().Name()
	}
	req := ScanRequest{Repository: repo, Digest: desc.Digest.String(), Embedded: embedded}
	if t, ok := r.(name.Tag); ok {
		req.Tag = t.TagStr()
	}
	return w.Enqueue(ctx, req)
}

// OnRegistryEvent handles a push or delete in the embedded registry. It
// runs before the registry answers the client, so an acknowledged push
// always has its scan queued.
func (w *Watcher) OnRegistryEvent(ctx context.Context, ev registry.Event) error {
	if signatureTag.MatchString(ev.Tag) {
		return nil
	}
	switch ev.Action {
	case "push":
		_, err := w.Enqueue(ctx, ScanRequest{Repository: ev.Repository, Tag: ev.Tag, Digest: ev.Digest, Embedded: true})
		return err
	case "delete":
		if ev.Tag != "" {
			return w.st.DeleteTag(ctx, ev.Repository, ev.Tag, ev.At)
		}
	}
	return nil
}

// Reconcile queues a scan for every manifest of the embedded registry
// the index does not hold, and every tag the index does not point at the
// same digest: what a crash between a push and its event would miss.
func (w *Watcher) Reconcile(ctx context.Context) (int, error) {
	if w.embedded == nil {
		return 0, nil
	}
	ms, err := w.embedded.Manifests()
	if err != nil {
		return 0, err
	}
	// The index's tags of the registry's repositories only: a store that
	// also holds other registries' images (100,000 tags) took 230 ms to
	// read them all, while a new server's first answers waited.
	current := map[string]string{}
	read := map[string]bool{}
	for _, m := range ms {
		if read[m.Repository] {
			continue
		}
		read[m.Repository] = true
		tags, err := w.st.Tags(ctx, m.Repository)
		if err != nil {
			return 0, err
		}
		for _, t := range tags {
			current[t.Repository+":"+t.Tag] = t.Digest
		}
	}
	n := 0
	for _, m := range ms {
		var reqs []ScanRequest
		for _, tag := range m.Tags {
			if signatureTag.MatchString(tag) {
				continue
			}
			if current[m.Repository+":"+tag] != m.Digest {
				reqs = append(reqs, ScanRequest{Repository: m.Repository, Tag: tag, Digest: m.Digest, Embedded: true})
			}
		}
		if len(reqs) == 0 && !types.MediaType(m.MediaType).IsIndex() && !hasSignatureTagOnly(m) {
			has, err := w.st.HasImage(ctx, m.Digest)
			if err != nil {
				return n, err
			}
			if !has && len(m.Tags) > 0 {
				reqs = append(reqs, ScanRequest{Repository: m.Repository, Digest: m.Digest, Embedded: true})
			}
		}
		for _, r := range reqs {
			if _, err := w.Enqueue(ctx, r); err != nil {
				return n, err
			}
			n++
		}
	}
	if n > 0 {
		w.log.Info("reconciled the embedded registry with the index", "queued", n)
	}
	return n, nil
}

func hasSignatureTagOnly(m registry.Manifest) bool {
	for _, t := range m.Tags {
		if !signatureTag.MatchString(t) {
			return false
		}
	}
	return len(m.Tags) > 0
}

// Poll lists the tags of one watched repository and queues a scan for
// each followed tag whose digest the index does not have for it.
func (w *Watcher) Poll(ctx context.Context, wt config.Watch) (int, error) {
	repo, err := name.NewRepository(wt.Repository, w.remote.NameOptions()...)
	if err != nil {
		return 0, fmt.Errorf("watch %q: %w", wt.Repository, err)
	}
	opts := w.remote.RemoteOptions(ctx)
	tags, err := remote.List(repo, opts...)
	if err != nil {
		return 0, fmt.Errorf("listing %s: %w", wt.Repository, err)
	}
	known, err := w.st.Tags(ctx, wt.Repository)
	if err != nil {
		return 0, err
	}
	current := map[string]string{}
	for _, t := range known {
		current[t.Tag] = t.Digest
	}
	n := 0
	for _, tag := range tags {
		if signatureTag.MatchString(tag) || !wt.Matches(tag) {
			continue
		}
		desc, err := remote.Head(repo.Tag(tag), opts...)
		if err != nil {
			w.log.Warn("watch: resolving a tag", "repository", wt.Repository, "tag", tag, "err", err)
			continue
		}
		if current[tag] == desc.Digest.String() {
			continue
		}
		if _, err := w.Enqueue(ctx, ScanRequest{Repository: wt.Repository, Tag: tag, Digest: desc.Digest.String()}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// RunPolls polls every watched repository on its interval until ctx ends.
func (w *Watcher) RunPolls(ctx context.Context, ws []config.Watch) {
	for _, wt := range ws {
		go func() {
			for {
				if n, err := w.Poll(ctx, wt); err != nil {
					w.log.Warn("watch poll failed", "repository", wt.Repository, "err", err)
				} else if n > 0 {
					w.log.Info("watch found new digests", "repository", wt.Repository, "queued", n)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wt.WatchInterval()):
				}
			}
		}()
	}
}

// HandleScan is the scan job handler.
func (w *Watcher) HandleScan(ctx context.Context, j *store.Job, progress jobs.Progress) error {
	var req ScanRequest
	if err := json.Unmarshal(j.Payload, &req); err != nil {
		return jobs.Permanent(fmt.Errorf("scan job payload: %w", err))
	}
	desc, refStr, err := w.describe(ctx, req)
	if err != nil {
		return err
	}
	if desc.MediaType.IsIndex() {
		return w.expandIndex(ctx, req, desc)
	}
	if !desc.MediaType.IsImage() {
		return nil // an artifact (signature, SBOM...): nothing to scan
	}
	img, err := desc.Image()
	if err != nil {
		return fmt.Errorf("reading %s: %w", refStr, err)
	}
	if mf, err := img.Manifest(); err == nil && !isImageConfig(mf.Config.MediaType) {
		return nil
	}
	src := &source.Image{Image: img, Ref: oci.ImageRef{Transport: oci.TransportRegistry, Path: refStr}, Repository: req.Repository, Tag: req.Tag}
	_, err = w.scanner.Scan(ctx, src, scan.Options{Index: true, Progress: func(p scan.Progress) {
		if p.Done {
			progress(p.Layer+1, p.Layers, "layer "+oci.ShortDigest(p.Digest))
		}
	}})
	if errors.Is(err, sbom.ErrLayerMismatch) {
		// The image's bytes are not what it says: trying again reads the
		// same bytes. It stays unindexed, so it cannot be promoted.
		return jobs.Permanent(fmt.Errorf("refusing %s: %w", refStr, err))
	}
	if err != nil {
		return err
	}
	if w.check != nil {
		// Checked before its tag moves, so that what the fleet shows has
		// its checks. A failed check does not fail the scan: it is
		// logged, and the image is checked again when the rules change.
		if err := w.check(ctx, req.Repository, req.Digest, img); err != nil {
			w.log.Warn("checking an image", "image", refStr, "err", err)
		}
	}
	if req.Tag != "" {
		if err := w.st.PutTag(ctx, store.TagEvent{Repository: req.Repository, Tag: req.Tag, Digest: req.Digest, At: w.now().UTC()}); err != nil {
			return err
		}
	}
	progress(1, 1, "scanned")
	return nil
}

// describe fetches the descriptor a scan or check request names.
func (w *Watcher) describe(ctx context.Context, req ScanRequest) (*remote.Descriptor, string, error) {
	opts := w.remote
	refStr := req.Repository + "@" + req.Digest
	if req.Embedded {
		if w.embedded == nil {
			return nil, refStr, jobs.Permanent(errors.New("job for the embedded registry, which is not running"))
		}
		opts.Transport = w.embedded.Transport()
		refStr = "localhost/" + refStr
	}
	ref, err := name.ParseReference(refStr, opts.NameOptions()...)
	if err != nil {
		return nil, refStr, jobs.Permanent(fmt.Errorf("job reference %q: %w", refStr, err))
	}
	desc, err := remote.Get(ref, opts.RemoteOptions(ctx)...)
	if err != nil {
		if isNotFound(err) {
			return nil, refStr, jobs.Permanent(fmt.Errorf("fetching %s: %w", refStr, err))
		}
		return nil, refStr, fmt.Errorf("fetching %s: %w", refStr, err)
	}
	return desc, refStr, nil
}

// HandleCheck runs the image checks on the image a check job names.
func (w *Watcher) HandleCheck(ctx context.Context, j *store.Job, progress jobs.Progress) error {
	var req ScanRequest
	if err := json.Unmarshal(j.Payload, &req); err != nil {
		return jobs.Permanent(fmt.Errorf("check job payload: %w", err))
	}
	if w.check == nil {
		return nil
	}
	desc, refStr, err := w.describe(ctx, req)
	if err != nil {
		return err
	}
	if !desc.MediaType.IsImage() {
		return nil
	}
	img, err := desc.Image()
	if err != nil {
		return fmt.Errorf("reading %s: %w", refStr, err)
	}
	if err := w.check(ctx, req.Repository, req.Digest, img); err != nil {
		return err
	}
	progress(1, 1, "checked")
	return nil
}

// EnqueueCheck queues a check of an image.
func (w *Watcher) EnqueueCheck(ctx context.Context, repository, digest, rulesVersion string) error {
	req := ScanRequest{Repository: repository, Digest: digest, Embedded: w.isEmbedded(repository)}
	b, _ := json.Marshal(req)
	if _, _, err := w.st.EnqueueJob(ctx, KindCheck, "check:"+digest+":"+rulesVersion, b); err != nil {
		return err
	}
	w.wake()
	return nil
}

// expandIndex queues a scan of each image of an index, and points the
// tag at the linux/amd64 one (or the first), which the fleet shows.
func (w *Watcher) expandIndex(ctx context.Context, req ScanRequest, desc *remote.Descriptor) error {
	idx, err := desc.ImageIndex()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	var children []v1.Descriptor
	for _, d := range im.Manifests {
		if d.MediaType.IsImage() && (d.Platform == nil || d.Platform.OS != "unknown") {
			children = append(children, d)
		}
	}
	tagged := -1
	for i, d := range children {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			tagged = i
		}
	}
	if tagged < 0 && len(children) > 0 {
		tagged = 0
	}
	for i, d := range children {
		r := ScanRequest{Repository: req.Repository, Digest: d.Digest.String(), Embedded: req.Embedded}
		if i == tagged {
			r.Tag = req.Tag
		}
		if _, err := w.Enqueue(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

func isImageConfig(mt types.MediaType) bool {
	return mt == types.OCIConfigJSON || mt == types.DockerConfigJSON || mt == ""
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// CatalogWatches follows every repository an external registry's
// catalog lists, under its path prefix when reg has one (host/prefix).
func CatalogWatches(ctx context.Context, reg string, o source.Options) ([]config.Watch, error) {
	host, prefix, _ := strings.Cut(reg, "/")
	r, err := name.NewRegistry(host, o.NameOptions()...)
	if err != nil {
		return nil, err
	}
	repos, err := remote.Catalog(ctx, r, o.RemoteOptions(ctx)...)
	if err != nil {
		return nil, err
	}
	var out []config.Watch
	for _, repo := range repos {
		if prefix != "" && repo != prefix && !strings.HasPrefix(repo, prefix+"/") {
			continue
		}
		out = append(out, config.Watch{Repository: host + "/" + repo})
	}
	return out, nil
}
