package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"gopkg.in/yaml.v3"

	"github.com/socle-dev/socle/internal/policy"
)

// Policies are user policies in Rego, run as conftest runs them: in each
// chosen package (main by default), the rules named deny, violation and
// warn (or deny_NAME, ...) produce failures and warnings; exception
// rules name the rules they exempt.
type Policies struct {
	compiler *ast.Compiler
	modules  map[string]*ast.Module
	store    storage.Store
	// Namespaces are the packages evaluated.
	Namespaces []string
}

var (
	failureRule = regexp.MustCompile(`^(deny|violation)(_[a-zA-Z0-9]+)*$`)
	warningRule = regexp.MustCompile(`^warn(_[a-zA-Z0-9]+)*$`)
)

// LoadPolicies compiles the .rego files under policyPaths and loads the
// JSON and YAML documents under dataPaths as data. namespaces are the
// packages to evaluate (main when empty); all evaluates every package.
func LoadPolicies(policyPaths, dataPaths, namespaces []string, all bool) (*Policies, error) {
	return loadPolicies(policyPaths, dataPaths, namespaces, all, nil)
}

// LoadSandboxedPolicies is LoadPolicies for policies socle serve runs
// (promotion gates): a policy that calls http.send, net.lookup_ip_addr or
// opa.runtime does not compile, so a gate cannot make the server reach
// the network or read its environment.
func LoadSandboxedPolicies(policyPaths []string) (*Policies, error) {
	return loadPolicies(policyPaths, nil, nil, false, policy.SandboxCapabilities())
}

