package remediate_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/socle-dev/socle/internal/remediate"
)

// TestGitBump: a local repository holding a Dockerfile, a kustomization
// and Helm values (hand-made) receives the digest bump as a commit that
// the real git log shows, on a branch of its own.
func TestGitBump(t *testing.T) {
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git not found (.ci/run installs it)")
	}
	dir := t.TempDir()
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	old := "sha256:" + strings.Repeat("a", 64)
	next := "sha256:" + strings.Repeat("b", 64)
	other := "sha256:" + strings.Repeat("c", 64)
	files := map[string]string{
		"Dockerfile": "FROM registry.example/socle/debian@" + old + "\nCOPY app /app\n",
		"deploy/kustomization.yaml": "resources: [deployment.yaml]\nimages:\n  - name: registry.example/socle/debian\n    digest: " + old +
			"\n  - name: registry.example/other\n    digest: " + other + "\n",
		"chart/values.yaml": "image:\n  repository: registry.example/socle/debian\n  digest: " + old + "\n",
		"README.md":         "mentions " + old + " but is not a pin file\n",
	}
	wt, _ := repo.Worktree()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
		wt.Add(name)
	}
	sig := &object.Signature{Name: "dev", Email: "dev@example.invalid", When: time.Now()}
	if _, err := wt.Commit("initial", &git.CommitOptions{Author: sig, Committer: sig}); err != nil {
		t.Fatal(err)
	}
	g := remediate.GitTarget{Repo: dir}
	hash, err := g.Bump(context.Background(), []remediate.Bump{{Repository: "registry.example/socle/debian", From: old, To: next}},
		[]string{"SOCLE-DERIVED-DEBIAN-CVE-2026-103111 libpcre2-8-0"}, time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
	if err != nil || hash == "" {
		t.Fatalf("bump: %q %v", hash, err)
	}
	out, err := exec.Command(gitBin, "-C", dir, "log", "--all", "--format=%H %s", "--name-only").CombinedOutput()
	if err != nil {
		t.Fatalf("git log: %v\n%s", err, out)
	}
	log := string(out)
	if !strings.Contains(log, hash+" socle: bump registry.example/socle/debian to "+next) {
		t.Fatalf("git log does not show the bump:\n%s", log)
	}
	for _, f := range []string{"Dockerfile", "deploy/kustomization.yaml", "chart/values.yaml"} {
		if !strings.Contains(log, f) {
			t.Errorf("the commit lacks %s:\n%s", f, log)
		}
	}
	show, _ := exec.Command(gitBin, "-C", dir, "show", hash+":deploy/kustomization.yaml").CombinedOutput()
	if !strings.Contains(string(show), next) || strings.Contains(string(show), old) || !strings.Contains(string(show), other) {
		t.Fatalf("kustomization after the bump:\n%s", show)
	}
	body, _ := exec.Command(gitBin, "-C", dir, "log", "-1", "--format=%B", hash).CombinedOutput()
	if !strings.Contains(string(body), "CVE-2026-103111") {
		t.Fatalf("the message does not list the fixes:\n%s", body)
	}
	// The working tree is back on its branch, untouched.
	if b, _ := os.ReadFile(filepath.Join(dir, "Dockerfile")); !strings.Contains(string(b), old) {
		t.Fatal("the bump changed the checked-out branch")
	}
	branches, _ := exec.Command(gitBin, "-C", dir, "branch", "--list", "socle/*").CombinedOutput()
	if !strings.Contains(string(branches), "socle/remediate-20261124-120000") {
		t.Fatalf("branches: %s", branches)
	}
	// Nothing to bump: no commit.
	if h, err := g.Bump(context.Background(), []remediate.Bump{{Repository: "registry.example/x", From: "sha256:" + strings.Repeat("d", 64), To: next}}, nil, time.Now()); err != nil || h != "" {
		t.Fatalf("empty bump: %q %v", h, err)
	}
}
