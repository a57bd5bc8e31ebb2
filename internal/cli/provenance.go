package cli

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/provenance"
	"github.com/socle-dev/socle/internal/sign"
)

func newVerifyProvenanceCmd(g *globals) *cobra.Command {
	var cfgPath, output string
	var keys []string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "verify-provenance IMAGE",
		Short: "Check the signed SLSA provenance socle attached to an image it built",
		Long: `verify-provenance verifies the SLSA v1 provenance attestation of IMAGE with
--key (default the public half of signing.key, or of socle's own key in
DATA_DIR/keys) and prints what it records: the build type and builder, the
Dockerfile and context digests, the build arguments, and the base digest.
It exits 1 when the image has no provenance signed by those keys. cosign
checks the same attestation with
  cosign verify-attestation --type slsaprovenance1 --key KEY IMAGE`,
		Example: `  socle verify-provenance registry.example/apps/shop:1.2.0 --key release.pub`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := textOrJSON(output); err != nil {
				return err
			}
			cfg, err := loadConfig(g, cfgPath)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ref, err := resolveDigest(ctx, args[0], insecure)
			if err != nil {
				return err
			}
			if len(keys) == 0 {
				if k := cfg.Resolve(cfg.Signing.Key); k != "" {
					keys = []string{strings.TrimSuffix(k, ".key") + ".pub"}
				} else {
					keys = []string{filepath.Join(sign.OwnKeyDir(g.dataDir), "socle.pub")}
				}
			}
			var verifiers []*sign.Verifier
			for _, k := range keys {
				v, err := sign.LoadVerifierFile(k)
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				verifiers = append(verifiers, v)
			}
			pred, key, err := provenance.Verify(ctx, ref, verifiers, remote.WithAuthFromKeychain(authn.DefaultKeychain))
			if err != nil {
				return &statusError{code: exitError, msg: "socle: " + err.Error()}
			}
			if output == "json" {
				return writeJSON(g.out, pred)
			}
			bd := pred.BuildDefinition
			fmt.Fprintf(g.out, "%s: SLSA provenance verified with %s\n  build type  %s\n  builder     %s %v\n  built       %s → %s\n",
				ref, key, bd.BuildType, pred.RunDetails.Builder.ID, pred.RunDetails.Builder.Version,
				pred.RunDetails.Metadata.StartedOn.Format("2006-01-02T15:04:05Z"), pred.RunDetails.Metadata.FinishedOn.Format("2006-01-02T15:04:05Z"))
			for _, k := range slices.Sorted(maps.Keys(bd.ExternalParameters)) {
				fmt.Fprintf(g.out, "  %-11s %v\n", k, bd.ExternalParameters[k])
			}
			for _, d := range bd.ResolvedDependencies {
				if d.Name == "base" {
					fmt.Fprintf(g.out, "  base        %s@sha256:%s\n", strings.TrimPrefix(d.URI, "oci://"), d.Digest["sha256"])
				}
			}
			return nil
		},
	}
	configFlag(cmd.Flags(), &cfgPath)
	cmd.Flags().StringSliceVar(&keys, "key", nil, "public keys the provenance must verify with")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	insecureFlag(cmd.Flags(), &insecure)
	return cmd
}
