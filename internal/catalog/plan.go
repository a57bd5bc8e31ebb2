package catalog

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/socle-dev/socle/internal/assemble"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/store"
)

// Reasons a plan gives for building an image. The detail after the
// colon, when there is one, names what changed.
const (
	ReasonNeverBuilt     = "never built"
	ReasonCatalogChanged = "catalog entry changed"
	ReasonInputsChanged  = "input files changed"
	ReasonParentRebuilt  = "parent rebuilt"
	ReasonParentChanged  = "parent digest changed"
	ReasonPackages       = "package updates available"
	ReasonRequested      = "requested"
)

// Step is one image of a plan.
type Step struct {
	Name       string `json:"name"`
	Repository string `json:"repository"`
	Kind       string `json:"kind"`
	// Level orders the plan: every parent is in an earlier level.
	Level   int      `json:"level"`
	Reasons []string `json:"reasons"`
	// Parent is the catalog name or external reference of the parent;
	// ParentDigest its digest when known before the build (it is not
	// when the parent is in the plan).
	Parent       string `json:"parent,omitempty"`
	ParentDigest string `json:"parent_digest,omitempty"`
	// Tag is the immutable tag the build gets; TagTaken says it already
	// names another digest, so a -rN revision will be added.
	Tag      string `json:"tag"`
	TagTaken bool   `json:"tag_taken,omitempty"`
	// Moves are the floating tags that will move to the new build.
	Moves []TagMove `json:"floating"`
	// Packages, for assembled images, are the versions the archive
	// offers now; PackageChanges what differs from the last build.
	Packages       map[string]string `json:"-"`
	PackageChanges []string          `json:"package_changes,omitempty"`
	// LastDigest is the digest of the last successful build.
	LastDigest string `json:"last_digest,omitempty"`

	image  *Image
	inputs Inputs
}

// TagMove is a floating tag and what it points at now.
type TagMove struct {
	Tag  string `json:"tag"`
	From string `json:"from,omitempty"`
}

// Plan is what must be built, in order.
type Plan struct {
	Steps []*Step `json:"steps"`
	// UpToDate lists the catalog images that need nothing.
	UpToDate []string `json:"up_to_date"`
	// Notes say what the planner could not check.
	Notes []string `json:"notes,omitempty"`
}

