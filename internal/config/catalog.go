package config

// Image is one entry of the catalog: an image socle builds.
type Image struct {
	// Name identifies the image in the catalog (and in `socle build NAME`).
	Name string `yaml:"name"`
	// Repository is where it is pushed: a path in the configured
	// registry ("platform/java"), or a full host/path.
	Repository string `yaml:"repository"`
	// Parent is the catalog name of the image it is built on, or a
	// reference to an image socle does not build (registry/repo:tag).
	// An assembled base has none.
	Parent string `yaml:"parent"`
	// Version of this image (17.0.9); the tag templates use it.
	Version string `yaml:"version"`
	// Build says how the image is made: exactly one of the three.
	Build Build `yaml:"build"`
	// Tags are the tag templates; empty means the default convention.
	Tags TagTemplates `yaml:"tags"`
	// Rebase "safe" declares that the image's own layers do not depend on
	// the parent's content, so remediation may rebase them onto a new
	// parent instead of rebuilding (append-layer images are always safe).
	Rebase string `yaml:"rebase"`
}

// Build is one of the builders.
type Build struct {
	Assemble   *AssembleBuild   `yaml:"assemble"`
	Append     *AppendBuild     `yaml:"append"`
	Dockerfile *DockerfileBuild `yaml:"dockerfile"`
}

// AssembleBuild makes a base from Debian packages.
type AssembleBuild struct {
	Suite    string   `yaml:"suite"`
	Packages []string `yaml:"packages"`
	// Security includes SUITE-security (default true).
	Security *bool `yaml:"security"`
	// Mirror and SecurityMirror override the host's apt sources.
	Mirror         string `yaml:"mirror"`
	SecurityMirror string `yaml:"security_mirror"`
	Arch           string `yaml:"arch"`
	// Epoch is SOURCE_DATE_EPOCH, in seconds (default 0).
	Epoch  int64       `yaml:"epoch"`
	Config ImageConfig `yaml:"config"`
}

// AppendBuild adds files as layers on the parent.
type AppendBuild struct {
	Layers []AppendLayer `yaml:"layers"`
	Epoch  int64         `yaml:"epoch"`
	Config ImageConfig   `yaml:"config"`
}

// AppendLayer copies a local file or directory (relative to socle.yaml)
// to an absolute path in the image.
type AppendLayer struct {
	From string `yaml:"from"`
	To   string `yaml:"to"`
	UID  int    `yaml:"uid"`
	GID  int    `yaml:"gid"`
}

// DockerfileBuild runs a Dockerfile build with buildah, BuildKit or
// docker. The Dockerfile receives the parent, by digest, as the build
// argument ParentArg (default BASE_IMAGE): it starts ARG BASE_IMAGE,
// FROM ${BASE_IMAGE}.
type DockerfileBuild struct {
	Context   string            `yaml:"context"`
	File      string            `yaml:"file"`
	Target    string            `yaml:"target"`
	Args      map[string]string `yaml:"args"`
	ParentArg string            `yaml:"parent_arg"`
	// Platforms are the platforms to build for; socle builds one per
	// image (default the host's).
	Platforms []string `yaml:"platforms"`
	// Builder forces buildah, buildctl or docker (default the first
	// that works, in that order).
	Builder string `yaml:"builder"`
}

// ImageConfig sets the image configuration.
type ImageConfig struct {
	User       string            `yaml:"user"`
	Env        map[string]string `yaml:"env"`
	Labels     map[string]string `yaml:"labels"`
	Entrypoint []string          `yaml:"entrypoint"`
	Cmd        []string          `yaml:"cmd"`
	WorkingDir string            `yaml:"workdir"`
}

// TagTemplates are Go templates over the version, the parent and the
// revision; see internal/catalog for the fields.
type TagTemplates struct {
	Immutable string   `yaml:"immutable"`
	Floating  []string `yaml:"floating"`
}
