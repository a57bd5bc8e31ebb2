package catalog

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/mutate"
	"github.com/socle-dev/socle/internal/provenance"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/store"
)

// Event reports the progress of a build.
type Event struct {
	Name string
	// Phase is building, pushed, unchanged, failed or skipped.
	Phase   string
	Message string
	Digest  string
}

// Build phases.
const (
	PhaseBuilding  = "building"
	PhasePushed    = "pushed"
	PhaseUnchanged = "unchanged"
	PhaseFailed    = "failed"
	PhaseSkipped   = "skipped"
	// PhaseLog carries one line of a Dockerfile builder's output.
	PhaseLog = "log"
)

// Indexer records a pushed image's SBOM and findings.
type Indexer interface {
	IndexImage(ctx context.Context, img v1.Image, repository string, tags []string) error
}

// Assembler builds assembled bases; *assemble.Assembler is one.
type Assembler interface {
	Assemble(ctx context.Context, spec assemble.Spec) (v1.Image, *assemble.Resolution, error)
}

var (
	_ Assembler       = (*assemble.Assembler)(nil)
	_ PackageResolver = (*assemble.Assembler)(nil)
	_ Indexer         = ImageIndexer{}
	_ BuilderStore    = store.Store(nil)
)

// Builder executes plans.
type Builder struct {
	Catalog *Catalog
	Store   BuilderStore
	Target  Target
	// Assembler builds assembled images; nil fails them.
	Assembler Assembler
	// Dockerfile finds the Dockerfile builder (force names one, or is
	// empty); nil uses mutate.DetectDockerfileBuilder.
	Dockerfile func(ctx context.Context, force string) (*mutate.DockerfileBuilder, error)
	// BuildahRoot keeps buildah's storage, and so its layer cache
	// (default buildah's own).
	BuildahRoot string
	// Provenance signs the SLSA provenance attached to every pushed
	// build; nil attaches none.
	Provenance provenance.Attester
	// Indexer stores each pushed image's SBOM; nil skips it.
	Indexer Indexer
	// Parallel bounds the builds of one level run at once (default 4).
	Parallel int
	// Progress receives events; it is called from several goroutines.
	Progress func(Event)
	// By names who started the builds, in the records.
	By     string
	Logger *slog.Logger
	Now    func() time.Time
}

// log returns the builder's logger, silent when none was given.
func (b *Builder) log() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

// Outcome is what happened to one step.
type Outcome struct {
	Name   string   `json:"name"`
	Status string   `json:"status"`
	Digest string   `json:"digest,omitempty"`
	Tag    string   `json:"tag,omitempty"`
	Tags   []string `json:"tags,omitempty"`
	Error  string   `json:"error,omitempty"`
	// Seconds is how long the build took.
	Seconds float64 `json:"seconds"`
}

// ErrBuildsFailed is returned when any step failed.
var ErrBuildsFailed = errors.New("some builds failed")

