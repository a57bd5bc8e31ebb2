package check

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// DockerfileOptions tune the Dockerfile rules.
type DockerfileOptions struct {
	// PinPackages asks apt and apk installs to pin versions; PinBase asks
	// every external base to be pinned by digest.
	PinPackages bool
	PinBase     bool
	// RequireHealthcheck asks the final stage for a HEALTHCHECK.
	RequireHealthcheck bool
}

// maxDockerfile bounds what is read of a Dockerfile.
const maxDockerfile = 4 << 20

// secretName matches the names of variables that hold secrets.
var secretName = regexp.MustCompile(`(?i)(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIAL)`)

// CheckDockerfile parses a Dockerfile with BuildKit's parser and runs
// the Dockerfile rules. It returns the findings, and the inline ignores
// with the line of the instruction each applies to.
func CheckDockerfile(file string, data []byte, opts DockerfileOptions) ([]Finding, []Ignore, error) {
	if len(data) > maxDockerfile {
		return nil, nil, fmt.Errorf("%s: larger than %d bytes", file, maxDockerfile)
	}
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(stages) == 0 {
		return nil, nil, fmt.Errorf("%s: no FROM instruction", file)
	}
	var out []Finding
	seen := map[string]bool{}
	add := func(id string, line int, object, format string, args ...any) {
		if key := fmt.Sprint(id, " ", line); !seen[key] {
			seen[key] = true
			out = append(out, finding(id, file, line, object, format, args...))
		}
	}
	shipped := shippedStages(stages)
	env := map[string]string{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if kv.Value != nil {
				env[kv.Key] = *kv.Value
			}
			if secretName.MatchString(kv.Key) {
				add("df-secret", lineOf(a.Location()), "ARG "+kv.Key, "ARG %s names a secret", kv.Key)
			}
		}
	}
	lex := shell.NewLex(res.EscapeToken)
	names := map[string]bool{}
	for i, st := range stages {
		fromLine := lineOf(st.Location)
		checkBase(st.BaseName, lex, env, names, fromLine, opts.PinBase, add)
		if st.Name != "" {
			names[strings.ToLower(st.Name)] = true
		}
		user, health := "", false
		for _, c := range st.Commands {
			line := lineOf(c.Location())
			switch c := c.(type) {
			case *instructions.UserCommand:
				user = c.User
			case *instructions.HealthCheckCommand:
				health = c.Health != nil && len(c.Health.Test) > 0 && c.Health.Test[0] != "NONE"
			case *instructions.AddCommand:
				for _, src := range c.SourcePaths {
					if !strings.Contains(src, "://") && !isArchive(src) && !strings.HasPrefix(src, "git@") {
						add("df-add", line, "ADD "+src, "ADD %s copies a local file", src)
						break
					}
				}
			case *instructions.EnvCommand:
				for _, kv := range c.Env {
					if secretName.MatchString(kv.Key) && kv.Value != "" {
						add("df-secret", line, "ENV "+kv.Key, "ENV %s holds a secret", kv.Key)
					}
				}
			case *instructions.ArgCommand:
				for _, kv := range c.Args {
					if secretName.MatchString(kv.Key) {
						add("df-secret", line, "ARG "+kv.Key, "ARG %s names a secret", kv.Key)
					}
				}
			case *instructions.RunCommand:
				if shipped[i] { // a builder stage's caches are not in the image
					checkRun(strings.Join(c.CmdLine, " "), line, opts, add)
				}
			}
		}
		if i == len(stages)-1 {
			if u := strings.Split(user, ":")[0]; u == "" || u == "root" || u == "0" {
				add("df-user-root", fromLine, "FROM "+st.BaseName, "the final stage runs as root (USER %s)", cmpOr(user, "not set"))
			}
			if opts.RequireHealthcheck && !health {
				add("df-healthcheck", fromLine, "FROM "+st.BaseName, "the final stage has no HEALTHCHECK")
			}
		}
	}
	return out, dockerfileIgnores(data, res.AST), nil
}

func lineOf(r []parser.Range) int {
	if len(r) == 0 {
		return 0
	}
	return r[0].Start.Line
}

func isArchive(src string) bool {
	for _, s := range []string{".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst"} {
		if strings.HasSuffix(src, s) {
			return true
		}
	}
	return false
}

