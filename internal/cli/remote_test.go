package cli_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/oci"
	socleserver "github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

// remoteCLI runs the socle binary as a client of a server: SOCLE_SERVER
// and a token, a home and a data directory of its own that hold no
// database, and no access to the server's.
type remoteCLI struct {
	t      *testing.T
	server string
	home   string
	data   string
}

func (c *remoteCLI) run(token string, stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(socleBinary(c.t), args...)
	cmd.Env = append(os.Environ(), "SOCLE_SERVER="+c.server, "SOCLE_TOKEN="+token, "HOME="+c.home,
		"SOCLE_DATA_DIR="+c.data, "SOCLE_CONFIG="+filepath.Join(c.home, "contexts.json"), "XDG_CONFIG_HOME="+c.home)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

// must runs a command that must succeed, and returns its output.
func (c *remoteCLI) must(token string, args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(token, "", args...)
	if code != 0 {
		c.t.Fatalf("socle %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// refused runs a command that the server must refuse for the token's
// role, naming the role that may.
func (c *remoteCLI) refused(token, role string, args ...string) {
	c.t.Helper()
	out, errOut, code := c.run(token, "", args...)
	if code == 0 || !strings.Contains(errOut, "allow") || !strings.Contains(errOut, role) {
		c.t.Fatalf("socle %s should be refused (%s needed): exit %d\n%s%s", strings.Join(args, " "), role, code, out, errOut)
	}
}

func freePort(t *testing.T) string {
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

var tokenLine = regexp.MustCompile(`^socle_[A-Za-z0-9_]+$`)

// TestCLIAgainstServer runs the lifecycle with the CLI binary as a client
// of a real socle serve, on SQLite and on PostgreSQL: tokens of each
// role, push, scan --upload, promote, two approvals, rollback, exposure,
// builds and remediation as server jobs, VEX, and audit verify; each
// role's refusals; and no command opens a database.
func TestCLIAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the socle binary")
	}
	t.Run("sqlite", func(t *testing.T) { testCLIAgainstServer(t) })
	t.Run("postgres", func(t *testing.T) {
		testCLIAgainstServer(t, "--database", testenv.FreshPostgres(t, testenv.Postgres(t)))
	})
}

func testCLIAgainstServer(t *testing.T, serveArgs ...string) {
	serverData := t.TempDir()
	reg := freePort(t)
	cfg := filepath.Join(serverData, "socle.yaml")
	os.MkdirAll(filepath.Join(serverData, "web"), 0o755)
	os.WriteFile(filepath.Join(serverData, "web", "index.html"), []byte("hand-made\n"), 0o644)
	writeFile(t, cfg, fmt.Sprintf(`feeds:
  - name: ghsa
    url: %s
environments:
  - name: dev
  - name: prod
    roles: [approver, admin]
    gates:
      approvals: 2
images:
  - name: web
    repository: apps/web
    parent: %s/apps/shop:1.0
    version: 1.0.0
    build: {append: {layers: [{from: web, to: /srv/web}]}}
`, testenv.SharedData(t, "osv", "ghsa"), reg), 0o644)
	// The server's advisories: the real Alpine 3.10 secdb, imported on the
	// server's host before it starts.
	imp := exec.Command(socleBinary(t), append([]string{"db", "import", "--local", "--data-dir", serverData, testenv.SharedData(t, "alpine", "vuln-list-alpine-3.10")}, serveArgs...)...)
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("db import: %v\n%s", err, out)
	}
	srv := startServe(t, serverData, append([]string{"--config", cfg, "--registry-addr", reg}, serveArgs...)...)
	// The CLI talks to the server through a proxy that notes every route
	// it calls.
	calls := &routeRecorder{}
	proxy := httptest.NewServer(calls.proxy(t, "http://"+srv.api))
	t.Cleanup(proxy.Close)
	c := &remoteCLI{t: t, server: proxy.URL, home: t.TempDir(), data: t.TempDir()}
	admin := srv.token

	steps := []testenv.Step{}
	tokens := map[string]string{}
	var shop, shop2 string
	var promotionID string
	steps = append(steps,
		testenv.Step{Name: "the admin makes tokens through the API", Run: func(t *testing.T) {
			for _, u := range []struct{ user, role string }{{"dave", "developer"}, {"alice", "approver"}, {"bob", "approver"}, {"vic", "viewer"}} {
				out := strings.TrimSpace(c.must(admin, "token", "create", "--user", u.user, "--role", u.role))
				if !tokenLine.MatchString(out) {
					t.Fatalf("token create printed %q", out)
				}
				tokens[u.user] = out
			}
			c.refused(tokens["dave"], "admin", "token", "list")
			if out := c.must(admin, "token", "list"); !strings.Contains(out, "approver") {
				t.Fatalf("token list:\n%s", out)
			}
		}},
		testenv.Step{Name: "login keeps a context; the token is checked", Run: func(t *testing.T) {
			out, errOut, code := c.run("", tokens["vic"]+"\n", "login", c.server, "--token-stdin", "--name", "test")
			if code != 0 || !strings.Contains(out, "as vic (viewer)") {
				t.Fatalf("login: %d %s %s", code, out, errOut)
			}
			info, err := os.Stat(filepath.Join(c.home, "contexts.json"))
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("contexts file: %v %v", info, err)
			}
			if _, errOut, code := c.run("", "socle_wrong\n", "login", c.server, "--token-stdin"); code == 0 || !strings.Contains(errOut, "refused the token") {
				t.Fatalf("a wrong token logged in: %s", errOut)
			}
		}},
		testenv.Step{Name: "push, and scan --upload from a CI agent", Run: func(t *testing.T) {
			ref, _ := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz"))
			img, err := source.Open(t.Context(), ref, source.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			tag, _ := name.NewTag(reg + "/apps/shop:1.0")
			if err := remote.Write(tag, img); err != nil {
				t.Fatal(err)
			}
			d, _ := img.Digest()
			shop = reg + "/apps/shop@" + d.String()
			// The agent scans where it runs (its own layer cache), the
			// server matches and keeps watching it.
			agent := &remoteCLI{t: t, server: c.server, home: c.home, data: t.TempDir()}
			out, errOut, code := agent.run(tokens["dave"], "", "scan", "--upload", "--name", reg+"/apps/shop:1.0", "-o", "json", "--exit-code", "3", ref.String())
			if code != 3 || !strings.Contains(errOut, "uploaded "+reg+"/apps/shop:1.0@"+d.String()) || !strings.Contains(out, `"findings"`) {
				t.Fatalf("scan --upload: %d\n%s\n%s", code, out, errOut)
			}
			c.refused(tokens["vic"], "developer", "sbom", "import", testenv.SharedData(t, "sbom-interop", "producers", "syft", "distroless-static-nonroot.syft-0.58.0.cdx-1.4.json"), "--image", reg+"/ext/distroless:nonroot")
			if out := c.must(tokens["vic"], "images"); !strings.Contains(out, "apps/shop") {
				t.Fatalf("images:\n%s", out)
			}
		}},
		testenv.Step{Name: "promote to dev, then prod with two approvals", Run: func(t *testing.T) {
			c.must(tokens["dave"], "promote", shop, "--to", "dev")
			c.refused(tokens["dave"], "approver", "promote", shop, "--to", "prod")
			out, errOut, code := c.run(tokens["alice"], "", "promote", shop, "--to", "prod")
			m := regexp.MustCompile(`promotion (\d+) awaits approval`).FindStringSubmatch(out)
			if code != 0 || m == nil {
				t.Fatalf("prod request: %d %s %s", code, out, errOut)
			}
			promotionID = m[1]
			if _, errOut, code := c.run(tokens["alice"], "", "approve", promotionID); code == 0 || !strings.Contains(errOut, "may not approve it") {
				t.Fatalf("the requester approved: %s", errOut)
			}
			c.refused(tokens["vic"], "approver", "approve", promotionID)
			c.must(tokens["bob"], "approve", promotionID)
			if out := c.must(admin, "approve", promotionID); !strings.Contains(out, "promotion "+promotionID+": ") {
				t.Fatalf("second approval:\n%s", out)
			}
			if out := c.must(tokens["vic"], "history", reg+"/apps/shop"); !strings.Contains(out, "prod") || !strings.Contains(out, "done") {
				t.Fatalf("history:\n%s", out)
			}
		}},
		testenv.Step{Name: "a second digest, and an admin's rollback", Run: func(t *testing.T) {
			// A hand-made second version of the shop.
			img2 := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "etc/release", Content: []byte("hand-made 2.0\n"), Mode: 0o644}}))
			tag2, _ := name.NewTag(reg + "/apps/shop:2.0")
			if err := remote.Write(tag2, img2); err != nil {
				t.Fatal(err)
			}
			d2, _ := img2.Digest()
			shop2 = reg + "/apps/shop@" + d2.String()
			c.must(tokens["dave"], "promote", shop2, "--to", "dev")
			c.must(admin, "promote", shop2, "--to", "prod", "--override", "--note", "hotfix")
			// Overriding the gates is an admin's: the developer is refused by
			// the environment's roles, the admin rolls prod back to shop.
			if _, errOut, code := c.run(tokens["dave"], "", "rollback", strings.Split(shop2, "@")[0], "--env", "prod", "--override"); code == 0 {
				t.Fatalf("a developer rolled prod back: %s", errOut)
			}
			if out := c.must(admin, "rollback", strings.Split(shop2, "@")[0], "--env", "prod", "--override", "--note", "back"); !strings.Contains(out, strings.Split(shop, "@")[1]) {
				t.Fatalf("rollback:\n%s", out)
			}
			if out := c.must(tokens["vic"], "exposure", "prod"); !strings.Contains(out, "prod") {
				t.Fatalf("exposure:\n%s", out)
			}
			if out := c.must(tokens["vic"], "drift"); !strings.Contains(out, "no drift") {
				t.Fatalf("drift:\n%s", out)
			}
		}},
		testenv.Step{Name: "builds, plans and remediation run as server jobs", Run: func(t *testing.T) {
			if out := c.must(tokens["vic"], "plan"); !strings.Contains(out, "web") {
				t.Fatalf("plan:\n%s", out)
			}
			c.refused(tokens["vic"], "developer", "build")
			out, errOut, code := c.run(tokens["dave"], "", "build")
			if code != 0 || !strings.Contains(out, "web succeeded") || !strings.Contains(errOut, "job ") {
				t.Fatalf("build: %d\n%s\n%s", code, out, errOut)
			}
			if out := c.must(tokens["vic"], "jobs"); !strings.Contains(out, "build") {
				t.Fatalf("jobs:\n%s", out)
			}
			c.must(tokens["dave"], "remediate", "--dry-run")
		}},
		testenv.Step{Name: "VEX needs an approver; db status reads the server", Run: func(t *testing.T) {
			vex := filepath.Join(t.TempDir(), "vex.json")
			writeFile(t, vex, `{"@context":"https://openvex.dev/ns/v0.2.0","@id":"https://test.invalid/vex/1","author":"hand-made","timestamp":"2026-01-01T00:00:00Z","version":1,
"statements":[{"vulnerability":{"name":"CVE-0000-0000"},"products":[{"@id":"pkg:apk/alpine/busybox"}],"status":"not_affected","justification":"vulnerable_code_not_in_execute_path"}]}`, 0o644)
			c.refused(tokens["dave"], "approver", "vex", "apply", vex)
			if out := c.must(tokens["alice"], "vex", "apply", vex); !strings.Contains(out, "1 statements") {
				t.Fatalf("vex apply:\n%s", out)
			}
			c.refused(tokens["vic"], "developer", "db", "sync")
			if out := c.must(tokens["dave"], "db", "sync"); !strings.HasPrefix(out, "ghsa: ") {
				t.Fatalf("db sync:\n%s", out)
			}
			if out := c.must(tokens["vic"], "db", "status"); !strings.Contains(out, "ECOSYSTEM") || !strings.Contains(out, "ghsa") {
				t.Fatalf("db status:\n%s", out)
			}
		}},
		testenv.Step{Name: "the audit log verifies through the API", Run: func(t *testing.T) {
			c.refused(tokens["vic"], "approver", "audit", "log")
			c.refused(tokens["dave"], "admin", "audit", "checkpoint")
			c.must(admin, "audit", "checkpoint")
			// The auditor has a copy of the checkpoints and the public key.
			out := c.must(tokens["alice"], "audit", "verify", "--checkpoints", filepath.Join(serverData, "audit-checkpoints"),
				"--key", filepath.Join(serverData, "keys", "socle.pub"))
			if !strings.Contains(out, "intact") {
				t.Fatalf("audit verify:\n%s", out)
			}
			if out := c.must(tokens["alice"], "audit", "log", "--limit", "1000"); !strings.Contains(out, "promotion.done") || !strings.Contains(out, "sbom.import") {
				t.Fatalf("audit log:\n%s", out)
			}
		}},
		testenv.Step{Name: "no command opened a database", Run: func(t *testing.T) {
			entries, _ := os.ReadDir(c.data)
			for _, e := range entries {
				t.Errorf("the client's data directory holds %s", e.Name())
			}
		}},
		testenv.Step{Name: "every route the CLI called is in the API and its OpenAPI document, and every command it covers called one", Run: func(t *testing.T) {
			calls.check(t, cliRoutes)
		}},
	)
	// Each step's failures are its own.
	for i := range steps {
		run := steps[i].Run
		steps[i].Run = func(t *testing.T) { c.t = t; run(t) }
	}
	testenv.RunSteps(t, steps)
}