func loadPolicies(policyPaths, dataPaths, namespaces []string, all bool, caps *ast.Capabilities) (*Policies, error) {
	l := loader.NewFileLoader().WithRegoVersion(ast.RegoV1)
	res, err := l.Filtered(policyPaths, func(_ string, info os.FileInfo, _ int) bool {
		return !info.IsDir() && !strings.HasSuffix(info.Name(), ".rego")
	})
	if err != nil {
		return nil, fmt.Errorf("loading policies: %w", err)
	}
	if len(res.Modules) == 0 {
		return nil, fmt.Errorf("no policies found in %s", strings.Join(policyPaths, ", "))
	}
	modules := res.ParsedModules()
	compiler := ast.NewCompiler().WithEnablePrintStatements(false)
	if caps != nil {
		compiler = compiler.WithCapabilities(caps)
	}
	compiler.Compile(modules)
	if compiler.Failed() {
		return nil, fmt.Errorf("compiling policies: %w", compiler.Errors)
	}
	p := &Policies{compiler: compiler, modules: modules}
	docs, err := loader.NewFileLoader().Filtered(dataPaths, func(_ string, info os.FileInfo, _ int) bool {
		if info.IsDir() {
			return false
		}
		switch filepath.Ext(info.Name()) {
		case ".yaml", ".yml", ".json":
			return false
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("loading data: %w", err)
	}
	if p.store, err = docs.Store(); err != nil {
		return nil, fmt.Errorf("loading data: %w", err)
	}
	var packages []string
	seen := map[string]bool{}
	for _, m := range modules {
		ns := strings.TrimPrefix(m.Package.Path.String(), "data.")
		if !seen[ns] {
			seen[ns] = true
			packages = append(packages, ns)
		}
	}
	sort.Strings(packages)
	switch {
	case all:
		p.Namespaces = packages
	case len(namespaces) > 0:
		// A namespace with * matches packages as a glob, as conftest's.
		for _, want := range namespaces {
			if !strings.Contains(want, "*") {
				p.Namespaces = append(p.Namespaces, want)
				continue
			}
			for _, ns := range packages {
				if ok, _ := path.Match(want, ns); ok && !slices.Contains(p.Namespaces, ns) {
					p.Namespaces = append(p.Namespaces, ns)
				}
			}
		}
	default:
		p.Namespaces = []string{"main"}
	}
	return p, nil
}

// PolicyResult is conftest's result shape for one file and namespace.
type PolicyResult struct {
	Filename   string          `json:"filename"`
	Namespace  string          `json:"namespace"`
	Successes  int             `json:"successes"`
	Warnings   []PolicyMessage `json:"warnings,omitempty"`
	Failures   []PolicyMessage `json:"failures,omitempty"`
	Exceptions []PolicyMessage `json:"exceptions,omitempty"`
}

// PolicyMessage is one message of a rule, with the rest of the object it
// returned as metadata.
type PolicyMessage struct {
	Msg      string         `json:"msg"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

// ParseInput reads a file as conftest does by default: a Dockerfile as
// its list of instructions ({Cmd, SubCmd, JSON, Flags, Value, Stage},
// comments as Cmd "comment"), JSON as is, YAML as its document or, when
// it has several, the list of them (each checked on its own).
func ParseInput(name string, data []byte) (any, error) {
	switch {
	case IsDockerfile(name):
		return dockerfileInput(data)
	case strings.EqualFold(filepath.Ext(name), ".json"):
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return v, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for n := 0; n < maxDocuments; n++ {
		var node yaml.Node
		err := dec.Decode(&node)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		v, err := nodeValue(&node, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", name, node.Line, err)
		}
		docs = append(docs, v)
	}
	switch len(docs) {
	case 0:
		return nil, nil
	case 1:
		return docs[0], nil
	}
	return multiDoc(docs), nil
}

// multiDoc marks the documents of one file, checked one by one.
type multiDoc []any

// dockerInstruction is conftest's shape of a Dockerfile instruction.
type dockerInstruction struct {
	Cmd    string
	SubCmd string
	JSON   bool
	Flags  []string
	Value  []string
	Stage  int
}

func dockerfileInput(data []byte) (any, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("parsing Dockerfile: %w", err)
	}
	var out []dockerInstruction
	stage := -1
	for _, child := range res.AST.Children {
		ins, err := instructions.ParseInstruction(child)
		if err != nil {
			return nil, fmt.Errorf("Dockerfile line %d: %w", child.StartLine, err)
		}
		if _, ok := ins.(*instructions.Stage); ok {
			stage++
		}
		cur := max(stage, 0)
		for _, c := range child.PrevComment {
			out = append(out, dockerInstruction{Cmd: "comment", Stage: cur, Value: []string{c}, Flags: nil})
		}
		d := dockerInstruction{Cmd: strings.ToLower(child.Value), Flags: child.Flags, Stage: cur}
		n := child
		if n.Next != nil && len(n.Next.Children) > 0 {
			d.SubCmd = n.Next.Children[0].Value
			n = n.Next.Children[0]
		}
		d.JSON = n.Attributes["json"]
		for x := n.Next; x != nil; x = x.Next {
			d.Value = append(d.Value, x.Value)
		}
		out = append(out, d)
	}
	// Through JSON, as the policies see it (nil lists become null).
	b, _ := json.Marshal(out)
	var v any
	err = json.Unmarshal(b, &v)
	return v, err
}

// Evaluate runs the policies on one parsed input.
func (p *Policies) Evaluate(ctx context.Context, filename string, input any) ([]PolicyResult, error) {
	var out []PolicyResult
	for _, ns := range p.Namespaces {
		res := PolicyResult{Filename: filename, Namespace: ns}
		docs := []any{input}
		if m, ok := input.(multiDoc); ok {
			docs = m
		}
		for _, doc := range docs {
			one, err := p.evaluateOne(ctx, filename, ns, doc)
			if err != nil {
				return nil, err
			}
			res.Successes += one.Successes
			res.Failures = append(res.Failures, one.Failures...)
			res.Warnings = append(res.Warnings, one.Warnings...)
			res.Exceptions = append(res.Exceptions, one.Exceptions...)
		}
		out = append(out, res)
	}
	return out, nil
}

// ruleName is a rule's name, from its head.
func ruleName(r *ast.Rule) string {
	if r.Head.Name != "" {
		return r.Head.Name.String()
	}
	if ref := r.Head.Ref(); len(ref) > 0 {
		if s, ok := ref[0].Value.(ast.Var); ok {
			return string(s)
		}
	}
	return ""
}

func (p *Policies) evaluateOne(ctx context.Context, filename, ns string, doc any) (PolicyResult, error) {
	var names []string
	count := 0
	for _, m := range p.modules {
		if strings.TrimPrefix(m.Package.Path.String(), "data.") != ns {
			continue
		}
		for _, r := range m.Rules {
			n := ruleName(r)
			if !failureRule.MatchString(n) && !warningRule.MatchString(n) {
				continue
			}
			count++
			if !containsFold(names, n) {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	input, err := ast.InterfaceToValue(doc)
	if err != nil {
		return PolicyResult{}, fmt.Errorf("%s: %w", filename, err)
	}
	if err := p.setFile(ctx, filename); err != nil {
		return PolicyResult{}, err
	}
	var res PolicyResult
	successes := 0
	for _, n := range names {
		excQuery := fmt.Sprintf("data.%s.exception[_][_] == %q", ns, exemptName(n))
		exc, err := p.query(ctx, input, excQuery)
		if err != nil {
			return res, err
		}
		var exceptions []PolicyMessage
		for _, e := range exc {
			if e == nil {
				exceptions = append(exceptions, PolicyMessage{Msg: excQuery})
			}
		}
		msgs, err := p.query(ctx, input, "data."+ns+"."+n)
		if err != nil {
			return res, err
		}
		if len(exceptions) == 0 {
			for _, m := range msgs {
				switch {
				case m == nil:
					successes++
				case failureRule.MatchString(n):
					res.Failures = append(res.Failures, *m)
				default:
					res.Warnings = append(res.Warnings, *m)
				}
			}
		}
		res.Exceptions = append(res.Exceptions, exceptions...)
	}
	// A rule that produced nothing is one success each, however many
	// bodies it has.
	if got := len(res.Failures) + len(res.Warnings) + len(res.Exceptions) + successes; got < count {
		successes += count - got
	}
	res.Successes = successes
	return res, nil
}

// exemptName is the name an exception uses for a rule: without its
// deny_, violation_ or warn_ prefix, empty for the bare rules.
func exemptName(rule string) string {
	switch rule {
	case "deny", "violation", "warn":
		return ""
	}
	for _, p := range []string{"violation_", "deny_", "warn_"} {
		rule = strings.TrimPrefix(rule, p)
	}
	return rule
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// setFile makes data.conftest.file the file being checked.
func (p *Policies) setFile(ctx context.Context, filename string) error {
	abs, err := filepath.Abs(filename)
	if err != nil {
		abs = filename
	}
	tx, err := p.store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return err
	}
	if err := storage.MakeDir(ctx, p.store, tx, storage.Path{"conftest"}); err != nil {
		p.store.Abort(ctx, tx)
		return err
	}
	if err := p.store.Write(ctx, tx, storage.AddOp, storage.Path{"conftest", "file"},
		map[string]any{"name": filepath.Base(abs), "dir": filepath.Dir(abs)}); err != nil {
		p.store.Abort(ctx, tx)
		return err
	}
	return p.store.Commit(ctx, tx)
}

// query evaluates one query; each result is a message, or nil for an
// expression that produced no message (a pass).
func (p *Policies) query(ctx context.Context, input ast.Value, q string) ([]*PolicyMessage, error) {
	rs, err := rego.New(rego.Query(q), rego.Compiler(p.compiler), rego.Store(p.store), rego.ParsedInput(input)).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", q, err)
	}
	var out []*PolicyMessage
	for _, r := range rs {
		for _, e := range r.Expressions {
			values, _ := e.Value.([]any)
			if len(values) == 0 {
				out = append(out, nil)
				continue
			}
			for _, v := range values {
				switch val := v.(type) {
				case string:
					out = append(out, &PolicyMessage{Msg: val, Metadata: map[string]any{"query": q}})
				case map[string]any:
					msg, ok := val["msg"].(string)
					if !ok {
						return nil, fmt.Errorf("%s: a result without a string msg", q)
					}
					m := &PolicyMessage{Msg: msg, Metadata: map[string]any{"query": q}}
					for k, x := range val {
						if k != "msg" && k != "_loc" {
							m.Metadata[k] = x
						}
					}
					out = append(out, m)
				}
			}
		}
	}
	return out, nil
}

// RunPolicies parses each input as conftest does and evaluates the
// policies on it, in file then namespace order.
func (p *Policies) RunPolicies(ctx context.Context, inputs []Input) ([]PolicyResult, error) {
	var out []PolicyResult
	for _, in := range inputs {
		data, err := in.Load()
		if err != nil {
			return nil, err
		}
		doc, err := ParseInput(in.Name, data)
		if err != nil {
			return nil, err
		}
		name := in.Name
		if name == "-" {
			name = ""
		}
		rs, err := p.Evaluate(ctx, name, doc)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Filename != out[j].Filename {
			return out[i].Filename < out[j].Filename
		}
		return out[i].Namespace < out[j].Namespace
	})
	return out, nil
}

// PolicyFailures counts the failures of results.
func PolicyFailures(rs []PolicyResult) (failures, warnings int) {
	for _, r := range rs {
		failures += len(r.Failures)
		warnings += len(r.Warnings)
	}
	return failures, warnings
}

// WritePolicyResults renders policy results: conftest's JSON shape, or a
// table of FAIL and WARN lines.
func WritePolicyResults(w io.Writer, format string, rs []PolicyResult) error {
	if format == "json" {
		if rs == nil {
			rs = []PolicyResult{}
		}
		b, err := json.MarshalIndent(rs, "", "\t")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	if format != "table" {
		return fmt.Errorf("with --policy, the output is table or json (conftest's shape), not %q", format)
	}
	tests, fails, warns, excs := 0, 0, 0, 0
	for _, r := range rs {
		name := r.Filename
		if name == "" {
			name = "-"
		}
		for _, m := range r.Warnings {
			fmt.Fprintf(w, "WARN - %s - %s - %s\n", name, r.Namespace, m.Msg)
		}
		for _, m := range r.Failures {
			fmt.Fprintf(w, "FAIL - %s - %s - %s\n", name, r.Namespace, m.Msg)
		}
		for _, m := range r.Exceptions {
			fmt.Fprintf(w, "EXCEPTION - %s - %s - %s\n", name, r.Namespace, m.Msg)
		}
		tests += r.Successes + len(r.Failures) + len(r.Warnings) + len(r.Exceptions)
		fails += len(r.Failures)
		warns += len(r.Warnings)
		excs += len(r.Exceptions)
	}
	_, err := fmt.Fprintf(w, "\n%d tests, %d passed, %d warnings, %d failures, %d exceptions\n", tests, tests-fails-warns-excs, warns, fails, excs)
	return err
}

// nodeValue converts a YAML node as conftest's parser reads it: a key
// given twice keeps its last value (yaml.v3's own decoding refuses it),
// aliases and merge keys resolved.
func nodeValue(n *yaml.Node, depth int) (any, error) {
	if depth > 128 {
		return nil, errors.New("nested too deep")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return nodeValue(n.Content[0], depth+1)
	case yaml.AliasNode:
		return nodeValue(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := nodeValue(c, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, vn := n.Content[i], n.Content[i+1]
			v, err := nodeValue(vn, depth+1)
			if err != nil {
				return nil, err
			}
			if k.Tag == "!!merge" {
				merge := []any{v}
				if list, ok := v.([]any); ok {
					merge = list
				}
				for _, m := range merge {
					if mm, ok := m.(map[string]any); ok {
						for mk, mv := range mm {
							if _, set := out[mk]; !set {
								out[mk] = mv
							}
						}
					}
				}
				continue
			}
			key, err := nodeValue(k, depth+1)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(key)] = v
		}
		return out, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}
