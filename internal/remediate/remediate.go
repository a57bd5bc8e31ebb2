package remediate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/osv-scalibr/semantic"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/catalog"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/mutate"
	"github.com/socle-dev/socle/internal/notify"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/provenance"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
)

// Strategies.
const (
	StrategyRebuild = "rebuild"
	StrategyRebase  = "rebase"
	StrategyGit     = "git"
	StrategyNone    = "none"
)

// FindingReader reads the findings an image holds.
type FindingReader interface {
	ImageFindings(ctx context.Context, digest string) ([]store.Finding, error)
	FindingsClosedAs(ctx context.Context, digest, prefix string) ([]store.Finding, error)
}

// AttributionStore is what attribution reads: findings and lineage.
type AttributionStore interface {
	FindingReader
	catalog.LineageStore
}

// Store is what a Remediator reads and writes.
type Store interface {
	AttributionStore
	LastBuild(ctx context.Context, name string) (store.Build, error)
	BuildHistory(ctx context.Context, name string, limit int) ([]store.Build, error)
	RecordRemediation(ctx context.Context, r store.Remediation, ev store.AuditEvent) (int64, error)
}

var (
	_ Store         = store.Store(nil)
	_ ExposureStore = store.Store(nil)
)

// Attributed is a finding with the catalog image that owns it.
type Attributed struct {
	store.Finding
	// Owner is the catalog image whose own layers introduced the package
	// ("" when the layer belongs to no catalog image); OwnerDigest the
	// digest of that image in the lineage.
	Owner       string `json:"owner"`
	OwnerDigest string `json:"owner_digest"`
}

