package remediate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// GitTarget is a Git repository whose digest pins socle bumps: FROM
// lines of Dockerfiles, kustomize image entries, Helm values, any YAML
// that names an image by digest.
type GitTarget struct {
	// Repo is a local path, or a URL cloned into a temporary directory
	// and pushed back.
	Repo string
	// Branch is the branch the bump starts from (default: HEAD).
	Branch string
	// Paths limit the files looked at (default: every file).
	Paths []string
	// Author names the commits' author.
	Author string
}

// Bump replaces one digest of a repository by another.
type Bump struct {
	Repository string
	From, To   string
}

// maxPinFile bounds the files a bump rewrites.
const maxPinFile = 4 << 20

// Bump commits the digest bumps on a new branch and returns the commit
// hash, or "" when no file names the old digests. The branch is left for
// review (and pushed when Repo is a URL); the working tree returns to the
// branch it was on.
func (g GitTarget) Bump(ctx context.Context, bumps []Bump, fixed []string, now time.Time) (string, error) {
	dir, remote := g.Repo, false
	if strings.Contains(g.Repo, "://") || strings.HasPrefix(g.Repo, "git@") {
		tmp, err := os.MkdirTemp("", "socle-git-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp)
		opts := &git.CloneOptions{URL: g.Repo}
		if g.Branch != "" {
			opts.ReferenceName = plumbing.NewBranchReferenceName(g.Branch)
		}
		if _, err := git.PlainCloneContext(ctx, tmp, false, opts); err != nil {
			return "", fmt.Errorf("cloning: %w", err)
		}
		dir, remote = tmp, true
	}
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return "", err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return "", err
	}
	head, err := repo.Head()
	if err != nil {
		return "", err
	}
	if g.Branch != "" && head.Name().Short() != g.Branch {
		if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(g.Branch)}); err != nil {
			return "", fmt.Errorf("checking out %s: %w", g.Branch, err)
		}
		defer wt.Checkout(&git.CheckoutOptions{Branch: head.Name()})
	}
	start, err := repo.Head()
	if err != nil {
		return "", err
	}
	branch := plumbing.NewBranchReferenceName(fmt.Sprintf("socle/remediate-%s", now.UTC().Format("20060102-150405")))
	if err := wt.Checkout(&git.CheckoutOptions{Branch: branch, Create: true, Hash: start.Hash()}); err != nil {
		return "", fmt.Errorf("creating %s: %w", branch.Short(), err)
	}
	back := func() { _ = wt.Checkout(&git.CheckoutOptions{Branch: start.Name()}) }
	changed, err := g.rewrite(dir, bumps)
	if err != nil {
		back()
		return "", err
	}
	if len(changed) == 0 {
		back()
		_ = repo.Storer.RemoveReference(branch)
		return "", nil
	}
	for _, f := range changed {
		if _, err := wt.Add(f); err != nil {
			back()
			return "", err
		}
	}
	var msg strings.Builder
	for _, b := range bumps {
		fmt.Fprintf(&msg, "socle: bump %s to %s\n", b.Repository, b.To)
	}
	msg.WriteString("\nThe new digest was built and scanned by socle before this commit.\n")
	if len(fixed) > 0 {
		msg.WriteString("\nFixes:\n")
		for _, f := range fixed {
			fmt.Fprintf(&msg, "- %s\n", f)
		}
	}
	msg.WriteString("\nFiles: " + strings.Join(changed, ", ") + "\n")
	author := g.Author
	if author == "" {
		author = "socle"
	}
	sig := &object.Signature{Name: author, Email: author + "@socle.invalid", When: now}
	hash, err := wt.Commit(msg.String(), &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		back()
		return "", err
	}
	if remote {
		if err := repo.PushContext(ctx, &git.PushOptions{RefSpecs: nil}); err != nil && err != git.NoErrAlreadyUpToDate {
			return "", fmt.Errorf("pushing %s: %w", branch.Short(), err)
		}
	}
	back()
	return hash.String(), nil
}

// rewrite replaces the old digests in the pin files and returns the
// files it changed, relative to dir.
func (g GitTarget) rewrite(dir string, bumps []Bump) ([]string, error) {
	var changed []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !pinFile(d.Name()) || !g.selected(filepath.ToSlash(rel)) {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > maxPinFile {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out := b
		for _, bump := range bumps {
			// A digest names one image: where it appears next to the
			// repository's name (repo@digest), or in a file that names the
			// repository (kustomize's name/digest, Helm's repository/digest).
			repoPath := bump.Repository
			if i := strings.IndexByte(repoPath, '/'); i >= 0 {
				repoPath = repoPath[i+1:]
			}
			if bytes.Contains(out, []byte(bump.From)) && bytes.Contains(out, []byte(repoPath)) {
				out = bytes.ReplaceAll(out, []byte(bump.From), []byte(bump.To))
			}
		}
		if !bytes.Equal(out, b) {
			if err := os.WriteFile(p, out, info.Mode().Perm()); err != nil {
				return err
			}
			changed = append(changed, filepath.ToSlash(rel))
		}
		return nil
	})
	return changed, err
}

func (g GitTarget) selected(rel string) bool {
	if len(g.Paths) == 0 {
		return true
	}
	for _, p := range g.Paths {
		if ok, _ := path.Match(p, rel); ok || strings.HasPrefix(rel, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

// pinFile says whether a file may hold digest pins.
func pinFile(name string) bool {
	lower := strings.ToLower(name)
	return strings.HasPrefix(lower, "dockerfile") || strings.HasSuffix(lower, ".dockerfile") || strings.HasSuffix(lower, "containerfile") ||
		strings.HasSuffix(lower, ".yaml") || strings.HasSuffix(lower, ".yml") || strings.HasSuffix(lower, ".json") || strings.HasSuffix(lower, ".tf")
}