// checkBase applies the base rules to an external FROM: not a stage,
// not scratch, not an ARG that resolves to nothing.
func checkBase(base string, lex *shell.Lex, env map[string]string, stages map[string]bool, line int, pin bool, add func(string, int, string, string, ...any)) {
	pr, err := lex.ProcessWordWithMatches(base, envGetter(env))
	resolved := base
	if err == nil {
		resolved = pr.Result
	}
	if resolved == "" || err != nil || len(pr.Unmatched) > 0 || strings.EqualFold(resolved, "scratch") || stages[strings.ToLower(resolved)] {
		return
	}
	ref, digest, _ := strings.Cut(resolved, "@")
	if digest == "" && pin {
		add("df-base-pinned", line, "FROM "+base, "the base %s is not pinned by digest", resolved)
	}
	last := ref[strings.LastIndex(ref, "/")+1:]
	if _, tag, ok := strings.Cut(last, ":"); (!ok && digest == "") || tag == "latest" {
		add("df-base-latest", line, "FROM "+base, "the base %s uses latest", resolved)
	}
}

type envGetter map[string]string

func (e envGetter) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envGetter) Keys() []string {
	out := make([]string, 0, len(e))
	for k := range e {
		out = append(out, k)
	}
	return out
}

// checkRun applies the package manager rules to one RUN.
func checkRun(cmd string, line int, opts DockerfileOptions, add func(string, int, string, string, ...any)) {
	for _, part := range splitCommands(cmd) {
		words := strings.Fields(part)
		switch {
		case hasSeq(words, "apt-get", "install") || hasSeq(words, "apt", "install"):
			if !strings.Contains(cmd, "--no-install-recommends") && !strings.Contains(cmd, "Install-Recommends=false") {
				add("df-apt-recommends", line, "RUN", "apt install without --no-install-recommends")
			}
			if !strings.Contains(cmd, "/var/lib/apt/lists") && !strings.Contains(cmd, "dist-clean") {
				add("df-apt-lists", line, "RUN", "apt install leaves /var/lib/apt/lists in the layer")
			}
			if opts.PinPackages {
				if p := unpinned(words, "install", "="); p != "" {
					add("df-apt-pin", line, "RUN", "apt install %s without a version", p)
				}
			}
		case hasSeq(words, "apk", "add"):
			if !strings.Contains(part, "--no-cache") && !strings.Contains(part, "--no-network") {
				add("df-apk-cache", line, "RUN", "apk add without --no-cache")
			}
			if opts.PinPackages {
				if p := unpinned(words, "add", "="); p != "" {
					add("df-apk-pin", line, "RUN", "apk add %s without a version", p)
				}
			}
		}
	}
}

// splitCommands splits a shell command line at &&, || and ;.
func splitCommands(cmd string) []string {
	f := func(r rune) bool { return r == ';' || r == '&' || r == '|' || r == '\n' }
	return strings.FieldsFunc(cmd, f)
}

func hasSeq(words []string, a, b string) bool {
	for i := 0; i+1 < len(words); i++ {
		if words[i] == a {
			for _, w := range words[i+1:] {
				if strings.HasPrefix(w, "-") {
					continue
				}
				return w == b
			}
		}
	}
	return false
}

// unpinned returns the first package after verb that has no sep.
func unpinned(words []string, verb, sep string) string {
	after := false
	for _, w := range words {
		if !after {
			after = w == verb
			continue
		}
		if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "$") || w == "\\" {
			continue
		}
		if !strings.Contains(w, sep) {
			return w
		}
	}
	return ""
}

// dockerfileIgnores reads the ignore comments of a Dockerfile; a
// "socle:ignore" applies to the instruction on its line or the next one.
func dockerfileIgnores(data []byte, ast *parser.Node) []Ignore {
	var starts []int
	for _, n := range ast.Children {
		starts = append(starts, n.StartLine)
	}
	var out []Ignore
	for i, l := range strings.Split(string(data), "\n") {
		ig, ok := parseIgnore(l)
		if !ok || !strings.HasPrefix(strings.TrimSpace(l), "#") {
			continue
		}
		ig.Line = i + 1
		if !ig.File {
			for _, s := range starts {
				if s > ig.Line {
					ig.Line = s
					break
				}
			}
		}
		out = append(out, ig)
	}
	return out
}

// shippedStages marks the stages whose layers are in the image: the
// final stage and the stages it is built FROM, transitively.
func shippedStages(stages []instructions.Stage) map[int]bool {
	byName := map[string]int{}
	for i, st := range stages {
		if st.Name != "" {
			byName[strings.ToLower(st.Name)] = i
		}
	}
	out := map[int]bool{}
	for i := len(stages) - 1; i >= 0 && !out[i]; {
		out[i] = true
		j, ok := byName[strings.ToLower(stages[i].BaseName)]
		if !ok || j >= i {
			break
		}
		i = j
	}
	return out
}