// Attribute returns the findings digest still has (open, or closed
// because a rebuild superseded it) with their owners, found through the
// image's lineage: the deepest base whose layers include the package's
// layer owns it.
func Attribute(ctx context.Context, st AttributionStore, digest string, names map[string]string) ([]Attributed, error) {
	fs, err := held(ctx, st, digest)
	if err != nil {
		return nil, err
	}
	links, err := catalog.Lineage(ctx, st, digest)
	if err != nil {
		return nil, err
	}
	var out []Attributed
	for _, f := range fs {
		if f.Withdrawn {
			continue
		}
		a := Attributed{Finding: f}
		// links[0] is the image; the last is the deepest base.
		for i := len(links) - 1; i >= 0; i-- {
			if f.Package.LayerIndex < links[i].Layers {
				a.OwnerDigest, a.Owner = links[i].Digest, names[links[i].Digest]
				break
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// Remediator plans and applies remediations for a catalog.
type Remediator struct {
	Catalog *catalog.Catalog
	Store   Store
	Target  catalog.Target
	// Assembler resolves and assembles assembled images.
	Assembler *assemble.Assembler
	// Scanner verifies candidates.
	Scanner *scan.Scanner
	// Builder publishes accepted candidates (its Indexer stores them).
	Builder *catalog.Builder
	// Git lists the repositories whose digest pins are bumped.
	Git []GitTarget
	// Pins rewrites NAME=VERSION pins in socle.yaml and returns the
	// catalog read again; nil leaves them.
	Pins func(image string, pins map[string]string) (*catalog.Catalog, error)
	// Notify receives "remediation.done" events; nil sends none.
	Notify func(ctx context.Context, event string, payload any)
	// OnAction, when set, is told of every action as it completes (a fix
	// run records each with its time).
	OnAction func(ctx context.Context, a *Action)
	By       string
	Now      func() time.Time
	Logger   *slog.Logger
}

// FullStore is what New builds a Remediator, its builder and its
// indexer on.
type FullStore interface {
	Store
	catalog.BuilderStore
	PutTag(ctx context.Context, ev store.TagEvent) error
}

var _ FullStore = store.Store(nil)

// Deps are what New builds a Remediator from.
type Deps struct {
	// Config is socle.yaml: its Git repositories, webhooks and pins.
	Config  *config.File
	Catalog *catalog.Catalog
	Store   FullStore
	Scanner *scan.Scanner
	Target  catalog.Target
	// AptCache is where the assembler caches the Debian archive, used
	// when the catalog has assembled images.
	AptCache string
	// BuildahRoot keeps buildah's layer cache for Dockerfile rebuilds;
	// Provenance signs the provenance of what remediation pushes.
	BuildahRoot string
	Provenance  provenance.Attester
	By          string
	Logger      *slog.Logger
}

// New returns the remediator of a catalog: candidates are verified with
// the scanner, published through a catalog builder that indexes them,
// pins are rewritten in socle.yaml, and remediation.done goes to the
// webhooks.
func New(d Deps) (*Remediator, error) {
	cfg := d.Config
	r := &Remediator{
		Catalog: d.Catalog, Store: d.Store, Target: d.Target, Scanner: d.Scanner, By: d.By, Logger: d.Logger,
		Builder: &catalog.Builder{Catalog: d.Catalog, Store: d.Store, Target: d.Target,
			Indexer: catalog.ImageIndexer{Scanner: d.Scanner, Tags: d.Store}, By: "remediation", Logger: d.Logger,
			BuildahRoot: d.BuildahRoot, Provenance: d.Provenance},
		Notify: notify.FromConfig(cfg.Webhooks, d.Logger).Func(),
		Pins: func(image string, pins map[string]string) (*catalog.Catalog, error) {
			if err := config.SetPins(cfg.Path(), image, pins); err != nil {
				return nil, err
			}
			f, err := config.Load(cfg.Path())
			if err != nil {
				return nil, err
			}
			return catalog.New(f)
		},
	}
	if d.Catalog.Assembles() {
		a, err := assemble.New(assemble.Options{Cache: d.AptCache, Logger: d.Logger})
		if err != nil {
			return nil, err
		}
		r.Assembler = a
	}
	for _, gr := range cfg.Remediation.Git {
		r.Git = append(r.Git, GitTarget{Repo: gr.Repo, Branch: gr.Branch, Paths: gr.Paths})
	}
	return r, nil
}

// Action is what the plan does to one catalog image.
type Action struct {
	Image      string `json:"image"`
	Repository string `json:"repository"`
	Strategy   string `json:"strategy"`
	// Why explains the strategy.
	Why  string `json:"why"`
	From string `json:"from"`
	// Owned are the findings this image's own layers bring; Inherited
	// those its bases bring, fixed by their remediation.
	Owned     []Attributed `json:"owned,omitempty"`
	Inherited []Attributed `json:"inherited,omitempty"`
	// Upgrades lists package changes for a rebuild.
	Upgrades []string          `json:"upgrades,omitempty"`
	pins     map[string]string // name → new version, for pinned packages
	// After: the outcome.
	To     string   `json:"to,omitempty"`
	Status string   `json:"status,omitempty"`
	Fixed  []string `json:"fixed,omitempty"`
	Added  []string `json:"added,omitempty"`
	Detail string   `json:"detail,omitempty"`
	// Commits are the Git bumps made for this image's new digest.
	Commits []string `json:"commits,omitempty"`
}

// Plan is the remediation of a catalog, in build order.
type Plan struct {
	Actions []*Action `json:"actions"`
	// Clean lists catalog images with no open fixable finding.
	Clean []string `json:"clean,omitempty"`
}

func (r *Remediator) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Remediator) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// digestNames maps every digest a catalog image was built as to its name.
func (r *Remediator) digestNames(ctx context.Context) (map[string]string, error) {
	names := map[string]string{}
	for _, im := range r.Catalog.Images {
		hist, err := r.Store.BuildHistory(ctx, im.Name, 1000)
		if err != nil {
			return nil, err
		}
		for _, b := range hist {
			if b.Digest != "" {
				names[b.Digest] = im.Name
			}
		}
	}
	return names, nil
}

// Plan works out, for each catalog image, what to do and why.
func (r *Remediator) Plan(ctx context.Context) (*Plan, error) {
	names, err := r.digestNames(ctx)
	if err != nil {
		return nil, err
	}
	plan := &Plan{}
	acts := map[string]*Action{}
	for _, level := range catalog.Levels(r.Catalog.Images) {
		for _, im := range level {
			last, err := r.Store.LastBuild(ctx, im.Name)
			if errors.Is(err, store.ErrNotFound) {
				continue // never built: socle build, not remediation
			}
			if err != nil {
				return nil, err
			}
			repo, err := r.Target.Repository(im.Repository)
			if err != nil {
				return nil, err
			}
			a := &Action{Image: im.Name, Repository: repo.Name(), From: last.Digest}
			fs, err := Attribute(ctx, r.Store, last.Digest, names)
			if err != nil {
				return nil, err
			}
			for _, f := range fs {
				if f.FixedVersion == "" {
					continue
				}
				if f.Owner == im.Name || f.Owner == "" && f.OwnerDigest == last.Digest {
					a.Owned = append(a.Owned, f)
				} else {
					a.Inherited = append(a.Inherited, f)
				}
			}
			parentAct := (*Action)(nil)
			if im.ParentImage != nil {
				parentAct = acts[im.ParentImage.Name]
			}
			parentMoves := parentAct != nil && parentAct.Strategy != StrategyNone
			if len(a.Owned) == 0 && !parentMoves {
				if len(a.Inherited) == 0 {
					plan.Clean = append(plan.Clean, im.Name)
				} else {
					a.Strategy = StrategyNone
					var owners []string
					for _, f := range a.Inherited {
						owners = append(owners, cmp.Or(f.Owner, "a base outside the catalog"))
					}
					a.Why = fmt.Sprintf("its %d fixable findings come from %s, which has no fix to carry yet; socle keeps watching",
						len(a.Inherited), strings.Join(uniq(owners), ", "))
					acts[im.Name] = a
					plan.Actions = append(plan.Actions, a)
				}
				continue
			}
			if err := r.choose(ctx, im, a, parentAct, last); err != nil {
				return nil, err
			}
			acts[im.Name] = a
			plan.Actions = append(plan.Actions, a)
		}
	}
	return plan, nil
}

// choose picks the strategy of one image.
func (r *Remediator) choose(ctx context.Context, im *catalog.Image, a *Action, parent *Action, last store.Build) error {
	parentMoves := parent != nil && parent.Strategy != StrategyNone
	own := ""
	if len(a.Owned) > 0 {
		var pk []string
		for _, f := range a.Owned {
			pk = append(pk, f.Package.Name+" "+f.Package.Version+" → "+f.FixedVersion)
		}
		own = fmt.Sprintf("the fixes in %s's own content (%s) are for its owners", im.Name, summarize(uniq(pk), 3))
	}
	switch {
	case im.Kind == catalog.KindAssemble && len(a.Owned) > 0:
		return r.chooseRebuild(ctx, im, a, last)
	case parentMoves && im.RebaseSafe():
		a.Strategy = StrategyRebase
		a.Why = fmt.Sprintf("its own layers do not depend on %s (%s): rebase them onto %s's new digest to take its fixes (%d of its findings come from its bases)",
			im.ParentImage.Name, rebaseWhy(im), im.ParentImage.Name, len(a.Inherited))
		if own != "" {
			a.Why += "; " + own
		}
	case parentMoves:
		a.Strategy = StrategyRebuild
		a.Why = fmt.Sprintf("its parent %s gets a new digest and its layers may depend on it (a Dockerfile build not marked rebase: safe): rebuild", im.ParentImage.Name)
	default:
		a.Strategy = StrategyNone
		a.Why = own + ": socle keeps watching"
	}
	return nil
}

func rebaseWhy(im *catalog.Image) string {
	if im.Kind == catalog.KindAppend {
		return "append-layer image"
	}
	return "rebase: safe"
}

// chooseRebuild checks the archive for the fixed versions of an
// assembled image's packages.
func (r *Remediator) chooseRebuild(ctx context.Context, im *catalog.Image, a *Action, last store.Build) error {
	if r.Assembler == nil {
		a.Strategy, a.Why = StrategyNone, "no package archive configured"
		return nil
	}
	spec := catalog.AssembleSpec(im)
	// Lift the pins of the packages the findings name.
	affected := map[string]bool{}
	for _, f := range a.Owned {
		affected[f.Package.Name] = true
	}
	var pinned []string
	for i, p := range spec.Packages {
		n, _, ok := strings.Cut(p, "=")
		if ok && affected[n] {
			spec.Packages[i] = n
			pinned = append(pinned, n)
		}
	}
	r.Assembler.Refresh()
	res, err := r.Assembler.Resolve(ctx, spec)
	if err != nil {
		return fmt.Errorf("resolving %s: %w", im.Name, err)
	}
	now := res.Versions()
	fixable := 0
	var missing []string
	upgrades := map[string]string{}
	for _, f := range a.Owned {
		v, ok := now[f.Package.Name]
		if ok && !versionLess(f.Package.Key.Ecosystem, v, f.FixedVersion) {
			fixable++
			upgrades[f.Package.Name] = v
		} else {
			missing = append(missing, fmt.Sprintf("%s (%s needs %s, the archive has %s)", f.AdvisoryID, f.Package.Name, f.FixedVersion, cmp.Or(v, "nothing")))
		}
	}
	if fixable == 0 {
		a.Strategy = StrategyNone
		a.Why = "no fix in the archive yet: " + summarize(uniq(missing), 3) + "; socle keeps watching"
		return nil
	}
	a.Strategy = StrategyRebuild
	for n, v := range upgrades {
		a.Upgrades = append(a.Upgrades, fmt.Sprintf("%s %s → %s", n, last.Packages[n], v))
		if slices.Contains(pinned, n) {
			if a.pins == nil {
				a.pins = map[string]string{}
			}
			a.pins[n] = v
		}
	}
	sort.Strings(a.Upgrades)
	a.Why = fmt.Sprintf("assembled from the archive, which now has the fixed versions: rebuild with %s", strings.Join(a.Upgrades, ", "))
	if len(missing) > 0 {
		a.Why += fmt.Sprintf("; still without a fix: %s", summarize(uniq(missing), 3))
	}
	return nil
}

// versionLess compares versions in the ecosystem's order.
func versionLess(ecosystem, a, b string) bool {
	eco := ecosystem
	if i := strings.IndexByte(eco, ':'); i > 0 {
		eco = eco[:i]
	}
	v, err := semantic.Parse(a, eco)
	if err != nil {
		return a < b
	}
	c, err := v.CompareStr(b)
	if err != nil {
		return a < b
	}
	return c < 0
}

// Apply carries out the plan: each candidate is built, scanned and
// compared with the current digest, and pushed only when it removes
// findings and adds none. Every outcome is recorded, with its audit
// event. With dryRun, candidates are built and scanned but nothing is
// pushed or recorded.
func (r *Remediator) Apply(ctx context.Context, plan *Plan, dryRun bool) error {
	built := map[string]v1.Image{} // catalog name → the new image
	for _, a := range plan.Actions {
		r.apply(ctx, a, built, dryRun)
		if dryRun {
			continue
		}
		r.record(ctx, a)
		if a.Status == store.RemediationApplied && r.Notify != nil {
			r.Notify(ctx, "remediation.done", a)
		}
		if r.OnAction != nil {
			r.OnAction(ctx, a)
		}
	}
	return nil
}

// apply carries out one action and sets its outcome.
func (r *Remediator) apply(ctx context.Context, a *Action, built map[string]v1.Image, dryRun bool) {
	fail := func(detail string) { a.Status, a.Detail = store.RemediationFailed, detail }
	if a.Strategy == StrategyNone {
		a.Status = store.RemediationNone
		return
	}
	im, _ := r.Catalog.Get(a.Image)
	img, parent, pkgs, release, err := r.candidate(ctx, im, a, built, dryRun)
	if errors.Is(err, errNeedsPushedParent) {
		a.Status, a.Detail = "not built (dry run)", err.Error()
		return
	}
	if err != nil {
		fail(err.Error())
		return
	}
	defer release()
	if err := r.verify(ctx, a, img); err != nil {
		fail(err.Error())
		return
	}
	if len(a.Added) > 0 || len(a.Fixed) == 0 {
		a.Status = store.RemediationRejected
		a.Detail = fmt.Sprintf("the candidate fixes %d findings and adds %d: not offered", len(a.Fixed), len(a.Added))
		return
	}
	d, _ := img.Digest()
	a.To = d.String()
	built[a.Image] = img
	if dryRun {
		a.Status = "verified (dry run)"
		return
	}
	if len(a.pins) > 0 && r.Pins != nil {
		c, err := r.Pins(a.Image, a.pins)
		if err != nil {
			fail("bumping the pins in socle.yaml: " + err.Error())
			return
		}
		// The build is recorded with the catalog as it now reads.
		r.Catalog, r.Builder.Catalog = c, c
		im, _ = c.Get(a.Image)
	}
	parentName := ""
	if im.ParentImage != nil {
		parentName = im.ParentImage.Name
	}
	out, err := r.Builder.Publish(ctx, a.Image, img, parent, parentName, pkgs, a.Strategy)
	if err != nil {
		fail(err.Error())
		return
	}
	a.Status, a.Detail = store.RemediationApplied, fmt.Sprintf("pushed %s:%s", a.Repository, out.Tag)
	for _, g := range r.Git {
		c, err := g.Bump(ctx, []Bump{{Repository: a.Repository, From: a.From, To: a.To}}, a.Fixed, r.now())
		if err != nil {
			a.Detail += "; git " + g.Repo + ": " + err.Error()
		} else if c != "" {
			a.Commits = append(a.Commits, c)
		}
	}
}

// candidate builds the new image of an action, in memory or, for a
// Dockerfile build, in files that release removes.
func (r *Remediator) candidate(ctx context.Context, im *catalog.Image, a *Action, built map[string]v1.Image, dryRun bool) (img, parent v1.Image, pkgs map[string]string, release func(), err error) {
	release = func() {}
	if a.Strategy == StrategyRebuild && im.Kind == catalog.KindDockerfile {
		img, parent, release, err = r.rebuildDockerfile(ctx, im, built, dryRun)
		return img, parent, nil, release, err
	}
	img, parent, pkgs, err = r.candidateInMemory(ctx, im, a, built)
	return img, parent, pkgs, release, err
}

// errNeedsPushedParent is why a dry run cannot build a Dockerfile child.
var errNeedsPushedParent = errors.New("rebuilt only when applied")

// rebuildDockerfile builds a Dockerfile image again on its parent's new
// digest, which its Dockerfile pulls: the parent must have been pushed.
func (r *Remediator) rebuildDockerfile(ctx context.Context, im *catalog.Image, built map[string]v1.Image, dryRun bool) (v1.Image, v1.Image, func(), error) {
	newParent := built[im.ParentImage.Name]
	if newParent == nil {
		return nil, nil, nil, fmt.Errorf("the parent %s was not remediated", im.ParentImage.Name)
	}
	if dryRun {
		return nil, nil, nil, fmt.Errorf("%w: the Dockerfile of %s starts FROM the new %s, which a dry run does not push", errNeedsPushedParent, im.Name, im.ParentImage.Name)
	}
	parentRepo, err := r.Target.Repository(im.ParentImage.Repository)
	if err != nil {
		return nil, nil, nil, err
	}
	d, err := newParent.Digest()
	if err != nil {
		return nil, nil, nil, err
	}
	img, release, err := r.Builder.BuildDockerfile(ctx, im.Name, newParent, parentRepo.Name(), d.String())
	return img, newParent, release, err
}

func (r *Remediator) candidateInMemory(ctx context.Context, im *catalog.Image, a *Action, built map[string]v1.Image) (v1.Image, v1.Image, map[string]string, error) {
	switch {
	case a.Strategy == StrategyRebuild && im.Kind == catalog.KindAssemble:
		spec := catalog.AssembleSpec(im)
		for i, p := range spec.Packages {
			n, _, _ := strings.Cut(p, "=")
			if v, ok := a.pins[n]; ok {
				spec.Packages[i] = n + "=" + v
			}
		}
		img, res, err := r.Assembler.Assemble(ctx, spec)
		if err != nil {
			return nil, nil, nil, err
		}
		return img, nil, res.Versions(), nil
	case a.Strategy == StrategyRebase:
		newParent := built[im.ParentImage.Name]
		if newParent == nil {
			return nil, nil, nil, fmt.Errorf("the parent %s was not remediated", im.ParentImage.Name)
		}
		cur, err := r.pull(ctx, a.Repository, a.From)
		if err != nil {
			return nil, nil, nil, err
		}
		last, err := r.Store.LastBuild(ctx, im.Name)
		if err != nil {
			return nil, nil, nil, err
		}
		parentRepo, err := r.Target.Repository(im.ParentImage.Repository)
		if err != nil {
			return nil, nil, nil, err
		}
		oldParent, err := r.pull(ctx, parentRepo.Name(), last.ParentDigest)
		if err != nil {
			return nil, nil, nil, err
		}
		img, err := mutate.Rebase(cur, oldParent, mutate.Base{Image: newParent, Name: parentRepo.Name()})
		if err != nil {
			return nil, nil, nil, err
		}
		return img, newParent, nil, nil
	}
	return nil, nil, nil, fmt.Errorf("%s of a %s image is not something socle does: run socle build %s", a.Strategy, im.Kind, im.Name)
}

func (r *Remediator) pull(ctx context.Context, repo, digest string) (v1.Image, error) {
	ref, err := name.NewDigest(repo+"@"+digest, r.nameOpts()...)
	if err != nil {
		return nil, err
	}
	return remote.Image(ref, append([]remote.Option{remote.WithContext(ctx)}, r.Target.Remote...)...)
}

func (r *Remediator) nameOpts() []name.Option {
	if r.Target.InsecureUnsafe {
		return []name.Option{name.Insecure}
	}
	return nil
}

// verify scans the candidate and compares its findings with the current
// digest's: what it fixes and what it adds.
func (r *Remediator) verify(ctx context.Context, a *Action, img v1.Image) error {
	res, err := r.Scanner.Scan(ctx, &source.Image{Image: img, Ref: oci.ImageRef{Transport: oci.TransportRegistry, Path: a.Repository + ":candidate"},
		Repository: a.Repository}, scan.Options{})
	if err != nil {
		return fmt.Errorf("scanning the candidate: %w", err)
	}
	after := map[store.FindingKey]bool{}
	for _, f := range res.Findings {
		if f.Withdrawn {
			continue
		}
		for _, adv := range f.Advisories {
			after[store.FindingKey{AdvisoryID: adv, Package: f.Package.Name}] = true
		}
	}
	before := map[store.FindingKey]bool{}
	cur, err := r.Store.ImageFindings(ctx, a.From)
	if err != nil {
		return err
	}
	for _, f := range cur {
		if !f.Withdrawn {
			before[f.Key()] = true
		}
	}
	a.Fixed, a.Added = nil, nil
	for k := range before {
		if !after[k] {
			a.Fixed = append(a.Fixed, k.String())
		}
	}
	for k := range after {
		if !before[k] {
			a.Added = append(a.Added, k.String())
		}
	}
	sort.Strings(a.Fixed)
	sort.Strings(a.Added)
	return nil
}

// record stores the outcome of an action, with its audit event.
func (r *Remediator) record(ctx context.Context, a *Action) {
	rec := store.Remediation{Image: a.Image, Repository: a.Repository, Strategy: a.Strategy, From: a.From, To: a.To,
		Fixes: a.Fixed, Added: a.Added, Status: a.Status, Detail: cmp.Or(a.Detail, a.Why), At: r.now(), By: r.By}
	details, _ := json.Marshal(struct {
		Image    string `json:"image"`
		Strategy string `json:"strategy"`
		Status   string `json:"status"`
		From     string `json:"from"`
		To       string `json:"to"`
		Fixed    int    `json:"fixed"`
		Added    int    `json:"added"`
	}{a.Image, a.Strategy, a.Status, a.From, a.To, len(a.Fixed), len(a.Added)})
	_, err := r.Store.RecordRemediation(ctx, rec, store.AuditEvent{At: rec.At, Actor: cmp.Or(r.By, "socle"), Action: "remediation." + a.Status,
		Subject: a.Repository + "@" + a.From, Details: details})
	if err != nil {
		r.log().Error("recording a remediation", "image", a.Image, "err", err)
	}
}

func uniq(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

func summarize(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:n], ", ") + fmt.Sprintf(" and %d more", len(list)-n)
}
