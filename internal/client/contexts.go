package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Context is one server the CLI talks to, and the token it uses there.
type Context struct {
	Server string `json:"server"`
	Token  string `json:"token"`
	// CAFile, when set, is the PEM bundle the server's certificate is
	// checked against (beside the system's roots).
	CAFile string `json:"ca_file,omitempty"`
}

// Contexts are the servers the CLI knows, kept in the user's
// configuration directory with mode 0600.
type Contexts struct {
	Current  string             `json:"current"`
	Contexts map[string]Context `json:"contexts"`
	path     string
}

// ContextsPath is where the contexts are kept: SOCLE_CONFIG, else
// socle/contexts.json in the user's configuration directory.
func ContextsPath() (string, error) {
	if p := os.Getenv("SOCLE_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no configuration directory for socle's contexts: %w (set SOCLE_CONFIG)", err)
	}
	return filepath.Join(dir, "socle", "contexts.json"), nil
}

// LoadContexts reads the contexts; none yet is not an error.
func LoadContexts() (*Contexts, error) {
	p, err := ContextsPath()
	if err != nil {
		return nil, err
	}
	c := &Contexts{Contexts: map[string]Context{}, path: p}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if c.Contexts == nil {
		c.Contexts = map[string]Context{}
	}
	return c, nil
}

// Save writes the contexts, readable by the user only.
func (c *Contexts) Save() error {
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".contexts-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.path)
}

// Names lists the contexts, sorted.
func (c *Contexts) Names() []string {
	var out []string
	for n := range c.Contexts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Active returns the current context, if any.
func (c *Contexts) Active() (Context, bool) {
	ctx, ok := c.Contexts[c.Current]
	return ctx, ok && ctx.Server != ""
}
