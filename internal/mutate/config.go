package mutate

import (
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrmutate "github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Config is what a build sets in the image configuration.
type Config struct {
	// User runs the image; the assembler creates "nonroot" (65532) and
	// uses it by default.
	User       string
	Env        map[string]string
	Labels     map[string]string
	Entrypoint []string
	Cmd        []string
	WorkingDir string
}

// Configure sets the image configuration: the platform (linux/arch),
// the creation time, and c merged over what the image has.
func Configure(img v1.Image, c Config, created time.Time, arch string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: created}
	applyConfig(&cf.Config, c)
	return ggcrmutate.ConfigFile(img, cf)
}

// applyConfig merges c into a runtime configuration.
func applyConfig(cfg *v1.Config, c Config) {
	if c.User != "" {
		cfg.User = c.User
	}
	if len(c.Env) > 0 {
		env := map[string]string{}
		var order []string
		for _, e := range cfg.Env {
			k, v, _ := strings.Cut(e, "=")
			if _, ok := env[k]; !ok {
				order = append(order, k)
			}
			env[k] = v
		}
		keys := make([]string, 0, len(c.Env))
		for k := range c.Env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, ok := env[k]; !ok {
				order = append(order, k)
			}
			env[k] = c.Env[k]
		}
		cfg.Env = nil
		for _, k := range order {
			cfg.Env = append(cfg.Env, k+"="+env[k])
		}
	}
	if len(c.Labels) > 0 {
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for k, v := range c.Labels {
			cfg.Labels[k] = v
		}
	}
	if c.Entrypoint != nil {
		cfg.Entrypoint = c.Entrypoint
	}
	if c.Cmd != nil {
		cfg.Cmd = c.Cmd
	}
	if c.WorkingDir != "" {
		cfg.WorkingDir = c.WorkingDir
	}
}
