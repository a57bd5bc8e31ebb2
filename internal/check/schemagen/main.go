// Command schemagen adds a Kubernetes version's API schema to socle
// check. The schema is the structured one client-go ships (the typed
// schema of server-side apply, generated from the Kubernetes OpenAPI
// documents), read from the module proxy:
//
//	go run ./internal/check/schemagen v0.34.1    # writes internal/check/schemas/kubernetes-1.34.yaml
//
// client-go vX.Y.Z serves Kubernetes 1.Y.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

func main() {
	if len(os.Args) != 2 || !strings.HasPrefix(os.Args[1], "v0.") {
		fmt.Fprintln(os.Stderr, "usage: schemagen vX.Y.Z (a client-go version)")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "schemagen:", err)
		os.Exit(1)
	}
}

func run(version string) error {
	out, err := exec.Command("go", "mod", "download", "-json", "k8s.io/client-go@"+version).Output()
	if err != nil {
		return fmt.Errorf("go mod download k8s.io/client-go@%s: %w", version, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return errors.New("go mod download gave no directory")
	}
	src, err := os.ReadFile(filepath.Join(mod.Dir, "applyconfigurations", "internal", "internal.go"))
	if err != nil {
		return err
	}
	const open = "typed.YAMLObject(`"
	i := bytes.Index(src, []byte(open))
	if i < 0 {
		return errors.New("no schemaYAML in client-go's applyconfigurations/internal")
	}
	rest := src[i+len(open):]
	j := bytes.IndexByte(rest, '`')
	if j < 0 {
		return errors.New("unterminated schemaYAML")
	}
	minor := strings.Split(strings.TrimPrefix(version, "v0."), ".")[0]
	dst := filepath.Join("internal", "check", "schemas", "kubernetes-1."+minor+".yaml")
	head := "# Kubernetes 1." + minor + " API schema: the structured schema of k8s.io/client-go@" + version +
		" (applyconfigurations/internal), written by go run ./internal/check/schemagen " + version + ". Do not edit.\n"
	if err := os.WriteFile(dst, append([]byte(head), rest[:j]...), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d bytes of schema from k8s.io/client-go@%s\n", dst, j, version)
	return nil
}
