package catalog

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/mutate"
)

// Kinds of build.
const (
	KindAssemble   = "assemble"
	KindAppend     = "append"
	KindDockerfile = "dockerfile"
)

// Image is a validated catalog entry.
type Image struct {
	config.Image
	// Index is the entry's place in socle.yaml.
	Index int
	// Kind is the builder: assemble, append or dockerfile.
	Kind string
	// ParentImage is the catalog parent, nil for a base or an external
	// parent (then Parent is a reference).
	ParentImage *Image
	// Children are the catalog images built on this one, by name.
	Children []*Image
	// Depth is 0 for images without a catalog parent.
	Depth int
	tags  *tagTemplates
}

// External reports whether the parent is an image socle does not build.
func (im *Image) External() bool { return im.ParentImage == nil && im.Parent != "" }

// RebaseSafe reports whether remediation may rebase the image's own
// layers onto a new parent: append-layer images always, others when
// the catalog says so.
func (im *Image) RebaseSafe() bool { return im.Kind == KindAppend || im.Rebase == "safe" }

// Catalog is the validated graph of images.
type Catalog struct {
	// Images in file order.
	Images []*Image
	// Dir is the directory of socle.yaml; relative paths start there.
	Dir    string
	byName map[string]*Image
}

// Get returns the image named name.
func (c *Catalog) Get(name string) (*Image, bool) {
	im, ok := c.byName[name]
	return im, ok
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// New validates the catalog of f. Every problem is reported, each with
// its line and field.
func New(f *config.File) (*Catalog, error) {
	c := &Catalog{Dir: filepath.Dir(f.Path()), byName: map[string]*Image{}}
	var errs config.Errors
	add := func(e *config.Error) { errs = append(errs, e) }
	for i, ci := range f.Images {
		field := func(s string) string { return fmt.Sprintf("images[%d].%s", i, s) }
		im := &Image{Image: ci, Index: i}
		switch {
		case ci.Name == "":
			add(f.Errorf(field("name"), "every image needs a name"))
		case !nameRE.MatchString(ci.Name):
			add(f.Errorf(field("name"), "%q: use lower-case letters, digits, '.', '_' and '-'", ci.Name))
		case c.byName[ci.Name] != nil:
			add(f.Errorf(field("name"), "%q is declared twice (first at images[%d])", ci.Name, c.byName[ci.Name].Index))
		}
		if ci.Repository == "" {
			add(f.Errorf(field("repository"), "every image needs a repository"))
		} else if _, err := name.NewRepository(ci.Repository); err != nil {
			add(f.Errorf(field("repository"), "%q is not a repository name: %v", ci.Repository, err))
		}
		if ci.Version == "" {
			add(f.Errorf(field("version"), "every image needs a version: the tags are made from it"))
		} else if !versionRE.MatchString(ci.Version) {
			add(f.Errorf(field("version"), "%q: a version is letters, digits, '.', '_' and '-', starting with a letter or digit", ci.Version))
		}
		if ci.Rebase != "" && ci.Rebase != "safe" {
			add(f.Errorf(field("rebase"), "%q: the only value is \"safe\"", ci.Rebase))
		}
		kinds := 0
		if b := ci.Build.Assemble; b != nil {
			kinds++
			im.Kind = KindAssemble
			if ci.Parent != "" {
				add(f.Errorf(field("parent"), "an assembled image is a base: it has no parent"))
			}
			if b.Suite == "" {
				add(f.Errorf(field("build.assemble.suite"), "name the Debian suite (bookworm)"))
			}
			if len(b.Packages) == 0 {
				add(f.Errorf(field("build.assemble.packages"), "list the packages to install"))
			}
			for j, p := range b.Packages {
				if !debNameRE.MatchString(p) {
					add(f.Errorf(fmt.Sprintf("images[%d].build.assemble.packages[%d]", i, j), "%q is not a Debian package name (NAME or NAME=VERSION)", p))
				}
			}
		}
		if b := ci.Build.Append; b != nil {
			kinds++
			im.Kind = KindAppend
			if len(b.Layers) == 0 {
				add(f.Errorf(field("build.append.layers"), "list at least one layer (from, to)"))
			}
			for j, l := range b.Layers {
				lf := fmt.Sprintf("images[%d].build.append.layers[%d]", i, j)
				if l.From == "" {
					add(f.Errorf(lf+".from", "name a local file or directory"))
				}
				if !strings.HasPrefix(l.To, "/") {
					add(f.Errorf(lf+".to", "%q: give an absolute path in the image", l.To))
				}
				if l.UID < 0 || l.GID < 0 {
					add(f.Errorf(lf, "uid and gid cannot be negative"))
				}
			}
		}
		if b := ci.Build.Dockerfile; b != nil {
			kinds++
			im.Kind = KindDockerfile
			if b.Context == "" {
				add(f.Errorf(field("build.dockerfile.context"), "name the build context directory"))
			}
			switch b.Builder {
			case "", mutate.ToolBuildah, mutate.ToolBuildctl, mutate.ToolDocker:
			default:
				add(f.Errorf(field("build.dockerfile.builder"), "%q: want buildah, buildctl or docker", b.Builder))
			}
			if len(b.Platforms) > 1 {
				add(f.Errorf(field("build.dockerfile.platforms"), "socle builds one platform per image (%d given): make one catalog image per platform", len(b.Platforms)))
			}
		}
		switch {
		case kinds == 0:
			add(f.Errorf(field("build"), "say how the image is built: assemble, append or dockerfile"))
		case kinds > 1:
			add(f.Errorf(field("build"), "give exactly one of assemble, append and dockerfile"))
		}
		if im.Kind == KindAppend && ci.Parent == "" {
			add(f.Errorf(field("parent"), "an append-layer image needs a parent"))
		}
		tt, err := parseTags(ci.Tags, ci.Parent != "")
		if err != nil {
			add(f.Errorf(field("tags"), "%v", err))
		}
		im.tags = tt
		c.Images = append(c.Images, im)
		if ci.Name != "" && c.byName[ci.Name] == nil {
			c.byName[ci.Name] = im
		}
	}
	// Parents: a catalog name, or a reference to an image outside it.
	for _, im := range c.Images {
		if im.Parent == "" {
			continue
		}
		field := fmt.Sprintf("images[%d].parent", im.Index)
		if p, ok := c.byName[im.Parent]; ok {
			if p == im {
				add(f.Errorf(field, "%q is its own parent", im.Name))
				continue
			}
			im.ParentImage = p
			p.Children = append(p.Children, im)
			continue
		}
		if !strings.ContainsAny(im.Parent, "/:@") {
			add(f.Errorf(field, "%q is not an image in the catalog, nor a reference (registry/repository:tag)", im.Parent))
			continue
		}
		if _, err := name.ParseReference(im.Parent); err != nil {
			add(f.Errorf(field, "%q is not in the catalog and is not a valid reference: %v", im.Parent, err))
		}
	}
	for _, cyc := range findCycles(c.Images) {
		add(f.Errorf(fmt.Sprintf("images[%d].parent", cyc[0].Index), "cycle: %s", cycleString(cyc)))
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(a, b int) bool { return errs[a].Line < errs[b].Line })
		return nil, errs
	}
	for _, im := range c.Images {
		im.Depth = depth(im)
	}
	for _, im := range c.Images {
		sort.Slice(im.Children, func(a, b int) bool { return im.Children[a].Index < im.Children[b].Index })
		if err := im.checkTags(); err != nil {
			errs = append(errs, f.Errorf(fmt.Sprintf("images[%d].tags", im.Index), "%v", err))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

var (
	versionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$`)
	// A Debian package name, with an optional :arch and =version pin.
	debNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[0-9][A-Za-z0-9.+~:-]*)?$`)
)

func depth(im *Image) int {
	d := 0
	for p := im.ParentImage; p != nil; p = p.ParentImage {
		d++
	}
	return d
}

// findCycles returns each cycle of the parent graph once.
func findCycles(images []*Image) [][]*Image {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[*Image]int{}
	var out [][]*Image
	for _, start := range images {
		if state[start] != unseen {
			continue
		}
		var path []*Image
		for im := start; im != nil; im = im.ParentImage {
			if state[im] == done {
				break
			}
			if state[im] == onPath {
				for i, p := range path {
					if p == im {
						out = append(out, append([]*Image(nil), path[i:]...))
						break
					}
				}
				break
			}
			state[im] = onPath
			path = append(path, im)
		}
		for _, p := range path {
			state[p] = done
		}
	}
	// A cycle leaves ParentImage pointers that never end; cut them so
	// that nothing walks forever (the catalog is rejected anyway).
	for _, cyc := range out {
		cyc[len(cyc)-1].ParentImage = nil
	}
	return out
}

func cycleString(cyc []*Image) string {
	var names []string
	for _, im := range cyc {
		names = append(names, im.Name)
	}
	return strings.Join(append(names, cyc[0].Name), " → ") + " (each is the parent of the one before)"
}

// Ancestors returns the catalog parents of im, nearest first.
func (im *Image) Ancestors() []*Image {
	var out []*Image
	for p := im.ParentImage; p != nil; p = p.ParentImage {
		out = append(out, p)
	}
	return out
}

// Levels groups images so that every parent is in an earlier level than
// its children; images of one level can be built at the same time.
func Levels(images []*Image) [][]*Image {
	in := map[*Image]bool{}
	for _, im := range images {
		in[im] = true
	}
	level := map[*Image]int{}
	var get func(*Image) int
	get = func(im *Image) int {
		if l, ok := level[im]; ok {
			return l
		}
		l := 0
		for p := im.ParentImage; p != nil; p = p.ParentImage {
			if in[p] {
				l = get(p) + 1
				break
			}
		}
		level[im] = l
		return l
	}
	var out [][]*Image
	for _, im := range images {
		l := get(im)
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], im)
	}
	for _, lv := range out {
		sort.SliceStable(lv, func(a, b int) bool { return lv[a].Index < lv[b].Index })
	}
	return out
}

// Descendants returns the images built, directly or not, on im.
func (im *Image) Descendants() []*Image {
	var out []*Image
	var walk func(*Image)
	walk = func(p *Image) {
		for _, c := range p.Children {
			out = append(out, c)
			walk(c)
		}
	}
	walk(im)
	return out
}

// Assembles reports whether any image of the catalog is assembled from
// Debian packages.
func (c *Catalog) Assembles() bool {
	for _, im := range c.Images {
		if im.Kind == KindAssemble {
			return true
		}
	}
	return false
}
