package catalog

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"gopkg.in/yaml.v3"
)

// maxDockerfile bounds the Dockerfiles discovery reads.
const maxDockerfile = 1 << 20

// Stage is one stage of a Dockerfile.
type Stage struct {
	Name string `json:"name,omitempty"`
	// From is the FROM argument as written; Base with the ARG defaults
	// expanded. Stage names the earlier stage it builds on, if any.
	From  string `json:"from"`
	Base  string `json:"base"`
	Stage string `json:"stage,omitempty"`
}

// Dockerfile is what discovery learns from one Dockerfile.
type Dockerfile struct {
	// Path is relative to the discovered directory.
	Path   string  `json:"path"`
	Stages []Stage `json:"stages"`
	// Parent is the image the final stage is built on, through any
	// stages it derives from; "" for scratch or an unresolved ARG.
	Parent string `json:"parent,omitempty"`
	// ParentArg is the ARG the parent comes from, when FROM uses one.
	ParentArg string `json:"parent_arg,omitempty"`
	// BuildImages are the other images the build reads: bases of
	// earlier stages, and COPY --from images.
	BuildImages []string `json:"build_images,omitempty"`
	// Unresolved lists FROM lines whose ARGs have no default.
	Unresolved []string `json:"unresolved,omitempty"`
	// Version is the org.opencontainers.image.version label, if set.
	Version string `json:"version,omitempty"`
}

var argRefRE = regexp.MustCompile(`^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$`)

// ParseDockerfile reads a Dockerfile with BuildKit's parser.
func ParseDockerfile(r io.Reader) (*Dockerfile, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDockerfile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxDockerfile {
		return nil, fmt.Errorf("larger than %d bytes", maxDockerfile)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, err
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("no FROM instruction")
	}
	env := map[string]string{}
	var keys []string
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				env[kv.Key] = *kv.Value
			}
			keys = append(keys, kv.Key)
		}
	}
	lex := shell.NewLex(res.EscapeToken)
	getter := mapEnv{env}
	df := &Dockerfile{}
	stageIndex := map[string]int{}
	extra := map[string]bool{}
	for i, st := range stages {
		s := Stage{Name: st.Name, From: st.BaseName}
		pr, err := lex.ProcessWordWithMatches(st.BaseName, getter)
		if err != nil {
			return nil, fmt.Errorf("FROM %s: %w", st.BaseName, err)
		}
		s.Base = pr.Result
		if len(pr.Unmatched) > 0 || s.Base == "" {
			df.Unresolved = append(df.Unresolved, st.BaseName)
		}
		if j, ok := stageIndex[strings.ToLower(s.Base)]; ok {
			s.Stage = stages[j].Name
		}
		if st.Name != "" {
			stageIndex[strings.ToLower(st.Name)] = i
		}
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if c.From == "" {
					continue
				}
				if _, ok := stageIndex[strings.ToLower(c.From)]; ok {
					continue
				}
				if _, err := fmt.Sscan(c.From, new(int)); err == nil {
					continue // COPY --from=0 names a stage by number
				}
				extra[c.From] = true
			case *instructions.LabelCommand:
				for _, kv := range c.Labels {
					if kv.Key == "org.opencontainers.image.version" {
						df.Version = strings.Trim(kv.Value, `"'`)
					}
				}
			}
		}
		df.Stages = append(df.Stages, s)
	}
	// The final stage's external base: follow stage references down.
	last := len(df.Stages) - 1
	for guard := 0; guard <= len(df.Stages); guard++ {
		s := df.Stages[last]
		if s.Stage == "" {
			if !strings.EqualFold(s.Base, "scratch") && !slices.Contains(df.Unresolved, s.From) {
				if _, err := name.ParseReference(s.Base); err != nil {
					return nil, fmt.Errorf("FROM %q: not an image reference: %w", s.Base, err)
				}
				df.Parent = s.Base
				if m := argRefRE.FindStringSubmatch(s.From); m != nil {
					df.ParentArg = m[1]
				}
			}
			break
		}
		last = stageIndex[strings.ToLower(s.Stage)]
	}
	for _, s := range df.Stages {
		if s.Stage == "" && s.Base != df.Parent && s.Base != "" && !strings.EqualFold(s.Base, "scratch") {
			extra[s.Base] = true
		}
	}
	for e := range extra {
		df.BuildImages = append(df.BuildImages, e)
	}
	sort.Strings(df.BuildImages)
	_ = keys
	return df, nil
}

type mapEnv struct{ m map[string]string }

