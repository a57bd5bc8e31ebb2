package cli_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/socle-dev/socle/internal/testenv"
)

// peerCLI returns the path of a peer tool .ci/run built (crane, cosign),
// from its SOCLE_ environment variable or .ci/cache/bin.
func peerCLI(t *testing.T, tool string) string {
	t.Helper()
	if p := os.Getenv("SOCLE_" + strings.ToUpper(tool)); p != "" {
		return p
	}
	p := filepath.Join(testenv.RepoRoot(t), ".ci", "cache", "bin", tool)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is not built: run .ci/run (it installs %s with go install), or set SOCLE_%s", tool, tool, strings.ToUpper(tool))
	}
	return p
}

// TestRegistryAccessRules runs socle serve with its registry beyond
// loopback and two environments, and pushes with the real crane CLI
// logged in with socle tokens: a developer token scoped to
// apps/billing/* pushes there and nowhere else, never moves the prod
// tag, never overwrites a version tag, and may not delete; an admin's
// socle registry gc reports.
func TestRegistryAccessRules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the socle binary")
	}
	crane := peerCLI(t, "crane")
	dataDir := t.TempDir()
	writeFile(t, filepath.Join(dataDir, "socle.yaml"), "environments:\n  - name: dev\n  - name: prod\n", 0o644)
	srv := startServe(t, dataDir, "--registry-addr", "0.0.0.0:0")
	dockerConfig := t.TempDir()
	craneRun := func(args ...string) (string, error) {
		cmd := exec.Command(crane, append(args, "--insecure")...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dockerConfig)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	token, errOut, code := run(t, dataDir, "token", "create", "--role", "developer", "--user", "dave", "--repositories", "apps/billing/*")
	if code != 0 {
		t.Fatalf("token: %s", errOut)
	}
	if out, err := craneRun("auth", "login", srv.registry, "-u", "dave", "-p", strings.TrimSpace(token)); err != nil {
		t.Fatalf("crane auth login: %v %s", err, out)
	}
	// Hand-made images, written as tarballs for crane.
	image := func(content string) string {
		p := filepath.Join(t.TempDir(), "image.tar")
		ref, _ := name.NewTag("hand-made/" + content + ":1")
		img := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "hand-made.txt", Content: []byte(content)}}))
		if err := tarball.WriteToFile(p, ref, img); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first, second := image("first"), image("second")
	reg := srv.registry
	for _, tc := range []struct {
		name    string
		args    []string
		ok      bool
		message string
	}{
		{"push in scope", []string{"push", first, reg + "/apps/billing/api:2.4.1"}, true, ""},
		{"push again, same digest", []string{"push", first, reg + "/apps/billing/api:2.4.1"}, true, ""},
		{"overwrite a version tag", []string{"push", second, reg + "/apps/billing/api:2.4.1"}, false, "immutable"},
		{"move a floating tag", []string{"push", second, reg + "/apps/billing/api:2"}, true, ""},
		{"push out of scope", []string{"push", first, reg + "/apps/shop/api:1"}, false, "apps/billing/*"},
		{"move the prod tag", []string{"push", second, reg + "/apps/billing/api:prod"}, false, "socle promote"},
		{"delete as a developer", []string{"delete", reg + "/apps/billing/api:2"}, false, "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := craneRun(tc.args...)
			if (err == nil) != tc.ok {
				t.Fatalf("crane %v: %v\n%s", tc.args, err, out)
			}
			if !tc.ok && !strings.Contains(out, tc.message) {
				t.Fatalf("crane %v: the refusal does not say %q:\n%s", tc.args, tc.message, out)
			}
		})
	}
	// An admin deletes the floating tag; the delete is audited.
	adminConfig := t.TempDir()
	adminToken, _, _ := run(t, dataDir, "token", "create", "--role", "admin", "--user", "root")
	for _, args := range [][]string{{"auth", "login", srv.registry, "-u", "root", "-p", strings.TrimSpace(adminToken)}, {"delete", reg + "/apps/billing/api:2"}} {
		cmd := exec.Command(crane, append(args, "--insecure")...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+adminConfig)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("crane %v as an admin: %v %s", args, err, out)
		}
	}
	var audit struct {
		Events []struct{ Action, Actor, Subject string }
	}
	srv.get(t, "/api/v1/audit?limit=1000", &audit)
	deleted := false
	for _, e := range audit.Events {
		deleted = deleted || (e.Action == "registry.delete" && e.Subject == "apps/billing/api:2" && strings.Contains(e.Actor, "root"))
	}
	if !deleted {
		t.Fatalf("the admin's delete is not audited: %+v", audit.Events)
	}
	// socle's promoter moves the dev tag the developer could not.
	digest, err := craneRun("digest", reg+"/apps/billing/api:2.4.1")
	if err != nil {
		t.Fatalf("crane digest: %v %s", err, digest)
	}
	ref := reg + "/apps/billing/api@" + strings.TrimSpace(digest)
	var res struct{ Promotion struct{ State string } }
	if code := srv.post(t, "/api/v1/promotions", `{"image":"`+ref+`","to":"dev"}`, &res); code != 200 && code != 201 || res.Promotion.State != "done" {
		t.Fatalf("promotion to dev: %d %+v", code, res)
	}
	if got, err := craneRun("digest", reg+"/apps/billing/api:dev"); err != nil || strings.TrimSpace(got) != strings.TrimSpace(digest) {
		t.Fatalf("the dev tag after the promotion: %v %s", err, got)
	}
	t.Setenv("SOCLE_SERVER", "http://"+srv.api)
	t.Setenv("SOCLE_TOKEN", srv.token)
	out, errOut, code := run(t, dataDir, "registry", "gc", "--dry-run")
	if code != 0 || !strings.Contains(out, "would remove") {
		t.Fatalf("socle registry gc --dry-run: %d %s %s", code, out, errOut)
	}
}

// post calls the API as the admin and decodes the JSON answer.
func (s *server) post(t *testing.T, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+s.api+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// get calls the API as the admin and decodes the JSON answer.
func (s *server) get(t *testing.T, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.api+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
}
