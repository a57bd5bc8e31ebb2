package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/client"
	"github.com/socle-dev/socle/internal/sbom"
	"github.com/socle-dev/socle/internal/scan"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

func newSBOMImportCmd(g *globals) *cobra.Command {
	var image, output string
	var keys []string
	cmd := &cobra.Command{
		Use:   "import FILE --image REF",
		Short: "Index an SBOM another tool made (CycloneDX 1.2-1.6, SPDX 2.1-2.3 JSON) as an image socle watches",
		Long: `import reads a CycloneDX or SPDX JSON SBOM (from syft, trivy, a vendor...)
and indexes its packages as the image REF (REPOSITORY[:TAG][@DIGEST]; the
digest may come from the document): they are matched against advisories
and watched like a scanned image's. Packages socle cannot give an
ecosystem are kept and listed, and what was not understood is said.`,
		Example: `  socle sbom import app.cdx.json --image registry.example/apps/shop:1.4@sha256:…
  syft registry.example/apps/shop:1.4 -o spdx-json | socle sbom import - --image registry.example/apps/shop:1.4`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := textOrJSON(output); err != nil {
				return err
			}
			if image == "" {
				return usageError(errors.New("--image REF is required"))
			}
			ctx := cmd.Context()
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), sbom.MaxImport+1))
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return err
			}
			var res scan.Imported
			note := ""
			if len(keys) > 0 {
				// A cosign attestation: verified here, with the keys given,
				// then its SBOM imported as any other.
				verifiers, err := loadVerifiers(keys)
				if err != nil {
					return err
				}
				var key string
				if data, image, key, err = scan.AttestedSBOM(data, verifiers, image); err != nil {
					return err
				}
				note = "attestation verified with " + key
			}
			err = g.either(ctx, func(c *client.Client) error {
				var body struct {
					Digest     string         `json:"digest"`
					Repository string         `json:"repository"`
					Format     string         `json:"format"`
					Ecosystems map[string]int `json:"ecosystems"`
					Unmapped   []sbom.Package `json:"unmapped"`
					Problems   []string       `json:"problems"`
					Packages   int            `json:"packages"`
					Findings   []vuln.Finding `json:"findings"`
				}
				b, err := c.Raw(ctx, "POST", "/api/v1/sboms?"+url.Values{"image": {image}}.Encode(), bytes.NewReader(data), "application/json")
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &body); err != nil {
					return fmt.Errorf("the server's answer: %w", err)
				}
				res = scan.Imported{Imported: &sbom.Imported{Format: body.Format, Ecosystems: body.Ecosystems, Unmapped: body.Unmapped, Problems: body.Problems},
					Digest: body.Digest, Repository: body.Repository, Findings: body.Findings}
				res.Inventory.Packages = make([]sbom.Package, body.Packages)
				return nil
			}, func(st store.Store) error {
				sc, err := newScanner(g, st)
				if err != nil {
					return err
				}
				r, err := sc.ImportSBOM(ctx, st, data, image, time.Now())
				if err != nil {
					return err
				}
				res = *r
				return nil
			})
			if err != nil {
				return err
			}
			if note != "" {
				res.Problems = append(res.Problems, note)
			}
			return writeImported(g, output, &res)
		},
	}
	cmd.Flags().StringVar(&image, "image", "", "the image the SBOM describes: REPOSITORY[:TAG][@DIGEST]")
	cmd.Flags().StringSliceVar(&keys, "attestation-key", nil, "FILE is a cosign SBOM attestation (DSSE envelope): import it only when one of these public keys signed it")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func writeImported(g *globals, output string, res *scan.Imported) error {
	if output == "json" {
		return writeJSON(g.out, res)
	}
	fmt.Fprintf(g.out, "%s@%s: %s, %d packages", res.Repository, res.Digest, res.Format, len(res.Inventory.Packages))
	var ecos []string
	for e, n := range res.Ecosystems {
		ecos = append(ecos, fmt.Sprintf("%s %d", e, n))
	}
	sort.Strings(ecos)
	fmt.Fprintf(g.out, " (%s); %d open findings\n", strings.Join(ecos, ", "), len(res.Findings))
	for _, p := range res.Problems {
		fmt.Fprintln(g.out, "  note: "+p)
	}
	return nil
}

func loadVerifiers(files []string) ([]*sign.Verifier, error) {
	var out []*sign.Verifier
	for _, f := range files {
		v, err := sign.LoadVerifierFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
