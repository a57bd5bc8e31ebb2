package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

// DockerfileSpec builds with an external BuildKit or docker.
type DockerfileSpec struct {
	// Context is the build context directory; File the Dockerfile in it
	// (default Dockerfile).
	Context string
	File    string
	Target  string
	Args    map[string]string
	// Parent, when set, is passed as build argument BASE_IMAGE: the
	// Dockerfile starts with ARG BASE_IMAGE and FROM ${BASE_IMAGE}.
	Parent string
	// Push is the reference to push the result to.
	Push string
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

// Build runs the build and pushes to spec.Push.
func (b *DockerfileBuilder) Build(ctx context.Context, spec DockerfileSpec) error {
	if spec.Push == "" {
		return errors.New("dockerfile build: nowhere to push")
	}
	file := spec.File
	if file == "" {
		file = "Dockerfile"
	}
	args := map[string]string{}
	for k, v := range spec.Args {
		args[k] = v
	}
	if spec.Parent != "" {
		args["BASE_IMAGE"] = spec.Parent
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var cmd *exec.Cmd
	switch b.Tool {
	case "docker":
		argv := []string{"buildx", "build", "--push", "-t", spec.Push, "-f", spec.Context + "/" + file}
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
			"--output", "type=image,name=" + spec.Push + ",push=true"}
		for _, k := range keys {
			argv = append(argv, "--opt", "build-arg:"+k+"="+args[k])
		}
		if spec.Target != "" {
			argv = append(argv, "--opt", "target="+spec.Target)
		}
		cmd = exec.CommandContext(ctx, "buildctl", argv...)
	default:
		return fmt.Errorf("dockerfile build: unknown tool %q", b.Tool)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("dockerfile build with %s: %w\n%s", b.Tool, err, lastLines(out.String(), 20))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
