package catalog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/socle-dev/socle/internal/config"
)

// Target is the registry catalog images are pushed to and read from.
type Target struct {
	// Registry is host[:port], with an optional path prefix, under which
	// repositories without a host are placed (the embedded registry's
	// address, or registry.url of socle.yaml).
	Registry string
	// InsecureUnsafe allows plain HTTP to a registry beyond loopback.
	InsecureUnsafe bool
	// Remote are the go-containerregistry options: credentials, transport.
	Remote []remote.Option
}

// TargetFor is the registry catalog images go to: registry when given,
// else registry.url of socle.yaml, else the embedded registry of a
// running socle serve. Credentials come from the docker config.
func TargetFor(cfg *config.File, registry string, insecureUnsafe bool) Target {
	return Target{
		Registry:       cmp.Or(registry, cfg.Registry.URL, cfg.Server.RegistryAddr, "127.0.0.1:5050"),
		InsecureUnsafe: insecureUnsafe || cfg.Registry.InsecureUnsafe,
		Remote:         []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain)},
	}
}

// Repository returns the full repository of a catalog repository name.
func (t Target) Repository(repo string) (name.Repository, error) {
	full := repo
	if first, _, ok := strings.Cut(repo, "/"); !ok || !(strings.ContainsAny(first, ".:") || first == "localhost") {
		if t.Registry == "" {
			return name.Repository{}, fmt.Errorf("repository %q names no registry, and none is configured", repo)
		}
		full = strings.TrimSuffix(t.Registry, "/") + "/" + repo
	}
	return name.NewRepository(full, t.nameOptions()...)
}

// Reference parses a reference with the target's options.
func (t Target) Reference(ref string) (name.Reference, error) {
	return name.ParseReference(ref, t.nameOptions()...)
}

func (t Target) nameOptions() []name.Option {
	if t.InsecureUnsafe {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (t Target) options(ctx context.Context) []remote.Option {
	return append([]remote.Option{remote.WithContext(ctx)}, t.Remote...)
}

// TagDigest returns the digest a tag points at, or "" when it does not
// exist.
func (t Target) TagDigest(ctx context.Context, ref name.Reference) (string, error) {
	desc, err := remote.Head(ref, t.options(ctx)...)
	if err != nil {
		if isNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("looking up %s: %w", ref, err)
	}
	return desc.Digest.String(), nil
}

func isNotFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && (te.StatusCode == http.StatusNotFound)
}
