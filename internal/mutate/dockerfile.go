package mutate

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/socle-dev/socle/internal/layer"
)

// DockerfileSpec is one Dockerfile build.
type DockerfileSpec struct {
	// Context is the build context directory; File the Dockerfile in it
	// (default Dockerfile).
	Context string
	File    string
	Target  string
	Args    map[string]string
	// Platform is the one platform to build for (os/arch); empty is the
	// host's.
	Platform string
	// Parent, when set, is passed as the build argument ParentArg
	// (default BASE_IMAGE): the Dockerfile starts with ARG BASE_IMAGE and
	// FROM ${BASE_IMAGE}.
	Parent    string
	ParentArg string
	// Annotations are set on the image manifest.
	Annotations map[string]string
	// Log receives the builder's output, line by line, as it comes.
	Log func(line string)
}

// Builder tools, in the order detection tries them.
const (
	ToolBuildah  = "buildah"
	ToolBuildctl = "buildctl"
	ToolDocker   = "docker"
)

// ErrNoBuilder is returned when no Dockerfile builder can run here.
var ErrNoBuilder = errors.New("no Dockerfile builder: neither buildah, nor buildctl (with BUILDKIT_HOST), nor docker buildx (with a running engine) is available")

// DockerfileBuilder runs Dockerfile builds with buildah, BuildKit's
// buildctl or docker buildx.
type DockerfileBuilder struct {
	// Tool is buildah, buildctl or docker; Addr the BuildKit address for
	// buildctl.
	Tool string
	Addr string
	// Root and RunRoot are buildah's storage (default its own); its layer
	// cache lives there, reused by later builds.
	Root, RunRoot string
	// Version is the tool's version, for provenance.
	Version string
}

// DetectDockerfileBuilder finds a usable builder, buildah first, or the
// one forced (buildah, buildctl or docker), or explains why there is
// none: which tools were tried and how they failed.
func DetectDockerfileBuilder(ctx context.Context, force string) (*DockerfileBuilder, error) {
	var reasons []string
	tries := []string{ToolBuildah, ToolBuildctl, ToolDocker}
	if force != "" {
		tries = []string{force}
	}
	for _, tool := range tries {
		b, why := probe(ctx, tool)
		if b != nil {
			return b, nil
		}
		reasons = append(reasons, why)
	}
	return nil, fmt.Errorf("%w (%s)", ErrNoBuilder, strings.Join(reasons, "; "))
}

// probe checks that one tool can build, and says why not.
func probe(ctx context.Context, tool string) (*DockerfileBuilder, string) {
	path, err := exec.LookPath(tool)
	if err != nil {
		return nil, tool + " is not installed"
	}
	switch tool {
	case ToolBuildah:
		out, err := exec.CommandContext(ctx, tool, "version", "--json").CombinedOutput()
		if err != nil {
			return nil, fmt.Sprintf("buildah (%s) does not run: %s", path, firstLine(out, err))
		}
		return &DockerfileBuilder{Tool: tool, Version: jsonField(out, "version")}, ""
	case ToolBuildctl:
		addr := os.Getenv("BUILDKIT_HOST")
		if addr == "" {
			return nil, "buildctl is installed (" + path + ") but BUILDKIT_HOST is not set"
		}
		if out, err := exec.CommandContext(ctx, tool, "--addr", addr, "debug", "workers").CombinedOutput(); err != nil {
			return nil, fmt.Sprintf("buildctl cannot reach %s: %s", addr, firstLine(out, err))
		}
		out, _ := exec.CommandContext(ctx, tool, "--version").CombinedOutput()
		return &DockerfileBuilder{Tool: tool, Addr: addr, Version: strings.TrimSpace(string(out))}, ""
	case ToolDocker:
		if out, err := exec.CommandContext(ctx, tool, "buildx", "version").CombinedOutput(); err != nil {
			return nil, fmt.Sprintf("docker (%s) has no buildx: %s", path, firstLine(out, err))
		}
		out, err := exec.CommandContext(ctx, tool, "info", "--format", "{{.ServerVersion}}").CombinedOutput()
		if err != nil {
			return nil, fmt.Sprintf("docker has no running engine: %s", firstLine(out, err))
		}
		return &DockerfileBuilder{Tool: tool, Version: "docker " + strings.TrimSpace(string(out))}, ""
	}
	return nil, fmt.Sprintf("unknown builder %q (buildah, buildctl or docker)", tool)
}

