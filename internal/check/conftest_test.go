package check_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/testenv"
)

// conftestCases are the conftest examples whose inputs are YAML, JSON or
// Dockerfiles, with the flags conftest's own acceptance tests give them.
var conftestCases = []struct {
	policy     string
	inputs     []string
	namespaces []string
	all        bool
	data       []string
}{
	{policy: "kubernetes/policy", inputs: []string{"kubernetes/deployment.yaml", "kubernetes/deployment+service.yaml", "kubernetes/service.yaml"}},
	{policy: "kubernetes/policy", inputs: []string{"kubernetes/deployment.yaml"}, all: true},
	{policy: "docker/policy", inputs: []string{"docker/Dockerfile"}},
	{policy: "docker/policy", inputs: []string{"docker/Dockerfile"}, all: true},
	{policy: "docker/policy", inputs: []string{"docker/Dockerfile"}, namespaces: []string{"c*"}},
	{policy: "docker/policy", inputs: []string{"docker/Dockerfile"}, namespaces: []string{"*"}},
	{policy: "data/policy", inputs: []string{"data/service.yaml"}, data: []string{"data/exclusions"}},
	{policy: "compose/policy", inputs: []string{"compose/docker-compose.yml", "compose/docker-compose-valid.yml"}},
	{policy: "exceptions/policy", inputs: []string{"exceptions/deployments.yaml"}},
	{policy: "awssam/policy", inputs: []string{"awssam/lambda.yaml"}},
	{policy: "serverless/policy", inputs: []string{"serverless/serverless.yaml"}},
	{policy: "kustomize/policy", inputs: []string{"kustomize/deployment.yaml", "kustomize/service.yaml", "kustomize/configMap.yaml"}},
	{policy: "cyclonedx/policy", inputs: []string{"cyclonedx/cyclonedx.json"}},
	{policy: "hcl1/policy", inputs: []string{"hcl1/gke-show.json"}},
}

// TestAgreesWithConftest runs the conftest example policies on their
// inputs through socle check's engine and through the real conftest CLI,
// and compares every file's successes, failures (messages and metadata),
// warnings and exceptions per namespace.
func TestAgreesWithConftest(t *testing.T) {
	bin := testenv.PeerTool(t, "conftest")
	ex := testenv.SharedData(t, "conftest", "examples")
	abs := func(rel []string) []string {
		out := make([]string, len(rel))
		for i, r := range rel {
			out[i] = filepath.Join(ex, r)
		}
		return out
	}
	for _, c := range conftestCases {
		name := c.policy + " " + strings.Join(c.inputs, " ") + fmt.Sprint(c.namespaces, c.all, c.data)
		args := []string{"test", "-o", "json", "-p", filepath.Join(ex, c.policy)}
		for _, ns := range c.namespaces {
			args = append(args, "--namespace", ns)
		}
		if c.all {
			args = append(args, "--all-namespaces")
		}
		for _, d := range abs(c.data) {
			args = append(args, "--data", d)
		}
		cmd := exec.Command(bin, append(args, abs(c.inputs)...)...)
		cmd.Dir = t.TempDir()
		out, err := cmd.Output()
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
			t.Fatalf("%s: conftest: %v\n%s", name, err, out)
		}
		var theirs []check.PolicyResult
		conftestFailed := json.Unmarshal(out, &theirs) != nil
		p, err := check.LoadPolicies([]string{filepath.Join(ex, c.policy)}, abs(c.data), c.namespaces, c.all)
		if conftestFailed {
			// conftest refuses the policy (serverless calls an undefined
			// function): socle must too.
			if err == nil {
				t.Errorf("%s: conftest refuses the policy, socle loads it", name)
			}
			t.Logf("%s: both refuse the policy: %v", name, err)
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ours, err := p.RunPolicies(ctx, collect(t, abs(c.inputs)...))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if a, b := normalize(t, ours), normalize(t, theirs); a != b {
			t.Errorf("%s: socle and conftest disagree\nsocle:\n%s\nconftest:\n%s", name, a, b)
		}
		fails, warns := check.PolicyFailures(ours)
		t.Logf("%s: %d results, %d failures, %d warnings agree", name, len(ours), fails, warns)
	}
}

// normalize renders results in a canonical order.
func normalize(t *testing.T, rs []check.PolicyResult) string {
	t.Helper()
	var lines []string
	msgs := func(kind string, r check.PolicyResult, ms []check.PolicyMessage) {
		for _, m := range ms {
			meta, _ := json.Marshal(m.Metadata)
			lines = append(lines, fmt.Sprintf("%s %s %s %s %s", r.Filename, r.Namespace, kind, m.Msg, meta))
		}
	}
	for _, r := range rs {
		lines = append(lines, fmt.Sprintf("%s %s successes=%d", r.Filename, r.Namespace, r.Successes))
		msgs("failure", r, r.Failures)
		msgs("warning", r, r.Warnings)
		msgs("exception", r, r.Exceptions)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestSandboxedPolicies: a policy socle serve runs (a promotion gate)
// cannot reach the network: http.send does not compile there, while the
// same policy loads for socle check on the command line, as conftest
// allows it.
func TestSandboxedPolicies(t *testing.T) {
	dir := t.TempDir()
	// Hand-made: a policy that would make the server fetch a URL.
	p := filepath.Join(dir, "exfil.rego")
	if err := os.WriteFile(p, []byte("package main\nimport rego.v1\ndeny contains msg if {\n\tresp := http.send({\"method\": \"get\", \"url\": \"http://169.254.169.254/\"})\n\tmsg := sprintf(\"%v\", [resp.status_code])\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := check.LoadSandboxedPolicies([]string{p}); err == nil || !strings.Contains(err.Error(), "http.send") {
		t.Fatalf("sandboxed: %v", err)
	}
	if _, err := check.LoadPolicies([]string{p}, nil, nil, false); err != nil {
		t.Fatalf("command line: %v", err)
	}
}
