package cli

import (
	"fmt"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/spf13/cobra"

	"github.com/socle-dev/socle/internal/assemble"
)

func newAssembleCmd(g *globals) *cobra.Command {
	var (
		spec       assemble.Spec
		noSecurity bool
		epoch      int64
		ociDir     string
		tarFile    string
		tag        string
	)
	cmd := &cobra.Command{
		Use:   "assemble PACKAGES...",
		Short: "Assemble a Debian base image from packages, without a daemon",
		Long: `assemble resolves PACKAGES and their dependencies from the Debian archive
(the mirror of the host's apt configuration unless --mirror is given),
verifies the Release signature and every hash, unpacks the packages into
one layer with a dpkg status database, and writes the image. The same
inputs give the same digest. Packages are cached in DATA_DIR/apt-cache.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (ociDir == "") == (tarFile == "") {
				return usageError(fmt.Errorf("give exactly one of --oci-layout and --tarball"))
			}
			spec.Packages, spec.Security, spec.Epoch = args, !noSecurity, time.Unix(epoch, 0).UTC()
			asm, err := assembler(g)
			if err != nil {
				return err
			}
			start := time.Now()
			img, res, err := asm.Assemble(cmd.Context(), spec)
			if err != nil {
				return err
			}
			digest, err := img.Digest()
			if err != nil {
				return err
			}
			if ociDir != "" {
				p, err := layout.Write(ociDir, empty.Index)
				if err != nil {
					return err
				}
				if err := p.AppendImage(img); err != nil {
					return err
				}
			} else {
				ref, err := name.NewTag(tag)
				if err != nil {
					return usageError(fmt.Errorf("--tag: %w", err))
				}
				f, err := os.Create(tarFile)
				if err != nil {
					return err
				}
				if err := tarball.Write(ref, img, f); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
			}
			security := 0
			for _, p := range res.Packages {
				if p.Suite == spec.Suite+"-security" {
					security++
				}
			}
			fmt.Fprintf(g.out, "%s  %d packages (%d from %s-security), %.1fs\n", digest, len(res.Packages), security, spec.Suite, time.Since(start).Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&spec.Suite, "suite", "bookworm", "Debian suite")
	f.StringVar(&spec.Arch, "arch", "", "architecture (default: the host's)")
	f.StringVar(&spec.Mirror, "mirror", "", "Debian mirror URL (default: the host's apt sources)")
	f.StringVar(&spec.SecurityMirror, "security-mirror", "", "security mirror URL (default: the host's apt sources)")
	f.BoolVar(&noSecurity, "no-security", false, "leave out SUITE-security updates")
	f.Int64Var(&epoch, "epoch", envInt("SOURCE_DATE_EPOCH"), "SOURCE_DATE_EPOCH: the time of every file and of the image")
	f.StringVar(&spec.Config.User, "user", "", "user of the image (default nonroot, 65532)")
	f.StringVar(&ociDir, "oci-layout", "", "write an OCI layout directory")
	f.StringVar(&tarFile, "tarball", "", "write a docker save tarball")
	f.StringVar(&tag, "tag", "socle.local/assembled:latest", "tag recorded in --tarball")
	return cmd
}

func envInt(k string) int64 {
	var n int64
	if v := os.Getenv(k); v != "" {
		fmt.Sscan(v, &n)
	}
	return n
}