// Run builds the plan, level by level. A failed image stops only its
// descendants; the others go on.
func (b *Builder) Run(ctx context.Context, plan *Plan) ([]Outcome, error) {
	if b.Now == nil {
		b.Now = time.Now
	}
	par := b.Parallel
	if par <= 0 {
		par = 4
	}
	var mu sync.Mutex
	results := map[string]*Outcome{}
	var order []string
	levels := map[int][]*Step{}
	maxLevel := -1
	for _, s := range plan.Steps {
		levels[s.Level] = append(levels[s.Level], s)
		maxLevel = max(maxLevel, s.Level)
		order = append(order, s.Name)
	}
	failed := false
	for l := 0; l <= maxLevel; l++ {
		sem := make(chan struct{}, par)
		var wg sync.WaitGroup
		for _, s := range levels[l] {
			// A parent that failed or was skipped stops this one.
			if p := s.image.ParentImage; p != nil {
				mu.Lock()
				pr := results[p.Name]
				mu.Unlock()
				if pr != nil && (pr.Status == store.BuildFailed || pr.Status == store.BuildSkipped) {
					o := &Outcome{Name: s.Name, Status: store.BuildSkipped, Error: "parent " + p.Name + " was not built"}
					b.record(ctx, s, o, nil, b.Now())
					b.emit(Event{Name: s.Name, Phase: PhaseSkipped, Message: o.Error})
					mu.Lock()
					results[s.Name] = o
					mu.Unlock()
					continue
				}
			}
			wg.Add(1)
			sem <- struct{}{}
			go func(s *Step) {
				defer wg.Done()
				defer func() { <-sem }()
				mu.Lock()
				parent := parentOutcome(s, results)
				mu.Unlock()
				o := b.buildStep(ctx, s, parent)
				mu.Lock()
				results[s.Name] = o
				if o.Status == store.BuildFailed {
					failed = true
				}
				mu.Unlock()
			}(s)
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return collect(order, results), err
		}
	}
	out := collect(order, results)
	if failed {
		return out, ErrBuildsFailed
	}
	return out, nil
}

func parentOutcome(s *Step, results map[string]*Outcome) *Outcome {
	if p := s.image.ParentImage; p != nil {
		return results[p.Name]
	}
	return nil
}

func collect(order []string, results map[string]*Outcome) []Outcome {
	var out []Outcome
	for _, n := range order {
		if o := results[n]; o != nil {
			out = append(out, *o)
		}
	}
	return out
}

func (b *Builder) emit(e Event) {
	if b.Progress != nil {
		b.Progress(e)
	}
}

// parentRef is the parent an image is built on: its image, its digest,
// and the name the base annotation records.
type parentRef struct {
	image  v1.Image
	digest string
	name   string
}

func (b *Builder) buildStep(ctx context.Context, s *Step, parentRun *Outcome) *Outcome {
	start := b.Now()
	o := &Outcome{Name: s.Name}
	fail := func(err error) *Outcome {
		o.Status, o.Error = store.BuildFailed, err.Error()
		o.Seconds = b.Now().Sub(start).Seconds()
		b.record(ctx, s, o, nil, start)
		b.emit(Event{Name: s.Name, Phase: PhaseFailed, Message: o.Error})
		b.log().Warn("build failed", "image", s.Name, "err", err)
		return o
	}
	b.emit(Event{Name: s.Name, Phase: PhaseBuilding, Message: fmt.Sprintf("%s build (%s)", s.Kind, strings.Join(s.Reasons, "; "))})
	parent, err := b.parent(ctx, s, parentRun)
	if err != nil {
		return fail(err)
	}
	// Only the parent changed, and it came back identical: nothing to do.
	if parent != nil && len(s.Reasons) == 1 && strings.HasPrefix(s.Reasons[0], ReasonParentRebuilt) && s.LastDigest != "" {
		if last, err := b.Store.LastBuild(ctx, s.Name); err == nil && last.ParentDigest == parent.digest {
			o.Status, o.Digest, o.Tag, o.Tags = store.BuildSucceeded, last.Digest, last.Tag, last.Tags
			b.emit(Event{Name: s.Name, Phase: PhaseUnchanged, Digest: last.Digest, Message: "its parent came out identical"})
			return o
		}
	}
	m, err := b.make(ctx, s, parent)
	if err != nil {
		return fail(err)
	}
	defer m.close()
	m.prov.RunDetails.Metadata.StartedOn = start
	out, err := b.publish(ctx, s, m.img, parent, m.pkgs, start, "build", &m.prov)
	if err != nil {
		return fail(err)
	}
	return out
}