// cliRoutes are the API routes the CLI's remote commands call (the
// OpenAPI document describes each, as a server test checks).
var cliRoutes = []string{
	"GET /api/v1/whoami",                        // login
	"POST /api/v1/tokens", "GET /api/v1/tokens", // token create, list
	"POST /api/v1/sboms",                        // scan --upload, sbom import
	"GET /api/v1/images",                        // images
	"POST /api/v1/promotions",                   // promote
	"POST /api/v1/promotions/{id}/approve",      // approve
	"GET /api/v1/promotions",                    // history, promote list
	"POST /api/v1/rollback",                     // rollback
	"GET /api/v1/exposure",                      // exposure
	"GET /api/v1/drift",                         // drift
	"GET /api/v1/plan",                          // plan
	"POST /api/v1/builds",                       // build
	"POST /api/v1/remediations",                 // remediate
	"GET /api/v1/jobs", "GET /api/v1/jobs/{id}", // jobs, following a build
	"POST /api/v1/vex",               // vex apply
	"GET /api/v1/advisories",         // db status
	"POST /api/v1/feeds/sync",        // db sync
	"GET /api/v1/audit",              // audit log, verify
	"POST /api/v1/audit/checkpoints", // audit checkpoint
}

// routeRecorder notes the route patterns of the requests it forwards.
type routeRecorder struct {
	mu     sync.Mutex
	routes map[string]int
	mux    *http.ServeMux
}

func (rr *routeRecorder) proxy(t *testing.T, target string) http.Handler {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "routes.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	api, err := socleserver.NewAPI(socleserver.Deps{Store: st, Auth: auth.NewAuthenticator(st)})
	if err != nil {
		t.Fatal(err)
	}
	rr.routes, rr.mux = map[string]int{}, http.NewServeMux()
	for _, p := range api.APIRoutes() {
		rr.mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := rr.mux.Handler(r)
		if pattern == "" {
			pattern = "UNKNOWN " + r.Method + " " + r.URL.Path
		}
		rr.mu.Lock()
		rr.routes[pattern]++
		rr.mu.Unlock()
		rp.ServeHTTP(w, r)
	})
}

// check: no call went to a route the API does not have, every call is
// one the CLI says it makes, and each of those was made.
func (rr *routeRecorder) check(t *testing.T, want []string) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	for p := range rr.routes {
		if strings.HasPrefix(p, "UNKNOWN ") || !slices.Contains(want, p) {
			t.Errorf("the CLI called %s, which is not among the routes it declares", p)
		}
	}
	for _, p := range want {
		if rr.routes[p] == 0 {
			t.Errorf("no command called %s", p)
		}
	}
}
