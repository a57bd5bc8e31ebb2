package cli_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/testenv"
)

// ciCommand finds a socle command in a pipeline line: sh '…', - …, run: ….
var ciCommand = regexp.MustCompile(`(?:^\s*(?:- )?(?:run: )?|sh ')(socle [^']*)'?\s*$`)

// ciExamples returns, per section of docs/ci.md, the socle commands of
// its examples, as written.
func ciExamples(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "ci.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = h
			continue
		}
		if m := ciCommand.FindStringSubmatch(line); m != nil && section != "" {
			out[section] = append(out[section], strings.TrimSpace(m[1]))
		}
	}
	return out
}

// TestCIExamples runs the socle commands of docs/ci.md's Jenkins, GitLab
// and GitHub examples, exactly as written, in a shell, against a real
// socle serve: the scan uploads the real Alpine 3.10 image, gates on
// critical findings and writes its JUnit or SARIF report; the promotion
// moves dev.
func TestCIExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the socle binary")
	}
	examples := ciExamples(t)
	for _, s := range []string{"Jenkins", "GitLab CI", "GitHub Actions"} {
		if len(examples[s]) < 2 {
			t.Fatalf("docs/ci.md section %s has %d socle commands", s, len(examples[s]))
		}
	}
	serverData := t.TempDir()
	cfg := filepath.Join(serverData, "socle.yaml")
	writeFile(t, cfg, "environments:\n  - name: dev\n  - name: prod\n    gates: {approvals: 1}\n", 0o644)
	srv := startServe(t, serverData, "--config", cfg)
	token, errOut, code := run(t, serverData, "token", "create", "--role", "developer", "--name", "shop-ci", "--repositories", "apps/shop")
	if code != 0 {
		t.Fatalf("token: %s", errOut)
	}
	bin := filepath.Dir(socleBinary(t))
	archive := testenv.SharedData(t, "images", "alpine-310.tar.gz")
	for section, cmds := range examples {
		t.Run(section, func(t *testing.T) {
			work := t.TempDir()
			// image.tar as docker save writes it, and the pushed image.
			gz, _ := os.Open(archive)
			zr, _ := gzip.NewReader(gz)
			f, _ := os.Create(filepath.Join(work, "image.tar"))
			io.Copy(f, zr)
			f.Close()
			gz.Close()
			image := srv.registry + "/apps/shop:" + strings.ReplaceAll(strings.ToLower(section), " ", "-")
			ref, _ := oci.ParseImageRef("docker-archive:" + filepath.Join(work, "image.tar"))
			img, err := source.Open(t.Context(), ref, source.Options{})
			if err != nil {
				t.Fatal(err)
			}
			tag, _ := name.NewTag(image)
			if err := remote.Write(tag, img); err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			img.Close()
			for _, c := range cmds {
				cmd := exec.Command("sh", "-c", c)
				cmd.Dir = work
				cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "SOCLE_SERVER=http://"+srv.api, "SOCLE_TOKEN="+strings.TrimSpace(token),
					"IMAGE="+image, "IMAGE_DIGEST_REF="+tag.Context().Digest(d.String()).String(), "HOME="+work, "SOCLE_DATA_DIR="+filepath.Join(work, "data"))
				out, err := cmd.CombinedOutput()
				gate := strings.Contains(c, "--exit-code 1")
				ee, failed := err.(*exec.ExitError)
				switch {
				case err == nil:
				case failed && gate && ee.ExitCode() == 1 && strings.Contains(c, "--severity CRITICAL"):
					// The gate stopped the pipeline: the image has a critical
					// finding, which the report must name.
					if !bytes.Contains(out, []byte("CRITICAL")) && !reportNames(work, "CRITICAL") {
						t.Fatalf("%s: exit 1 without a critical finding reported:\n%s", c, out)
					}
				default:
					t.Fatalf("%s: %v\n%s", c, err, out)
				}
				if m := regexp.MustCompile(`--file (\S+)`).FindStringSubmatch(c); m != nil {
					if b, err := os.ReadFile(filepath.Join(work, m[1])); err != nil || len(b) == 0 {
						t.Fatalf("%s wrote no %s: %v", c, m[1], err)
					}
				}
			}
			if got := tagDigest(t, srv.registry+"/apps/shop:dev"); got == "" {
				t.Fatal("dev was not promoted")
			}
		})
	}
}

// reportNames says whether a report in dir mentions s.
func reportNames(dir, s string) bool {
	for _, f := range []string{"socle-junit.xml", "socle.sarif"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil && bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}