// publish pushes a built image under a free immutable tag, moves its
// floating tags, stores its SBOM and records the build.
// how names what made the image ("build", or a remediation's strategy),
// in the reason the superseded build's fixed findings are closed with.
func (b *Builder) publish(ctx context.Context, s *Step, img v1.Image, parent *parentRef, pkgs map[string]string, start time.Time, how string, prov *provenance.Predicate) (*Outcome, error) {
	o := &Outcome{Name: s.Name}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	repo, err := b.Target.Repository(s.image.Repository)
	if err != nil {
		return nil, err
	}
	tags, err := s.image.RenderTags(s.image.staticTagData())
	if err != nil {
		return nil, err
	}
	tag, err := b.freeTag(ctx, repo, tags.Immutable, digest.String())
	if err != nil {
		return nil, err
	}
	opts := b.Target.options(ctx)
	if err := remote.Write(repo.Tag(tag), img, opts...); err != nil {
		return nil, fmt.Errorf("pushing %s:%s: %w", repo, tag, err)
	}
	for _, ft := range tags.Floating {
		if err := remote.Tag(repo.Tag(ft), img, opts...); err != nil {
			return nil, fmt.Errorf("moving %s:%s: %w", repo, ft, err)
		}
	}
	o.Status, o.Digest, o.Tag, o.Tags = store.BuildSucceeded, digest.String(), tag, append([]string{tag}, tags.Floating...)
	if b.Provenance != nil && prov != nil {
		if parent != nil {
			prov.BuildDefinition.ResolvedDependencies = append(prov.BuildDefinition.ResolvedDependencies, provenance.Base(baseRepository(parent.name), parent.digest))
		}
		prov.RunDetails.Metadata.FinishedOn = b.Now().UTC()
		if err := provenance.Attest(ctx, b.Provenance, repo.Digest(digest.String()), *prov, b.Now(), opts...); err != nil {
			return nil, fmt.Errorf("attaching the provenance of %s: %w", digest, err)
		}
	}
	if b.Indexer != nil {
		if err := b.Indexer.IndexImage(ctx, img, repo.Name(), o.Tags); err != nil {
			return nil, fmt.Errorf("recording the SBOM of %s: %w", digest, err)
		}
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	o.Seconds = b.Now().Sub(start).Seconds()
	b.record(ctx, s, o, &buildFacts{parent: parent, packages: pkgs}, start)
	if err := b.closeSuperseded(ctx, s, o.Digest, how); err != nil {
		// The new digest is pushed and recorded; only the old build's
		// findings stay open, which the next re-match or rebuild settles.
		b.log().Warn("closing the findings a rebuild fixed", "image", s.Name, "superseded", s.LastDigest, "err", err)
	}
	b.emit(Event{Name: s.Name, Phase: PhasePushed, Digest: o.Digest, Message: fmt.Sprintf("%s:%s (and %d floating tags)", repo, tag, len(tags.Floating))})
	return o, nil
}

// Publish pushes an image a remediation made (how: rebuild or rebase)
// as a new build of the catalog image name: free immutable tag, floating
// tags moved, SBOM stored, build recorded with its parent (nil for a
// base) and package versions, and the fixed findings of the build it
// supersedes closed.
func (b *Builder) Publish(ctx context.Context, name string, img v1.Image, parent v1.Image, parentName string, packages map[string]string, how string) (Outcome, error) {
	im, ok := b.Catalog.Get(name)
	if !ok {
		return Outcome{}, fmt.Errorf("%q is not an image of the catalog", name)
	}
	repo, err := b.Target.Repository(im.Repository)
	if err != nil {
		return Outcome{}, err
	}
	s := &Step{Name: im.Name, Repository: repo.Name(), Kind: im.Kind, Parent: im.Parent, Reasons: []string{"remediation: " + how}, image: im}
	if last, err := b.Store.LastBuild(ctx, name); err == nil {
		s.LastDigest = last.Digest
	} else if !errors.Is(err, store.ErrNotFound) {
		return Outcome{}, err
	}
	if s.inputs, err = b.Catalog.InputsOf(im); err != nil {
		return Outcome{}, err
	}
	var pr *parentRef
	if parent != nil {
		d, err := parent.Digest()
		if err != nil {
			return Outcome{}, err
		}
		pr = &parentRef{image: parent, digest: d.String(), name: parentName}
	}
	if b.Now == nil {
		b.Now = time.Now
	}
	prov := newPredicate(im.Kind, map[string]any{"remediation": how})
	prov.RunDetails.Metadata.StartedOn = b.Now().UTC()
	o, err := b.publish(ctx, s, img, pr, packages, b.Now(), how, &prov)
	if err != nil {
		return Outcome{}, err
	}
	return *o, nil
}

// BuildDockerfile builds the Dockerfile image name of the catalog on
// parent, pushed at parentRepository@parentDigest (which its Dockerfile
// pulls). The image is read from files until release; Publish it first.
func (b *Builder) BuildDockerfile(ctx context.Context, name string, parent v1.Image, parentRepository, parentDigest string) (v1.Image, func(), error) {
	im, ok := b.Catalog.Get(name)
	if !ok || im.Kind != KindDockerfile {
		return nil, nil, fmt.Errorf("%q is not a Dockerfile image of the catalog", name)
	}
	m, err := b.dockerfile(ctx, &Step{Name: im.Name, Kind: im.Kind, image: im}, &parentRef{image: parent, digest: parentDigest, name: parentRepository})
	if err != nil {
		return nil, nil, err
	}
	return m.img, m.close, nil
}

// FindingCloser is the part of the store that closes the findings a
// rebuild fixed.
type FindingCloser interface {
	ImageFindings(ctx context.Context, digest string) ([]store.Finding, error)
	CloseFindings(ctx context.Context, digest string, keys []store.FindingKey, reason string, at time.Time) (int, error)
}

// BuilderStore is what building reads and writes: the build records and
// the findings a rebuild closes.
type BuilderStore interface {
	BuildStore
	FindingCloser
}

// closeSuperseded closes, on the build this one replaces, the findings
// the new digest no longer has, as fixed by rebuild: they stay counted
// while an environment runs the old digest.
func (b *Builder) closeSuperseded(ctx context.Context, s *Step, digest, how string) error {
	if s.LastDigest == "" || s.LastDigest == digest {
		return nil
	}
	old, err := b.Store.ImageFindings(ctx, s.LastDigest)
	if err != nil || len(old) == 0 {
		return err
	}
	cur, err := b.Store.ImageFindings(ctx, digest)
	if err != nil {
		return err
	}
	still := map[store.FindingKey]bool{}
	for _, f := range cur {
		still[f.Key()] = true
	}
	var keys []store.FindingKey
	for _, f := range old {
		if !still[f.Key()] {
			keys = append(keys, f.Key())
		}
	}
	if len(keys) == 0 {
		return nil
	}
	_, err = b.Store.CloseFindings(ctx, s.LastDigest, keys, store.CloseFixedByRebuild+" ("+how+" → "+digest+")", b.Now())
	return err
}

type buildFacts struct {
	parent   *parentRef
	packages map[string]string
}

func (b *Builder) record(ctx context.Context, s *Step, o *Outcome, f *buildFacts, start time.Time) {
	rec := store.Build{
		Name: s.Name, Repository: s.Repository, Digest: o.Digest, Tag: o.Tag, Tags: o.Tags, Parent: s.Parent,
		Inputs: s.inputs.String(), Reasons: s.Reasons, Status: o.Status, Error: o.Error,
		StartedAt: start, FinishedAt: b.Now(), By: b.By,
	}
	if f != nil {
		if f.parent != nil {
			rec.ParentDigest = f.parent.digest
		}
		rec.Packages = f.packages
	}
	if _, err := b.Store.RecordBuild(ctx, rec); err != nil {
		b.log().Error("recording a build", "image", s.Name, "err", err)
	}
}

// parent finds the image a step builds on: the build of this run, the
// last recorded build, or the external reference.
func (b *Builder) parent(ctx context.Context, s *Step, run *Outcome) (*parentRef, error) {
	im := s.image
	var ref name.Reference
	var display string
	switch {
	case im.ParentImage != nil:
		digest, tag := "", ""
		if run != nil {
			digest, tag = run.Digest, run.Tag
		} else {
			last, err := b.Store.LastBuild(ctx, im.ParentImage.Name)
			if err != nil {
				return nil, fmt.Errorf("parent %s: %w", im.ParentImage.Name, err)
			}
			digest, tag = last.Digest, last.Tag
		}
		repo, err := b.Target.Repository(im.ParentImage.Repository)
		if err != nil {
			return nil, err
		}
		ref = repo.Digest(digest)
		display = repo.Tag(tag).Name()
	case im.Parent != "":
		r, err := b.Target.Reference(im.Parent)
		if err != nil {
			return nil, err
		}
		ref, display = r, r.Name()
	default:
		return nil, nil
	}
	desc, err := remote.Get(ref, b.Target.options(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("fetching the parent %s: %w", ref, err)
	}
	img, err := desc.Image()
	if err != nil {
		return nil, err
	}
	return &parentRef{image: img, digest: desc.Digest.String(), name: display}, nil
}

// made is a built image, its package versions (assembled images), its
// provenance so far, and what releases its files.
type made struct {
	img   v1.Image
	pkgs  map[string]string
	prov  provenance.Predicate
	close func()
}

// make runs the builder.
func (b *Builder) make(ctx context.Context, s *Step, parent *parentRef) (*made, error) {
	im := s.image
	switch im.Kind {
	case KindAssemble:
		if b.Assembler == nil {
			return nil, errors.New("no package assembler configured")
		}
		spec := AssembleSpec(im)
		img, res, err := b.Assembler.Assemble(ctx, spec)
		if err != nil {
			return nil, err
		}
		m := &made{img: img, pkgs: res.Versions(), close: func() {}, prov: newPredicate(KindAssemble, map[string]any{
			"suite": spec.Suite, "packages": spec.Packages, "security": spec.Security, "epoch": spec.Epoch.Unix(),
		})}
		for _, n := range slices.Sorted(maps.Keys(m.pkgs)) {
			m.prov.BuildDefinition.ResolvedDependencies = append(m.prov.BuildDefinition.ResolvedDependencies,
				provenance.Dependency{URI: "pkg:deb/debian/" + n + "@" + m.pkgs[n], Name: n})
		}
		return m, nil
	case KindAppend:
		a := im.Build.Append
		spec := mutate.AppendSpec{Config: imageConfig(a.Config), Epoch: epoch(a.Epoch)}
		var layers []map[string]any
		for _, l := range a.Layers {
			from := b.Catalog.Path(l.From)
			spec.Layers = append(spec.Layers, mutate.AppendLayer{From: from, To: l.To, UID: l.UID, GID: l.GID})
			d, err := pathDigest(from)
			if err != nil {
				return nil, err
			}
			layers = append(layers, map[string]any{"from": l.From, "to": l.To, "digest": d})
		}
		img, err := mutate.Append(ctx, mutate.Base{Image: parent.image, Name: parent.name}, spec)
		if err != nil {
			return nil, err
		}
		return &made{img: img, close: func() {}, prov: newPredicate(KindAppend, map[string]any{"layers": layers})}, nil
	case KindDockerfile:
		return b.dockerfile(ctx, s, parent)
	}
	return nil, fmt.Errorf("unknown build kind %q", im.Kind)
}

// dockerfile builds with buildah, BuildKit or docker, the parent passed
// by digest, the output streamed to the progress as log lines.
func (b *Builder) dockerfile(ctx context.Context, s *Step, parent *parentRef) (*made, error) {
	im := s.image
	d := im.Build.Dockerfile
	detect := b.Dockerfile
	if detect == nil {
		detect = mutate.DetectDockerfileBuilder
	}
	db, err := detect(ctx, d.Builder)
	if err != nil {
		return nil, err
	}
	if db.Tool == mutate.ToolBuildah && b.BuildahRoot != "" {
		db.Root, db.RunRoot = filepath.Join(b.BuildahRoot, "storage"), filepath.Join(b.BuildahRoot, "run")
	}
	spec := mutate.DockerfileSpec{Context: b.Catalog.Path(d.Context), File: d.File, Target: d.Target, Args: d.Args, ParentArg: d.ParentArg,
		Log: func(line string) { b.emit(Event{Name: s.Name, Phase: PhaseLog, Message: line}) }}
	if len(d.Platforms) == 1 {
		spec.Platform = d.Platforms[0]
	}
	if parent != nil {
		spec.Parent = baseRepository(parent.name) + "@" + parent.digest
	}
	file := filepath.Join(spec.Context, cmp.Or(d.File, "Dockerfile"))
	fileDigest, err := provenance.FileDigest(file)
	if err != nil {
		return nil, err
	}
	contextDigest, err := provenance.DirDigest(spec.Context)
	if err != nil {
		return nil, err
	}
	built, err := db.Build(ctx, spec)
	if err != nil {
		return nil, err
	}
	var img v1.Image = built
	if parent != nil {
		if img, err = mutate.AnnotateBase(built, mutate.Base{Image: parent.image, Name: parent.name}); err != nil {
			built.Close()
			return nil, err
		}
	}
	prov := newPredicate(KindDockerfile, map[string]any{
		"dockerfile": map[string]any{"path": cmp.Or(d.File, "Dockerfile"), "digest": fileDigest},
		"context":    map[string]any{"path": d.Context, "digest": contextDigest},
		"target":     d.Target, "args": d.Args, "platform": spec.Platform,
	})
	prov.BuildDefinition.InternalParameters = map[string]any{"builder": db.Tool}
	prov.RunDetails.Builder.Version[db.Tool] = db.Version
	return &made{img: img, prov: prov, close: func() { built.Close() }}, nil
}

// newPredicate starts the provenance of a build of kind.
func newPredicate(kind string, external map[string]any) provenance.Predicate {
	return provenance.Predicate{
		BuildDefinition: provenance.BuildDefinition{BuildType: provenance.BuildTypePrefix + kind + "/v1", ExternalParameters: external},
		RunDetails: provenance.RunDetails{
			Builder:  provenance.Builder{ID: "https://socle.dev/builder/" + kind, Version: map[string]string{"socle": sbom.ToolVersion}},
			Metadata: provenance.Metadata{InvocationID: randomID()},
		},
	}
}

// baseRepository is the repository of a parent's display name.
func baseRepository(display string) string {
	if r, err := name.ParseReference(display); err == nil {
		return r.Context().Name()
	}
	return display
}

// pathDigest is the digest of a file or a directory tree.
func pathDigest(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		return provenance.DirDigest(p)
	}
	return provenance.FileDigest(p)
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freeTag returns tag, or tag-rN for the first N whose tag is free or
// already names digest: an immutable tag never moves.
func (b *Builder) freeTag(ctx context.Context, repo name.Repository, tag, digest string) (string, error) {
	for n := 0; n < 1000; n++ {
		t := RevisionTag(tag, n)
		cur, err := b.Target.TagDigest(ctx, repo.Tag(t))
		if err != nil {
			return "", err
		}
		if cur == "" || cur == digest {
			return t, nil
		}
	}
	return "", fmt.Errorf("%s:%s has a thousand revisions", repo, tag)
}

func imageConfig(c config.ImageConfig) mutate.Config {
	return mutate.Config{User: c.User, Env: c.Env, Labels: c.Labels, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir}
}

func epoch(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
