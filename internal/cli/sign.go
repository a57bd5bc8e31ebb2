package cli

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/sign"
)

func newSignCmd(g *globals) *cobra.Command {
	var key string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "sign IMAGE",
		Short: "Sign an image with a cosign key (verifiable with cosign verify --key)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, ref, err := signerAndDigest(cmd.Context(), key, args[0], insecure)
			if err != nil {
				return err
			}
			if err := s.Sign(cmd.Context(), ref, nil, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "signed %s\n", ref)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "cosign.key", "private key (password in COSIGN_PASSWORD)")
	insecureFlag(cmd.Flags(), &insecure)
	return cmd
}

// signerAndDigest loads the key and resolves the image to its digest.
func signerAndDigest(ctx context.Context, key, image string, insecure bool) (*sign.Signer, name.Digest, error) {
	s, err := sign.LoadSignerFile(key)
	if err != nil {
		return nil, name.Digest{}, err
	}
	ref, err := resolveDigest(ctx, image, insecure)
	return s, ref, err
}

// resolveDigest resolves an image reference to its digest.
func resolveDigest(ctx context.Context, image string, insecure bool) (name.Digest, error) {
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(image, opts...)
	if err != nil {
		return name.Digest{}, usageError(err)
	}
	if d, ok := ref.(name.Digest); ok {
		return d, nil
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return name.Digest{}, err
	}
	return ref.Context().Digest(desc.Digest.String()), nil
}
