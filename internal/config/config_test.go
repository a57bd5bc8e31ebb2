package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/config"
)

func TestParse(t *testing.T) {
	f, err := config.Parse("socle.yaml", []byte(`
server:
  addr: 127.0.0.1:9090
  workers: 3
watch:
  - repository: registry.example/team/app
    tags: ["1.*", latest]
    interval: 30s
feeds:
  - name: go
    url: /data/go.zip
`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Server.Addr != "127.0.0.1:9090" || f.Server.Workers != 3 || f.Watch[0].WatchInterval() != 30*time.Second || f.Feeds[0].SyncInterval() != time.Hour {
		t.Fatalf("parsed %+v", f)
	}
	if !f.Watch[0].Matches("1.2") || !f.Watch[0].Matches("latest") || f.Watch[0].Matches("2.0") {
		t.Fatal("tag patterns")
	}
}

func TestErrorsNameLineAndField(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
		line            int
	}{
		{"unknown field", "server:\n  adr: x\n", "field adr not found", 2},
		{"bad addr", "server:\n  addr: nowhere\n", "server.addr", 2},
		{"bad duration", "watch:\n  - repository: a/b\n    interval: soon\n", "not a duration", 3},
		{"short repository", "watch:\n  - repository: app\n", "watch[0].repository", 2},
		{"bad glob", "watch:\n  - repository: a/b\n    tags: ['[']\n", "watch[0].tags[0]", 3},
		{"duplicate feed", "feeds:\n  - {name: a, url: x}\n  - {name: a, url: y}\n", "feeds[1].name", 3},
		{"alias", "server: &s\n  addr: a:1\nregistry: *s\n", "anchors and aliases", 1},
		{"syntax", "server: [\n", "did not find", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("socle.yaml", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			var ce *config.Error
			var ces config.Errors
			line := 0
			switch {
			case errors.As(err, &ce):
				line = ce.Line
			case errors.As(err, &ces):
				line = ces[0].Line
			}
			if line != tc.line {
				t.Fatalf("line %d, want %d (%v)", line, tc.line, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("server:\n  addr: 127.0.0.1:8080\nwatch:\n  - repository: a/b\n    tags: ['*']\n"))
	f.Add([]byte("feeds:\n  - {name: a, url: x, interval: 1h}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("environments:\n  - name: dev\n  - name: prod\n    repository: \"{{.Registry}}/prod/{{.Path}}\"\n    roles: [approver]\n    gates: {soak: 24h, max_severity: high, approvals: 2, policy: p.rego, signed_by: [k.pub], sbom_attestation: true}\n"))
	f.Add([]byte("webhooks:\n  - {url: 'https://h/x', events: [findings.new], secret_env: S}\nremediation:\n  git: [{repo: /srv/git, paths: [apps/]}]\nsigning: {key: k.key}\n"))
	f.Add([]byte("environments:\n  - name: 'a b'\n    repository: '{{.Nope'\n    gates: {max_severity: severe, approvals: -1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = config.Parse("fuzz.yaml", data)
	})
}

func TestSetPins(t *testing.T) {
	p := filepath.Join(t.TempDir(), "socle.yaml")
	src := `# hand-made catalog
images:
  - name: debian
    repository: socle/debian
    version: "12"
    build:
      assemble:
        suite: bookworm
        # pinned until a fix lands
        packages: [base-files, libpcre2-8-0=10.42-1, zlib1g=1:1.2.13.dfsg-1]
`
	os.WriteFile(p, []byte(src), 0o644)
	if err := config.SetPins(p, "debian", map[string]string{"libpcre2-8-0": "10.42-1+deb12u2", "base-files": "99"}); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(f.Images[0].Build.Assemble.Packages, " ")
	if got != "base-files libpcre2-8-0=10.42-1+deb12u2 zlib1g=1:1.2.13.dfsg-1" {
		t.Fatalf("packages %s", got)
	}
	b, _ := os.ReadFile(p)
	if !strings.Contains(string(b), "# pinned until a fix lands") {
		t.Fatalf("comments lost:\n%s", b)
	}
	if err := config.SetPins(p, "nope", map[string]string{"x": "1"}); err == nil {
		t.Fatal("no error for a missing image")
	}
}
