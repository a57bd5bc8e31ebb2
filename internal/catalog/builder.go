package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/mutate"
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
	// Dockerfile finds the external builder; nil uses
	// mutate.DetectDockerfileBuilder.
	Dockerfile func(context.Context) (*mutate.DockerfileBuilder, error)
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
	img, pkgs, err := b.make(ctx, s, parent)
	if err != nil {
		return fail(err)
	}
	out, err := b.publish(ctx, s, img, parent, pkgs, start, "build")
	if err != nil {
		return fail(err)
	}
	return out
}

// publish pushes a built image under a free immutable tag, moves its
// floating tags, stores its SBOM and records the build.
// how names what made the image ("build", or a remediation's strategy),
// in the reason the superseded build's fixed findings are closed with.
func (b *Builder) publish(ctx context.Context, s *Step, img v1.Image, parent *parentRef, pkgs map[string]string, start time.Time, how string) (*Outcome, error) {
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
	o, err := b.publish(ctx, s, img, pr, packages, b.Now(), how)
	if err != nil {
		return Outcome{}, err
	}
	return *o, nil
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

// make runs the builder.
func (b *Builder) make(ctx context.Context, s *Step, parent *parentRef) (v1.Image, map[string]string, error) {
	im := s.image
	switch im.Kind {
	case KindAssemble:
		if b.Assembler == nil {
			return nil, nil, errors.New("no package assembler configured")
		}
		img, res, err := b.Assembler.Assemble(ctx, AssembleSpec(im))
		if err != nil {
			return nil, nil, err
		}
		return img, res.Versions(), nil
	case KindAppend:
		a := im.Build.Append
		spec := mutate.AppendSpec{Config: imageConfig(a.Config), Epoch: epoch(a.Epoch)}
		for _, l := range a.Layers {
			spec.Layers = append(spec.Layers, mutate.AppendLayer{From: b.Catalog.Path(l.From), To: l.To, UID: l.UID, GID: l.GID})
		}
		img, err := mutate.Append(ctx, mutate.Base{Image: parent.image, Name: parent.name}, spec)
		return img, nil, err
	case KindDockerfile:
		detect := b.Dockerfile
		if detect == nil {
			detect = mutate.DetectDockerfileBuilder
		}
		db, err := detect(ctx)
		if err != nil {
			return nil, nil, err
		}
		d := im.Build.Dockerfile
		spec := mutate.DockerfileSpec{Context: b.Catalog.Path(d.Context), File: d.File, Target: d.Target, Args: d.Args, ParentArg: d.ParentArg}
		if parent != nil {
			repo := parent.name
			if r, err := name.ParseReference(parent.name); err == nil {
				repo = r.Context().Name()
			}
			spec.Parent = repo + "@" + parent.digest
		}
		img, err := db.Build(ctx, spec)
		if err != nil {
			return nil, nil, err
		}
		if parent != nil {
			img, err = mutate.AnnotateBase(img, mutate.Base{Image: parent.image, Name: parent.name})
		}
		return img, nil, err
	}
	return nil, nil, fmt.Errorf("unknown build kind %q", im.Kind)
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
