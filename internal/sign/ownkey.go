package sign

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// OwnKey returns the key socle signs its own statements with (audit
// checkpoints, build provenance) and the path of its public half: the
// configured signing key when keyFile is set, else socle's own key in
// dir/socle.key, made on first use (unencrypted, mode 0600).
func OwnKey(keyFile, dir string) (*Signer, string, error) {
	if keyFile != "" {
		s, err := LoadSignerFile(keyFile)
		if err != nil {
			return nil, "", fmt.Errorf("signing key %s: %w", keyFile, err)
		}
		return s, strings.TrimSuffix(keyFile, ".key") + ".pub", nil
	}
	priv, pub := filepath.Join(dir, "socle.key"), filepath.Join(dir, "socle.pub")
	if b, err := os.ReadFile(priv); err == nil {
		s, err := LoadSigner(b, nil)
		return s, pub, err
	}
	kp, err := GenerateKeyPair(nil)
	if err != nil {
		return nil, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(priv, kp.Private, 0o600); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(pub, kp.Public, 0o644); err != nil {
		return nil, "", err
	}
	s, err := LoadSigner(kp.Private, nil)
	return s, pub, err
}

// OwnKeyDir is where socle keeps its own key under a data directory.
func OwnKeyDir(dataDir string) string { return filepath.Join(dataDir, "keys") }