// jsonField pulls "key": "value" out of a small JSON document.
func jsonField(b []byte, key string) string {
	s := string(b)
	i := strings.Index(s, `"`+key+`"`)
	if i < 0 {
		return strings.TrimSpace(s)
	}
	rest := s[i+len(key)+2:]
	if j := strings.IndexByte(rest, '"'); j >= 0 {
		rest = rest[j+1:]
		if k := strings.IndexByte(rest, '"'); k >= 0 {
			return rest[:k]
		}
	}
	return strings.TrimSpace(s)
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

// Built is a build's image, read from files on disk until Close.
type Built struct {
	v1.Image
	dir string
}

// Close removes the build's files.
func (b *Built) Close() error { return os.RemoveAll(b.dir) }

// Build runs the build into an OCI layout on disk and returns the image,
// which the caller pushes (as every other build's) and then closes.
func (b *DockerfileBuilder) Build(ctx context.Context, spec DockerfileSpec) (*Built, error) {
	tmp, err := os.MkdirTemp("", "socle-dockerfile-*")
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	spec = withParentArg(spec)
	var img v1.Image
	switch b.Tool {
	case ToolBuildah:
		img, err = b.buildah(ctx, spec, filepath.Join(tmp, "layout"))
	case ToolDocker, ToolBuildctl:
		archive := filepath.Join(tmp, "image.tar")
		if err = b.run(spec, b.archiveCommand(ctx, spec, archive)); err == nil {
			img, err = loadOCIArchive(archive, filepath.Join(tmp, "layout"))
			os.Remove(archive)
		}
	default:
		err = fmt.Errorf("dockerfile build: unknown tool %q", b.Tool)
	}
	if err != nil {
		return nil, err
	}
	ok = true
	return &Built{Image: img, dir: tmp}, nil
}

// withParentArg adds the parent as its build argument.
func withParentArg(spec DockerfileSpec) DockerfileSpec {
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
	spec.Args = args
	if spec.File == "" {
		spec.File = "Dockerfile"
	}
	return spec
}

// buildah builds with buildah (chroot isolation, its own storage), then
// writes the image as an OCI layout and drops it from buildah's storage;
// the intermediate layers stay there as the cache of later builds.
func (b *DockerfileBuilder) buildah(ctx context.Context, spec DockerfileSpec, dir string) (v1.Image, error) {
	global := b.buildahStorage()
	tag := "localhost/socle-build-" + randomHex(8)
	argv := append(append([]string{}, global...), "bud", "--isolation", "chroot", "--layers", "--format", "oci",
		"--tls-verify="+fmt.Sprint(!loopbackRef(spec.Parent)), "-f", filepath.Join(spec.Context, spec.File), "-t", tag)
	for _, k := range sortedKeys(spec.Annotations) {
		argv = append(argv, "--annotation", k+"="+spec.Annotations[k])
	}
	for _, k := range sortedKeys(spec.Args) {
		argv = append(argv, "--build-arg", k+"="+spec.Args[k])
	}
	if spec.Target != "" {
		argv = append(argv, "--target", spec.Target)
	}
	if spec.Platform != "" {
		argv = append(argv, "--platform", spec.Platform)
	}
	if err := b.run(spec, exec.CommandContext(ctx, ToolBuildah, append(argv, spec.Context)...)); err != nil {
		return nil, err
	}
	defer exec.Command(ToolBuildah, append(append([]string{}, global...), "rmi", tag)...).Run()
	push := append(append([]string{}, global...), "push", "--quiet", tag, "oci:"+dir)
	if out, err := exec.CommandContext(ctx, ToolBuildah, push...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("writing the build of %s: %w\n%s", spec.Context, err, lastLines(string(out), 10))
	}
	return oneImage(dir)
}

func (b *DockerfileBuilder) buildahStorage() []string {
	out := []string{"--storage-driver", "vfs"}
	if b.Root != "" {
		out = append(out, "--root", b.Root)
	}
	if b.RunRoot != "" {
		out = append(out, "--runroot", b.RunRoot)
	}
	return out
}

// archiveCommand is the docker buildx or buildctl command writing an OCI
// archive.
func (b *DockerfileBuilder) archiveCommand(ctx context.Context, spec DockerfileSpec, archive string) *exec.Cmd {
	if b.Tool == ToolDocker {
		argv := []string{"buildx", "build", "--output", "type=oci,dest=" + archive, "-f", filepath.Join(spec.Context, spec.File)}
		for _, k := range sortedKeys(spec.Annotations) {
			argv = append(argv, "--annotation", "manifest:"+k+"="+spec.Annotations[k])
		}
		for _, k := range sortedKeys(spec.Args) {
			argv = append(argv, "--build-arg", k+"="+spec.Args[k])
		}
		if spec.Target != "" {
			argv = append(argv, "--target", spec.Target)
		}
		if spec.Platform != "" {
			argv = append(argv, "--platform", spec.Platform)
		}
		return exec.CommandContext(ctx, ToolDocker, append(argv, spec.Context)...)
	}
	argv := []string{"--addr", b.Addr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context=" + spec.Context, "--local", "dockerfile=" + spec.Context, "--opt", "filename=" + spec.File,
		"--output", "type=oci,dest=" + archive}
	for _, k := range sortedKeys(spec.Annotations) {
		argv = append(argv, "--opt", "annotation-manifest."+k+"="+spec.Annotations[k])
	}
	for _, k := range sortedKeys(spec.Args) {
		argv = append(argv, "--opt", "build-arg:"+k+"="+spec.Args[k])
	}
	if spec.Target != "" {
		argv = append(argv, "--opt", "target="+spec.Target)
	}
	if spec.Platform != "" {
		argv = append(argv, "--opt", "platform="+spec.Platform)
	}
	return exec.CommandContext(ctx, ToolBuildctl, argv...)
}

// run runs a build command, streaming its output to spec.Log; a failure
// names the step that failed and shows the tail of the output.
func (b *DockerfileBuilder) run(spec DockerfileSpec, cmd *exec.Cmd) error {
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	tail := &lineTail{max: 20}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			tail.add(line)
			if spec.Log != nil {
				spec.Log(line)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Run()
	pw.Close()
	wg.Wait()
	if err != nil {
		step := tail.step
		if step == "" {
			step = "the build"
		}
		return fmt.Errorf("dockerfile build of %s with %s failed at %s: %w\n%s", spec.Context, b.Tool, step, err, strings.Join(tail.lines, "\n"))
	}
	return nil
}

// lineTail keeps the last lines of a build's output, and the last step
// it announced.
type lineTail struct {
	max   int
	lines []string
	step  string
}

func (t *lineTail) add(line string) {
	if s, ok := stepOf(line); ok {
		t.step = s
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[1:]
	}
}

// stepOf recognises the step lines of buildah ("STEP 2/3: RUN make") and
// BuildKit ("#7 [2/3] RUN make").
func stepOf(line string) (string, bool) {
	if strings.HasPrefix(line, "STEP ") {
		return line, true
	}
	if strings.HasPrefix(line, "#") {
		if i := strings.Index(line, " ["); i > 0 && strings.Contains(line[i:], "] ") {
			return strings.TrimSpace(line[i+1:]), true
		}
	}
	return "", false
}

// loopbackRef says whether a reference names a registry on loopback (the
// embedded one), which serves plain HTTP.
func loopbackRef(ref string) bool {
	if ref == "" {
		return false
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return false
	}
	host := r.Context().RegistryStr()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

// loadOCIArchive unpacks an OCI layout tarball into dir (safely: nothing
// escapes it) and returns its one image, read from there.
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
	return oneImage(dir)
}

// oneImage returns the one image of an OCI layout.
func oneImage(dir string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the build's OCI layout: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("the build's OCI layout holds %d manifests, want 1", len(im.Manifests))
	}
	return idx.Image(im.Manifests[0].Digest)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
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
