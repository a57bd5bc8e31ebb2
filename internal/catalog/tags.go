package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/oci"
)

// The default naming convention. A base version 12.8 is tagged 12.8 and
// floats 12; a runtime 17.0.9 on it is tagged 17.0.9-debian12.8 and floats
// 17-debian12.8, 17-debian12 and 17.
var (
	defaultBaseImmutable  = "{{.Version}}"
	defaultBaseFloating   = []string{"{{.Major}}"}
	defaultChildImmutable = "{{.Version}}-{{.Parent.Name}}{{.Parent.Version}}"
	defaultChildFloating  = []string{
		"{{.Major}}-{{.Parent.Name}}{{.Parent.Version}}",
		"{{.Major}}-{{.Parent.Name}}{{.Parent.Major}}",
		"{{.Major}}",
	}
)

// TagData is what a tag template sees.
type TagData struct {
	// Name is the last element of the repository (java for my/java).
	Name string
	// Version is the declared version; Major its first dot-separated
	// part, MajorMinor its first two.
	Version, Major, MajorMinor string
	// Parent describes the parent, the same way (for an external parent,
	// Version is its tag).
	Parent *TagData
}

func newTagData(repository, version string) *TagData {
	d := &TagData{Name: repository, Version: version}
	if i := strings.LastIndexByte(repository, '/'); i >= 0 {
		d.Name = repository[i+1:]
	}
	parts := strings.SplitN(version, ".", 3)
	d.Major = parts[0]
	d.MajorMinor = parts[0]
	if len(parts) > 1 {
		d.MajorMinor += "." + parts[1]
	}
	return d
}

type tagTemplates struct {
	immutable *template.Template
	floating  []*template.Template
}

func parseTags(t config.TagTemplates, hasParent bool) (*tagTemplates, error) {
	imm, fl := t.Immutable, t.Floating
	if imm == "" {
		imm = defaultBaseImmutable
		if hasParent {
			imm = defaultChildImmutable
		}
	}
	if fl == nil {
		fl = defaultBaseFloating
		if hasParent {
			fl = defaultChildFloating
		}
	}
	out := &tagTemplates{}
	var err error
	if out.immutable, err = parseTemplate("immutable", imm); err != nil {
		return nil, err
	}
	for i, s := range fl {
		tt, err := parseTemplate(fmt.Sprintf("floating[%d]", i), s)
		if err != nil {
			return nil, err
		}
		out.floating = append(out.floating, tt)
	}
	return out, nil
}

func parseTemplate(field, s string) (*template.Template, error) {
	t, err := template.New(field).Option("missingkey=error").Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", field, err)
	}
	return t, nil
}

func render(t *template.Template, d *TagData) (string, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("%s: %v", t.Name(), err)
	}
	tag := b.String()
	if !oci.ValidTag(tag) {
		return "", fmt.Errorf("%s: %q is not a valid tag (letters, digits, '_', '.', '-'; at most 128)", t.Name(), tag)
	}
	return tag, nil
}

// Tags are the tags of one build of an image.
type Tags struct {
	// Immutable is the version tag, before any revision suffix.
	Immutable string
	// Floating tags move to each new build.
	Floating []string
}

// TagData returns what the templates see for im, whose parent's data is
// parent (nil for a base).
func (im *Image) TagData(parent *TagData) *TagData {
	d := newTagData(im.Repository, im.Version)
	d.Parent = parent
	return d
}

// ParentTagData describes an external parent from its reference.
func ParentTagData(ref string) (*TagData, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	version := ""
	if t, ok := r.(name.Tag); ok {
		version = t.TagStr()
	}
	return newTagData(r.Context().RepositoryStr(), version), nil
}

// RenderTags renders im's tags over d.
func (im *Image) RenderTags(d *TagData) (Tags, error) {
	if d.Parent == nil {
		d.Parent = &TagData{}
	}
	var t Tags
	var err error
	if t.Immutable, err = render(im.tags.immutable, d); err != nil {
		return t, err
	}
	seen := map[string]bool{t.Immutable: true}
	for _, ft := range im.tags.floating {
		tag, err := render(ft, d)
		if err != nil {
			return t, err
		}
		if seen[tag] {
			continue
		}
		seen[tag] = true
		t.Floating = append(t.Floating, tag)
	}
	return t, nil
}

// Tags renders im's tags from the catalog alone: its parent's declared
// version (or an external parent's tag).
func (im *Image) Tags() (Tags, error) {
	return im.RenderTags(im.staticTagData())
}

func (im *Image) staticTagData() *TagData {
	var parent *TagData
	switch {
	case im.ParentImage != nil:
		parent = im.ParentImage.TagData(nil)
	case im.Parent != "":
		parent, _ = ParentTagData(im.Parent)
	}
	return im.TagData(parent)
}

// checkTags renders the templates once, so that a template naming a
// field that does not exist, or making an invalid tag, fails at check
// time rather than at build time.
func (im *Image) checkTags() error {
	if im.tags == nil {
		return errors.New("no tag templates")
	}
	_, err := im.Tags()
	return err
}

// RevisionTag returns the immutable tag for revision n: the tag itself
// for 0, tag-rN after.
func RevisionTag(tag string, n int) string {
	if n == 0 {
		return tag
	}
	return fmt.Sprintf("%s-r%d", tag, n)
}
