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
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/source"
	"github.com/spf13/cobra"
)

func newAttestCmd(g *globals) *cobra.Command {
	var key, predicate, typ string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "attest IMAGE",
		Short: "Attach a signed in-toto attestation (default: socle's CycloneDX SBOM of the image)",
		Long: `attest signs an in-toto statement about the image, as cosign attest --key does:
--type T with --predicate FILE, or without --predicate the SBOM socle makes
of the image, CycloneDX (--type cyclonedx) or SPDX (--type spdx, stored as
cosign's spdxjson: cosign verify-attestation --type spdxjson checks it).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, ref, err := signerAndDigest(ctx, key, args[0], insecure)
			if err != nil {
				return err
			}
			if typ == "spdx" {
				// cosign's spdx type keeps the document as a string; its
				// spdxjson type, as the JSON object consumers read.
				typ = "spdxjson"
			}
			var body []byte
			if predicate != "" {
				if body, err = os.ReadFile(predicate); err != nil {
					return err
				}
			} else {
				if typ != "cyclonedx" && typ != "spdxjson" {
					return usageError(errors.New("without --predicate, socle makes only --type cyclonedx or spdx (its SBOM)"))
				}
				if body, err = sbomOf(ctx, g, ref, typ, insecure); err != nil {
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
	cmd.Flags().StringVar(&typ, "type", "cyclonedx", "predicate type, as cosign attest --type (spdx: socle's SPDX SBOM, as spdxjson)")
	insecureFlag(cmd.Flags(), &insecure)
	return cmd
}

// sbomOf is socle's SBOM of a registry image, CycloneDX or (typ
// spdxjson) SPDX.
func sbomOf(ctx context.Context, g *globals, ref name.Digest, typ string, insecure bool) ([]byte, error) {
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
	img := sbom.ImageName{Repository: ref.Context().Name()}
	if typ == "spdxjson" {
		err = sbom.WriteSPDX(&b, sbom.SPDX(inv, img))
	} else {
		err = sbom.WriteCycloneDX(&b, sbom.CycloneDX(inv, img))
	}
	return b.Bytes(), err
}
