package check

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Options configure a check run.
type Options struct {
	// Rules are the rules run (RulesOf); nil runs every rule.
	Rules map[string]bool
	// Ignore are rules ignored everywhere, with the reason.
	Ignore     map[string]string
	Schema     SchemaOptions
	Workload   WorkloadOptions
	Dockerfile DockerfileOptions
	// Stdin is read for the path "-".
	Stdin io.Reader
}

// maxManifest bounds one manifest file.
const maxManifest = 64 << 20

// Input is one file to check: its bytes (standard input, tests), or a
// path read when it is checked, so that a run holds one file at a time.
type Input struct {
	Name string
	Data []byte
	Path string
}

// Load returns the input's bytes.
func (in Input) Load() ([]byte, error) {
	if in.Path == "" {
		return in.Data, nil
	}
	f, err := os.Open(in.Path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Name, err)
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("%s: larger than %d bytes", in.Name, maxManifest)
	}
	return b, nil
}

// IsDockerfile tells a Dockerfile by its name.
func IsDockerfile(name string) bool {
	b := strings.ToLower(filepath.Base(name))
	return b == "dockerfile" || b == "containerfile" || strings.HasPrefix(b, "dockerfile.") || strings.HasSuffix(b, ".dockerfile")
}

func isManifest(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// Collect reads the paths: files, directories (their Dockerfiles and
// YAML/JSON files) and "-" (standard input, a YAML stream).
func Collect(paths []string, stdin io.Reader) ([]Input, error) {
	var out []Input
	read := func(name string, r io.Reader) error {
		b, err := io.ReadAll(io.LimitReader(r, maxManifest+1))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(b) > maxManifest {
			return fmt.Errorf("%s: larger than %d bytes", name, maxManifest)
		}
		out = append(out, Input{Name: name, Data: b})
		return nil
	}
	for _, p := range paths {
		if p == "-" {
			if stdin == nil {
				stdin = os.Stdin
			}
			if err := read("-", stdin); err != nil {
				return nil, err
			}
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, Input{Name: p, Path: p})
			continue
		}
		err = filepath.WalkDir(p, func(fp string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if fp != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || !(IsDockerfile(fp) || isManifest(fp)) {
				return nil
			}
			out = append(out, Input{Name: fp, Path: fp})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Run checks the inputs: Dockerfiles with the Dockerfile rules,
// manifests with the schema and workload rules (CRDs among them, and in
// opts.Schema.CRDs, give custom resources their schema).
func Run(ctx context.Context, inputs []Input, opts Options) (*Report, error) {
	r := &Report{Checked: map[string]int{}}
	sup := Suppressor{Rules: opts.Ignore}
	crds := opts.Schema.CRDs
	if crds == nil {
		crds = NewCRDs()
	}
	// First the CRDs, so that custom resources anywhere have a schema;
	// then each file, one at a time.
	for _, in := range inputs {
		if IsDockerfile(in.Name) {
			continue
		}
		data, err := in.Load()
		if err != nil {
			return nil, err
		}
		if !bytes.Contains(data, []byte("CustomResourceDefinition")) {
			continue
		}
		objs, _ := ParseManifests(in.Name, data)
		for _, o := range objs {
			if _, err := crds.Add(o); err != nil {
				return nil, err
			}
		}
	}
	schema := opts.Schema
	schema.CRDs = crds
	for _, in := range inputs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := in.Load()
		if err != nil {
			return nil, err
		}
		if IsDockerfile(in.Name) {
			fs, ignores, err := CheckDockerfile(in.Name, data, opts.Dockerfile)
			if err != nil {
				r.add(finding("schema-parse", in.Name, 0, in.Name, "%v", err))
				continue
			}
			r.count("dockerfile")
			sup.apply(r, opts.enabled(fs), ignores, func(ig Ignore, f Finding) bool { return ig.Line == f.Line })
			continue
		}
		objs, perr := ParseManifests(in.Name, data)
		for _, o := range objs {
			r.count("object")
			var fs []Finding
			if o.Kind == "CustomResourceDefinition" && strings.HasPrefix(o.APIVersion, "apiextensions.k8s.io/") {
				// read for its schema above; its own schema is not client-go's
			} else {
				fs = append(fs, ValidateSchema(o, schema)...)
			}
			fs = append(fs, CheckWorkload(o, opts.Workload)...)
			sup.apply(r, opts.enabled(fs), o.Ignores, nil)
		}
		if perr != nil {
			r.add(finding("schema-parse", in.Name, 0, in.Name, "%v", perr))
		}
	}
	r.Sort()
	return r, nil
}

func (o Options) enabled(fs []Finding) []Finding {
	if o.Rules == nil {
		return fs
	}
	var out []Finding
	for _, f := range fs {
		if o.Rules[f.Rule] {
			out = append(out, f)
		}
	}
	return out
}

// AddImage adds an image's findings to the report, through the run's
// rule sets and ignores, and keeps its layer report.
func (r *Report) AddImage(ref string, res *ImageResult, opts Options) {
	r.count("image")
	Suppressor{Rules: opts.Ignore}.apply(r, opts.enabled(res.Findings), nil, nil)
	if r.Images == nil {
		r.Images = map[string]LayerReport{}
	}
	r.Images[ref] = res.Layers
	r.Sort()
}
