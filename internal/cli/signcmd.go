package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/source"
)

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Signing keys (cosign format)"}
	var prefix string
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Generate a cosign key pair: PREFIX.key (encrypted with COSIGN_PASSWORD) and PREFIX.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kp, err := sign.GenerateKeyPair([]byte(os.Getenv("COSIGN_PASSWORD")))
			if err != nil {
				return err
			}
			priv, pub := prefix+".key", prefix+".pub"
			for _, f := range []string{priv, pub} {
				if _, err := os.Stat(f); err == nil {
					return fmt.Errorf("%s exists; not overwriting it", f)
				}
			}
			if err := os.WriteFile(priv, kp.Private, 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(pub, kp.Public, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "wrote %s and %s\n", priv, pub)
			if os.Getenv("COSIGN_PASSWORD") == "" {
				fmt.Fprintln(g.errOut, "warning: COSIGN_PASSWORD is empty: the private key is encrypted with an empty password")
			}
			return nil
		},
	}
	gen.Flags().StringVar(&prefix, "output-key-prefix", "cosign", "file name prefix of the pair")
	cmd.AddCommand(gen)
	return cmd
}

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

func newAttestCmd(g *globals) *cobra.Command {
	var key, predicate, typ string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "attest IMAGE",
		Short: "Attach a signed in-toto attestation (default: socle's CycloneDX SBOM of the image)",
		Long: `attest signs an in-toto statement about the image, as cosign attest --key does:
--type cyclonedx with --predicate FILE, or without --predicate the CycloneDX
SBOM socle makes of the image.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, ref, err := signerAndDigest(ctx, key, args[0], insecure)
			if err != nil {
				return err
			}
			var body []byte
			if predicate != "" {
				if body, err = os.ReadFile(predicate); err != nil {
					return err
				}
			} else {
				if typ != "cyclonedx" {
					return usageError(errors.New("without --predicate, only --type cyclonedx (socle's SBOM) can be made"))
				}
				if body, err = sbomOf(ctx, g, ref, insecure); err != nil {
					return err
				}
			}
			if err := s.Attest(ctx, ref, typ, body, time.Now(), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
				return err
			}
			fmt.Fprintf(g.out, "attested %s (%s)\n", ref, typ)
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "cosign.key", "private key (password in COSIGN_PASSWORD)")
	cmd.Flags().StringVar(&predicate, "predicate", "", "predicate file")
	cmd.Flags().StringVar(&typ, "type", "cyclonedx", "predicate type, as cosign attest --type")
	insecureFlag(cmd.Flags(), &insecure)
	return cmd
}

// sbomOf is socle's CycloneDX SBOM of a registry image.
func sbomOf(ctx context.Context, g *globals, ref name.Digest, insecure bool) ([]byte, error) {
	st, err := g.openStore(ctx)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	sc, err := newScanner(g, st)
	if err != nil {
		return nil, err
	}
	inv, _, err := sc.InventoryRef(ctx, oci.ImageRef{Transport: oci.TransportRegistry, Path: ref.String()}, source.Options{InsecureRegistryUnsafe: insecure}, nil)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = sbom.WriteCycloneDX(&b, sbom.CycloneDX(inv, sbom.ImageName{Repository: ref.Context().Name()}))
	return b.Bytes(), err
}

// signerAndDigest loads the key and resolves the image to its digest.
func signerAndDigest(ctx context.Context, key, image string, insecure bool) (*sign.Signer, name.Digest, error) {
	s, err := sign.LoadSignerFile(key)
	if err != nil {
		return nil, name.Digest{}, err
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(image, opts...)
	if err != nil {
		return nil, name.Digest{}, usageError(err)
	}
	if d, ok := ref.(name.Digest); ok {
		return s, d, nil
	}
	desc, err := remote.Head(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return nil, name.Digest{}, err
	}
	return s, ref.Context().Digest(desc.Digest.String()), nil
}
