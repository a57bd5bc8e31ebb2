package cli

import (
	"fmt"
	"os"

	"github.com/socle-dev/socle/internal/sign"
	"github.com/spf13/cobra"
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
