package mutate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/socle-dev/socle/internal/layer"
)

// DockerfileSpec builds with an external BuildKit or docker.
type DockerfileSpec struct {
	// Context is the build context directory; File the Dockerfile in it
	// (default Dockerfile).
	Context string
	File    string
	Target  string
	Args    map[string]string
	// Parent, when set, is passed as the build argument ParentArg
	// (default BASE_IMAGE): the Dockerfile starts with ARG BASE_IMAGE and
	// FROM ${BASE_IMAGE}.
	Parent    string
	ParentArg string
	// Annotations are set on the image manifest.
	Annotations map[string]string
}

// ErrNoBuilder is returned when neither BuildKit nor docker can build.
var ErrNoBuilder = errors.New("no Dockerfile builder: neither docker buildx (with a running engine) nor buildctl (with BUILDKIT_HOST) is available")

// DockerfileBuilder runs Dockerfile builds through docker buildx or
// buildctl, whichever works here.
type DockerfileBuilder struct {
	// Tool is "docker" or "buildctl"; Addr the BuildKit address for buildctl.
	Tool string
	Addr string
}

// DetectDockerfileBuilder finds a usable builder, or explains why there
// is none: which tools were tried and how they failed.
func DetectDockerfileBuilder(ctx context.Context) (*DockerfileBuilder, error) {
	var reasons []string
	if path, err := exec.LookPath("buildctl"); err == nil {
		addr := os.Getenv("BUILDKIT_HOST")
		if addr == "" {
			reasons = append(reasons, "buildctl is installed ("+path+") but BUILDKIT_HOST is not set")
		} else if out, err := exec.CommandContext(ctx, "buildctl", "--addr", addr, "debug", "workers").CombinedOutput(); err != nil {
			reasons = append(reasons, fmt.Sprintf("buildctl cannot reach %s: %s", addr, firstLine(out, err)))
		} else {
			return &DockerfileBuilder{Tool: "buildctl", Addr: addr}, nil
		}
	} else {
		reasons = append(reasons, "buildctl is not installed")
	}
	if path, err := exec.LookPath("docker"); err == nil {
		if out, err := exec.CommandContext(ctx, "docker", "buildx", "version").CombinedOutput(); err != nil {
			reasons = append(reasons, fmt.Sprintf("docker (%s) has no buildx: %s", path, firstLine(out, err)))
		} else if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
			reasons = append(reasons, fmt.Sprintf("docker has no running engine: %s", firstLine(out, err)))
		} else {
			return &DockerfileBuilder{Tool: "docker"}, nil
		}
	} else {
		reasons = append(reasons, "docker is not installed")
	}
	return nil, fmt.Errorf("%w (%s)", ErrNoBuilder, strings.Join(reasons, "; "))
}

func firstLine(out []byte, err error) string {
	s := strings.TrimSpace(string(out))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if s == "" {
		return err.Error()
	}
	return s
}

// Build runs the build into an OCI archive and returns the image; the
// caller pushes it, as it does every other build's.
func (b *DockerfileBuilder) Build(ctx context.Context, spec DockerfileSpec) (v1.Image, error) {
	tmp, err := os.MkdirTemp("", "socle-dockerfile-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	archive := filepath.Join(tmp, "image.tar")
	file := spec.File
	if file == "" {
		file = "Dockerfile"
	}
	args := map[string]string{}
	for k, v := range spec.Args {
		args[k] = v
	}
	if spec.Parent != "" {
		arg := spec.ParentArg
		if arg == "" {
			arg = "BASE_IMAGE"
		}
		args[arg] = spec.Parent
	}
	keys := sortedKeys(args)
	var cmd *exec.Cmd
	switch b.Tool {
	case "docker":
		argv := []string{"buildx", "build", "--output", "type=oci,dest=" + archive, "-f", filepath.Join(spec.Context, file)}
		for _, k := range sortedKeys(spec.Annotations) {
			argv = append(argv, "--annotation", "manifest:"+k+"="+spec.Annotations[k])
		}
		for _, k := range keys {
			argv = append(argv, "--build-arg", k+"="+args[k])
		}
		if spec.Target != "" {
			argv = append(argv, "--target", spec.Target)
		}
		cmd = exec.CommandContext(ctx, "docker", append(argv, spec.Context)...)
	case "buildctl":
		argv := []string{"--addr", b.Addr, "build", "--frontend", "dockerfile.v0",
			"--local", "context=" + spec.Context, "--local", "dockerfile=" + spec.Context, "--opt", "filename=" + file,
			"--output", "type=oci,dest=" + archive}
		for _, k := range sortedKeys(spec.Annotations) {
			argv = append(argv, "--opt", "annotation-manifest."+k+"="+spec.Annotations[k])
		}
		for _, k := range keys {
			argv = append(argv, "--opt", "build-arg:"+k+"="+args[k])
		}
		if spec.Target != "" {
			argv = append(argv, "--opt", "target="+spec.Target)
		}
		cmd = exec.CommandContext(ctx, "buildctl", argv...)
	default:
		return nil, fmt.Errorf("dockerfile build: unknown tool %q", b.Tool)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("dockerfile build with %s: %w\n%s", b.Tool, err, lastLines(out.String(), 20))
	}
	return loadOCIArchive(archive, filepath.Join(tmp, "layout"))
}

// loadOCIArchive unpacks an OCI layout tarball (safely: nothing escapes
// dir) and returns its one image, held in memory so that dir can go.
func loadOCIArchive(archive, dir string) (v1.Image, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	if err := layer.Extract(f, fi.Size(), layer.Limits{}, root); err != nil {
		return nil, fmt.Errorf("unpacking the build's OCI archive: %w", err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the build's OCI archive: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("the build's OCI archive holds %d manifests, want 1", len(im.Manifests))
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		return nil, err
	}
	return inMemory(img)
}

// inMemory copies an image's blobs into memory.
func inMemory(img v1.Image) (v1.Image, error) {
	var buf bytes.Buffer
	if err := tarball.Write(nil, img, &buf); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, nil)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