// Step returns the step of an image, or nil.
func (p *Plan) Step(name string) *Step {
	for _, s := range p.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// PackageResolver says which package versions an assembled image would
// get now. *assemble.Assembler is one.
type PackageResolver interface {
	Resolve(ctx context.Context, spec assemble.Spec) (*assemble.Resolution, error)
}

// BuildStore is what planning and building read and write.
type BuildStore interface {
	LastBuild(ctx context.Context, name string) (store.Build, error)
	RecordBuild(ctx context.Context, b store.Build) (int64, error)
}

// Planner decides what must be rebuilt.
type Planner struct {
	Catalog *Catalog
	Store   BuildStore
	Target  Target
	// Packages resolves assembled images' packages; nil skips the check
	// (the plan notes it).
	Packages PackageResolver
}

// PlanOptions narrow a plan.
type PlanOptions struct {
	// Names forces these images to be built, with their descendants;
	// when set, nothing else is planned.
	Names []string
}

// Plan works out what to build, and why.
func (p *Planner) Plan(ctx context.Context, o PlanOptions) (*Plan, error) {
	c := p.Catalog
	forced := map[string]bool{}
	for _, n := range o.Names {
		if _, ok := c.Get(n); !ok {
			return nil, fmt.Errorf("%q is not an image of the catalog", n)
		}
		forced[n] = true
	}
	plan := &Plan{}
	if p.Packages == nil {
		plan.Notes = append(plan.Notes, "package updates were not checked (no archive access)")
	}
	steps := map[string]*Step{}
	for _, level := range Levels(c.Images) {
		for _, im := range level {
			s, err := p.step(ctx, im, steps, forced[im.Name])
			if err != nil {
				return nil, fmt.Errorf("planning %s: %w", im.Name, err)
			}
			if len(s.Reasons) == 0 {
				plan.UpToDate = append(plan.UpToDate, im.Name)
				continue
			}
			steps[im.Name] = s
			plan.Steps = append(plan.Steps, s)
		}
	}
	if len(o.Names) > 0 {
		keep := plan.Steps[:0]
		for _, s := range plan.Steps {
			if forced[s.Name] || hasForcedAncestor(s.image, forced) {
				keep = append(keep, s)
			}
		}
		plan.Steps = keep
	}
	for _, s := range plan.Steps {
		s.Level = 0
		for a := s.image.ParentImage; a != nil; a = a.ParentImage {
			if ps := plan.Step(a.Name); ps != nil {
				s.Level = ps.Level + 1
				break
			}
		}
	}
	sort.SliceStable(plan.Steps, func(a, b int) bool { return plan.Steps[a].Level < plan.Steps[b].Level })
	return plan, nil
}

func hasForcedAncestor(im *Image, forced map[string]bool) bool {
	for _, a := range im.Ancestors() {
		if forced[a.Name] {
			return true
		}
	}
	return false
}

func (p *Planner) step(ctx context.Context, im *Image, planned map[string]*Step, forced bool) (*Step, error) {
	repo, err := p.Target.Repository(im.Repository)
	if err != nil {
		return nil, err
	}
	s := &Step{Name: im.Name, Repository: repo.Name(), Kind: im.Kind, Parent: im.Parent, image: im}
	if s.inputs, err = p.Catalog.InputsOf(im); err != nil {
		return nil, err
	}
	last, err := p.Store.LastBuild(ctx, im.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.Reasons = append(s.Reasons, ReasonNeverBuilt)
	case err != nil:
		return nil, err
	default:
		s.LastDigest = last.Digest
		was := ParseInputs(last.Inputs)
		if was.Entry != s.inputs.Entry {
			s.Reasons = append(s.Reasons, ReasonCatalogChanged)
		}
		if was.Files != s.inputs.Files {
			s.Reasons = append(s.Reasons, ReasonInputsChanged)
		}
	}
	// The parent.
	switch {
	case im.ParentImage != nil:
		if _, ok := planned[im.ParentImage.Name]; ok {
			s.Reasons = append(s.Reasons, ReasonParentRebuilt+": "+im.ParentImage.Name)
			break
		}
		pb, err := p.Store.LastBuild(ctx, im.ParentImage.Name)
		if err != nil {
			return nil, fmt.Errorf("parent %s: %w", im.ParentImage.Name, err)
		}
		s.ParentDigest = pb.Digest
	case im.Parent != "":
		ref, err := p.Target.Reference(im.Parent)
		if err != nil {
			return nil, err
		}
		if s.ParentDigest, err = p.Target.TagDigest(ctx, ref); err != nil {
			return nil, err
		}
		if s.ParentDigest == "" {
			return nil, fmt.Errorf("parent %s does not exist", im.Parent)
		}
	}
	if last.Digest != "" && s.ParentDigest != "" && s.ParentDigest != last.ParentDigest {
		s.Reasons = append(s.Reasons, fmt.Sprintf("%s: %s → %s", ReasonParentChanged, shortOrNone(last.ParentDigest), shortOrNone(s.ParentDigest)))
	}
	// Packages.
	if im.Kind == KindAssemble && p.Packages != nil {
		res, err := p.Packages.Resolve(ctx, AssembleSpec(im))
		if err != nil {
			return nil, fmt.Errorf("resolving packages: %w", err)
		}
		s.Packages = res.Versions()
		if last.Digest != "" {
			s.PackageChanges = packageChanges(last.Packages, s.Packages)
			if len(s.PackageChanges) > 0 && !slices.Contains(s.Reasons, ReasonCatalogChanged) {
				s.Reasons = append(s.Reasons, ReasonPackages+": "+summarize(s.PackageChanges, 3))
			}
		}
	}
	if forced && len(s.Reasons) == 0 {
		s.Reasons = append(s.Reasons, ReasonRequested)
	}
	if len(s.Reasons) == 0 {
		return s, nil
	}
	// The tags it will get.
	tags, err := im.Tags()
	if err != nil {
		return nil, err
	}
	s.Tag = tags.Immutable
	cur, err := p.Target.TagDigest(ctx, repo.Tag(tags.Immutable))
	if err != nil {
		return nil, err
	}
	// The same version rebuilt gets a revision unless the build comes
	// out identical.
	s.TagTaken = cur != ""
	for _, ft := range tags.Floating {
		from, err := p.Target.TagDigest(ctx, repo.Tag(ft))
		if err != nil {
			return nil, err
		}
		s.Moves = append(s.Moves, TagMove{Tag: ft, From: from})
	}
	return s, nil
}

// packageChanges lists what differs between two package sets:
// "name old → new", "name (new) v", "name (removed)".
func packageChanges(was, now map[string]string) []string {
	var out []string
	for n, v := range now {
		switch old, ok := was[n]; {
		case !ok:
			out = append(out, fmt.Sprintf("%s (new) %s", n, v))
		case old != v:
			out = append(out, fmt.Sprintf("%s %s → %s", n, old, v))
		}
	}
	for n := range was {
		if _, ok := now[n]; !ok {
			out = append(out, n+" (removed)")
		}
	}
	sort.Strings(out)
	return out
}

func summarize(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(list[:n], ", "), len(list)-n)
}

// AssembleSpec turns an assembled image's entry into the builder's spec.
// The spec is a copy: changing it leaves the catalog as it is.
func AssembleSpec(im *Image) assemble.Spec {
	a := im.Build.Assemble
	security := a.Security == nil || *a.Security
	return assemble.Spec{
		Suite: a.Suite, Packages: slices.Clone(a.Packages), Security: security, Mirror: a.Mirror, SecurityMirror: a.SecurityMirror,
		Arch: a.Arch, Config: imageConfig(a.Config), Epoch: epoch(a.Epoch),
	}
}

// WriteText prints the plan for people.
func (p *Plan) WriteText(w io.Writer) error {
	if len(p.Steps) == 0 {
		fmt.Fprintf(w, "Nothing to build: %d images are up to date.\n", len(p.UpToDate))
	} else {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "#\tLEVEL\tIMAGE\tBUILD\tTAG\tWHY")
		for i, s := range p.Steps {
			tag := s.Tag
			if s.TagTaken {
				tag += " (+ -rN revision)"
			}
			fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", i+1, s.Level, s.Name, s.Kind, tag, strings.Join(s.Reasons, "; "))
		}
		tw.Flush()
		fmt.Fprintln(w, "\nFloating tags that will move:")
		for _, s := range p.Steps {
			for _, m := range s.Moves {
				from := "(new)"
				if m.From != "" {
					from = shortOrNone(m.From)
				}
				fmt.Fprintf(w, "  %s:%s  %s → new build\n", s.Repository, m.Tag, from)
			}
		}
		if len(p.UpToDate) > 0 {
			fmt.Fprintf(w, "\nUp to date: %s\n", strings.Join(p.UpToDate, ", "))
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
	return nil
}

// WriteJSON prints the plan as JSON.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if p.Steps == nil {
		p.Steps = []*Step{}
	}
	if p.UpToDate == nil {
		p.UpToDate = []string{}
	}
	return enc.Encode(p)
}

// shortOrNone is a digest as tables show it, or "(none)".
func shortOrNone(d string) string { return cmp.Or(oci.ShortDigest(d), "(none)") }
