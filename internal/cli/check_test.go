package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/cli"
	"github.com/socle-dev/socle/internal/testenv"
)

// TestCheckCommand: socle check's exit code and severity conventions are
// socle scan's; a manifest stream is read from standard input; a usage
// error is one.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	invalid := testenv.SharedData(t, "kubeconform", "fixtures", "invalid.yaml")
	if _, _, code := run(t, dir, "check", "--rules", "schema", "--exit-code", "3", invalid); code != 3 {
		t.Fatalf("invalid manifest: exit %d", code)
	}
	if _, _, code := run(t, dir, "check", "--rules", "schema", "--exit-code", "3", "--severity", "LOW", invalid); code != 0 {
		t.Fatalf("--severity LOW leaves a HIGH schema finding: exit %d", code)
	}
	if _, _, code := run(t, dir, "check", "--rules", "nonsense", invalid); code != 2 {
		t.Fatalf("unknown rule set: exit %d", code)
	}
	goat, err := os.ReadFile(testenv.SharedData(t, "k8s-manifests", "kubernetes-goat", "system-monitor__deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	root := cli.NewRoot(&out, &errOut)
	root.SetIn(bytes.NewReader(goat))
	root.SetArgs([]string{"--data-dir", dir, "check", "-o", "json", "--rules", "baseline", "-"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("%v: %s", err, errOut.String())
	}
	var rep struct {
		Findings []struct {
			Rule string `json:"rule"`
			File string `json:"file"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	rules := map[string]bool{}
	for _, f := range rep.Findings {
		rules[f.Rule] = true
		if f.File != "-" {
			t.Fatalf("file %q", f.File)
		}
	}
	if !rules["pss-privileged"] || !strings.Contains(string(goat), "privileged: true") {
		t.Fatalf("rules %v", rules)
	}
}
