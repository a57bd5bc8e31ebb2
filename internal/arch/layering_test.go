package arch_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/socle-dev/socle"

// imports returns, for each package of the module, its module-internal
// imports (tests excluded).
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module+"/")
		m[pkg] = nil
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, module+"/") {
				m[pkg] = append(m[pkg], strings.TrimPrefix(imp, module+"/"))
			}
		}
	}
	return m
}

// TestLayering enforces the rules of docs/style.md: value types stay free of
// dependencies, the web assets belong to the server, nothing imports the
// command line, and test helpers stay out of production code.
func TestLayering(t *testing.T) {
	for pkg, deps := range imports(t) {
		for _, d := range deps {
			switch {
			case pkg == "internal/oci":
				t.Errorf("internal/oci imports %s: it must import no internal package", d)
			case d == "internal/web" && pkg != "internal/server":
				t.Errorf("%s imports internal/web: only internal/server may", pkg)
			case d == "internal/cli" && pkg != "cmd/socle":
				t.Errorf("%s imports internal/cli", pkg)
			case (d == "internal/testenv" || strings.HasSuffix(d, "test")) && !strings.HasSuffix(pkg, "test") && !strings.HasPrefix(pkg, "bench/"):
				t.Errorf("%s imports the test helper %s", pkg, d)
			case pkg == "internal/store" && strings.HasPrefix(d, "internal/") && d != "internal/store":
				t.Errorf("internal/store imports %s: the contract depends on nothing", d)
			case pkg == "internal/layer" && d != "internal/oci":
				t.Errorf("internal/layer imports %s", d)
			}
		}
	}
}
