package policy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/policy"
)

var ctx = context.Background()

// doc is a hand-made promotion document.
func doc(user string, labels map[string]any, findings []any, lineage int) map[string]any {
	links := make([]any, lineage)
	for i := range links {
		links[i] = map[string]any{"digest": "sha256:x"}
	}
	return map[string]any{
		"environment": "prod",
		"image":       map[string]any{"config": map[string]any{"config": map[string]any{"User": user, "Labels": labels}}},
		"findings":    findings,
		"lineage":     links,
	}
}

func TestBuiltins(t *testing.T) {
	names := policy.Builtins()
	if len(names) < 4 {
		t.Fatalf("builtins %v", names)
	}
	critical := []any{map[string]any{"id": "CVE-1", "severity": "CRITICAL", "package": "openssl", "version": "1", "fixed_version": "2"}}
	unfixed := []any{map[string]any{"id": "CVE-2", "severity": "CRITICAL", "package": "zlib", "version": "1", "fixed_version": ""}}
	src := map[string]any{"org.opencontainers.image.source": "https://example.invalid/x"}
	for _, tc := range []struct {
		policy string
		input  map[string]any
		deny   string
	}{
		{"builtin:nonroot", doc("", nil, nil, 2), "runs as root"},
		{"builtin:nonroot", doc("0:0", nil, nil, 2), "runs as root"},
		{"builtin:nonroot", doc("65532", nil, nil, 2), ""},
		{"builtin:source-label", doc("1", nil, nil, 2), "no org.opencontainers.image.source"},
		{"builtin:source-label", doc("1", src, nil, 2), ""},
		{"builtin:no-critical-fixable", doc("1", nil, critical, 2), "CVE-1 in openssl 1 is fixed in 2"},
		{"builtin:no-critical-fixable", doc("1", nil, unfixed, 2), ""},
		{"builtin:known-base", doc("1", nil, nil, 1), "knows no base"},
		{"builtin:known-base", doc("1", nil, nil, 3), ""},
	} {
		p, err := policy.Load(ctx, tc.policy)
		if err != nil {
			t.Fatal(err)
		}
		deny, err := p.Deny(ctx, tc.input)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(deny, "; ")
		if (tc.deny == "") != (got == "") || !strings.Contains(got, tc.deny) {
			t.Errorf("%s: deny %q, want %q", tc.policy, got, tc.deny)
		}
	}
	if _, err := policy.Load(ctx, "builtin:nope"); err == nil || !strings.Contains(err.Error(), "builtin:nonroot") {
		t.Fatalf("unknown builtin: %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	if _, err := policy.Compile(ctx, "bad.rego", "package socle\ndeny contains msg if {"); err == nil {
		t.Fatal("a broken policy compiled")
	}
	// A policy whose deny is not a set is an error, never a pass.
	p, err := policy.Compile(ctx, "x.rego", "package socle\ndeny := 3\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Deny(ctx, map[string]any{}); err == nil {
		t.Fatal("a non-set deny passed")
	}
}

// TestPoliciesAreSandboxed: a gate policy that calls http.send (hand-made)
// does not compile: socle serve never reaches the network for a policy.
func TestPoliciesAreSandboxed(t *testing.T) {
	_, err := policy.Compile(context.Background(), "exfil.rego", "package socle\nimport rego.v1\ndeny contains msg if {\n\tresp := http.send({\"method\": \"get\", \"url\": \"http://169.254.169.254/\"})\n\tmsg := sprintf(\"%v\", [resp.status_code])\n}\n")
	if err == nil || !strings.Contains(err.Error(), "http.send") {
		t.Fatalf("compiled: %v", err)
	}
}