func (e mapEnv) Get(k string) (string, bool) { v, ok := e.m[k]; return v, ok }
func (e mapEnv) Keys() []string {
	keys := make([]string, 0, len(e.m))
	for k := range e.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// isDockerfile says whether a file name is a Dockerfile.
func isDockerfile(n string) bool {
	l := strings.ToLower(n)
	return l == "dockerfile" || l == "containerfile" || strings.HasPrefix(l, "dockerfile.") || strings.HasSuffix(l, ".dockerfile")
}

// Discover finds and reads every Dockerfile under dir. Files it cannot
// read are returned as errors beside the others, so that one bad file
// does not hide the rest.
func Discover(dir string) ([]*Dockerfile, []error) {
	var out []*Dockerfile
	var errs []error
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "vendor", ".venv", "testdata":
				if p != dir {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !d.Type().IsRegular() || !isDockerfile(d.Name()) {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		df, err := ParseDockerfile(f)
		f.Close()
		rel, _ := filepath.Rel(dir, p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rel, err))
			return nil
		}
		df.Path = filepath.ToSlash(rel)
		out = append(out, df)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errs
}

var nonName = regexp.MustCompile(`[^a-z0-9._-]+`)

// imageName makes a catalog name of a Dockerfile's place.
func imageName(df *Dockerfile) string {
	dir, file := filepath.Split(df.Path)
	n := filepath.Base(filepath.Clean(dir))
	if dir == "" {
		n = "root"
	}
	l := strings.ToLower(file)
	switch {
	case strings.HasPrefix(l, "dockerfile.") || strings.HasPrefix(l, "containerfile."):
		n += "-" + l[strings.IndexByte(l, '.')+1:]
	case strings.HasSuffix(l, ".dockerfile"):
		n = strings.TrimSuffix(l, ".dockerfile")
	}
	n = strings.Trim(nonName.ReplaceAllString(strings.ToLower(n), "-"), "-._")
	if n == "" {
		n = "image"
	}
	return n
}

// DiscoveredCatalog writes a first socle.yaml catalog for the
// Dockerfiles: one dockerfile build per file, pushed under repoPrefix.
// A parent whose repository's last element is the name of another
// discovered image becomes a catalog edge; every other parent stays a
// reference. Comments record the stages and what needs a human look.
func DiscoveredCatalog(dfs []*Dockerfile, repoPrefix string) ([]byte, error) {
	names := map[string]bool{}
	byDF := map[*Dockerfile]string{}
	for _, df := range dfs {
		n := imageName(df)
		for i := 2; names[n]; i++ {
			n = fmt.Sprintf("%s-%d", imageName(df), i)
		}
		names[n] = true
		byDF[df] = n
	}
	type dockerfileOut struct {
		Context   string `yaml:"context"`
		File      string `yaml:"file,omitempty"`
		ParentArg string `yaml:"parent_arg,omitempty"`
	}
	type buildOut struct {
		Dockerfile dockerfileOut `yaml:"dockerfile"`
	}
	type imageOut struct {
		Name       string   `yaml:"name"`
		Repository string   `yaml:"repository"`
		Parent     string   `yaml:"parent,omitempty"`
		Version    string   `yaml:"version"`
		Build      buildOut `yaml:"build"`
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode}
	for _, df := range dfs {
		n := byDF[df]
		dir, file := filepath.Split(df.Path)
		if dir == "" {
			dir = "."
		}
		out := imageOut{Name: n, Repository: strings.TrimSuffix(repoPrefix, "/") + "/" + n, Version: df.Version,
			Build: buildOut{Dockerfile: dockerfileOut{Context: filepath.ToSlash(filepath.Clean(dir)), ParentArg: df.ParentArg}}}
		if file != "Dockerfile" {
			out.Build.Dockerfile.File = file
		}
		var notes []string
		if out.Version == "" {
			out.Version = "0.1.0"
			notes = append(notes, "version: no org.opencontainers.image.version label; set the real one")
		}
		if df.Parent != "" {
			out.Parent = df.Parent
			if r, err := name.ParseReference(df.Parent); err == nil {
				repo := r.Context().RepositoryStr()
				last := repo[strings.LastIndexByte(repo, '/')+1:]
				if names[last] && last != n {
					out.Parent = last
					notes = append(notes, "parent: "+df.Parent+" is taken to be the discovered image "+last)
				}
			}
			if df.ParentArg == "" && out.Parent == df.Parent {
				notes = append(notes, "FROM names the parent literally: socle cannot pass it a new parent digest (use ARG BASE_IMAGE, FROM ${BASE_IMAGE})")
			}
		}
		for _, u := range df.Unresolved {
			notes = append(notes, "FROM "+u+": an ARG without a default; set the parent by hand")
		}
		var stages []string
		for _, s := range df.Stages {
			label := s.Base
			if s.Name != "" {
				label = s.Name + "=" + s.Base
			}
			stages = append(stages, label)
		}
		var node yaml.Node
		if err := node.Encode(out); err != nil {
			return nil, err
		}
		comment := "from " + df.Path + "; stages: " + strings.Join(stages, " → ")
		if len(df.BuildImages) > 0 {
			comment += "\nbuild-time images: " + strings.Join(df.BuildImages, ", ")
		}
		for _, nt := range notes {
			comment += "\nTODO " + nt
		}
		node.HeadComment = comment
		seq.Content = append(seq.Content, &node)
	}
	root := &yaml.Node{Kind: yaml.MappingNode, HeadComment: "socle catalog discovered from Dockerfiles; review the TODOs, then run: socle catalog check",
		Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "images"}, seq}}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), enc.Close()
}
