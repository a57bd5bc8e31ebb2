package policy

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Policy is a compiled Rego module. It must define package socle and a
// set (or partial set) deny of messages: deny contains msg if { ... }.
type Policy struct {
	name  string
	query rego.PreparedEvalQuery
}

//go:embed builtin/*.rego
var builtins embed.FS

// BuiltinPrefix names a built-in policy instead of a file: builtin:nonroot.
const BuiltinPrefix = "builtin:"

// Builtins lists the built-in policies.
func Builtins() []string {
	names, _ := fs.Glob(builtins, "builtin/*.rego")
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, BuiltinPrefix+strings.TrimSuffix(path.Base(n), ".rego"))
	}
	return out
}

// Load compiles the policy in file, or a built-in one (builtin:NAME).
func Load(ctx context.Context, file string) (*Policy, error) {
	if name, ok := strings.CutPrefix(file, BuiltinPrefix); ok {
		src, err := builtins.ReadFile("builtin/" + name + ".rego")
		if err != nil {
			return nil, fmt.Errorf("no built-in policy %q (have %s)", name, strings.Join(Builtins(), ", "))
		}
		return Compile(ctx, file, string(src))
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Compile(ctx, file, string(src))
}

// networkBuiltins are the Rego built-ins that reach the network or the
// process's environment.
var networkBuiltins = map[string]bool{"http.send": true, "net.lookup_ip_addr": true, "opa.runtime": true}

// SandboxCapabilities are OPA's capabilities without the network and
// environment built-ins: the policies socle serve runs cannot make it
// reach the network or read its environment.
func SandboxCapabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	kept := caps.Builtins[:0]
	for _, b := range caps.Builtins {
		if !networkBuiltins[b.Name] {
			kept = append(kept, b)
		}
	}
	caps.Builtins = kept
	return caps
}

// Compile compiles a policy from source; name labels errors. It runs
// sandboxed (SandboxCapabilities).
func Compile(ctx context.Context, name, src string) (*Policy, error) {
	q, err := rego.New(
		rego.Query("data.socle.deny"),
		rego.Module(name, src),
		rego.StrictBuiltinErrors(true),
		rego.Capabilities(SandboxCapabilities()),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", name, err)
	}
	return &Policy{name: name, query: q}, nil
}

// Deny evaluates the policy over input and returns its deny messages,
// sorted. An evaluation error is an error, never a pass.
func (p *Policy) Deny(ctx context.Context, input any) ([]string, error) {
	rs, err := p.query.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", p.name, err)
	}
	var out []string
	for _, r := range rs {
		for _, e := range r.Expressions {
			switch v := e.Value.(type) {
			case []any:
				for _, m := range v {
					out = append(out, fmt.Sprint(m))
				}
			case map[string]any: // deny as an object of messages
				for k := range v {
					out = append(out, k)
				}
			default:
				return nil, fmt.Errorf("policy %s: deny is %T, want a set of messages", p.name, e.Value)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
