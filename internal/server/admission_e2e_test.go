package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/cli"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/kube/kubetest"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// clusterStack is socle serve (in process: embedded registry, SQLite,
// admission listener, pod watch) in front of a real control plane.
type clusterStack struct {
	t        *testing.T
	cp       *kubetest.ControlPlane
	dataDir  string
	cfgPath  string
	api      string
	registry string
	st       store.Store
	app      *server.App
	stopped  chan error
	token    string
}

const clusterConfig = `server:
  addr: %[1]s
  registry_addr: %[2]s
environments:
  - name: dev
  - name: staging
    admission: {mode: warn}
  - name: prod
clusters:
  - name: main
    kubeconfig: %[3]s
    namespaces:
      - {names: [shop-prod, tools], environment: prod}
      - {selector: "env=staging", environment: staging}
admission:
  addr: %[4]s
  url: https://%[4]s
  timeout: 10s
  exempt: [{namespace: tools}]
`

func startClusterStack(t *testing.T) *clusterStack {
	t.Helper()
	s := &clusterStack{t: t, cp: kubetest.Start(t), dataDir: t.TempDir(), api: freeAddr(t), registry: freeAddr(t)}
	admissionAddr := freeAddr(t)
	s.cfgPath = filepath.Join(s.dataDir, "socle.yaml")
	if err := os.WriteFile(s.cfgPath, fmt.Appendf(nil, clusterConfig, s.api, s.registry, s.cp.Kubeconfig, admissionAddr), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if s.st, err = sqlite.Open(ctx, filepath.Join(s.dataDir, "socle.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.st.Close() })
	var out bytes.Buffer
	s.app, err = server.New(ctx, server.Config{File: cfg, Store: s.st, StoreLocation: "socle.db", DataDir: s.dataDir,
		Addr: s.api, RegistryAddr: s.registry, AdmissionAddr: admissionAddr, Out: &out, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.stopped = make(chan error, 1)
	go func() { s.stopped <- s.app.Run(ctx) }()
	t.Cleanup(func() { s.stop() })
	b, err := os.ReadFile(filepath.Join(s.dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(b))
	if !strings.Contains(out.String(), "admission   https://"+admissionAddr) {
		// The banner is printed by Run: wait for it.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "admission   https://"+admissionAddr) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return s
}

func (s *clusterStack) stop() {
	if s.app == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s.app.Shutdown(ctx)
	<-s.stopped
	s.app = nil
}

// socle runs a socle command in process against the stack's data.
func (s *clusterStack) socle(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	root := cli.NewRoot(&out, &errOut)
	root.SetArgs(append([]string{"--data-dir", s.dataDir}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

// kubectl applies a manifest, returning kubectl's output.
func (s *clusterStack) kubectl(manifest string, args ...string) (string, error) {
	return s.cp.Kubectl(manifest, args...)
}

// getJSON reads an API answer with the admin token.
func (s *clusterStack) getJSON(path string, v any) {
	s.t.Helper()
	getJSONWith(s.t, s.api, s.token, path, v)
}

// getJSONWith reads an API answer of the server at addr with token.
func getJSONWith(t *testing.T, addr, token, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
}

func deploymentYAML(namespace, name, image string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec:
      nodeName: %[4]s
      containers: [{name: app, image: %[3]q}]
`, namespace, name, image, kubetest.NodeName)
}

// eventually retries f until it reports done, for a minute.
func eventually(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	last := ""
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = f(); ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: never (last: %s)", what, last)
}

// TestAdmissionOnARealAPIServer runs the whole enforcement loop on a
// real kube-apiserver with kwok's fake node: the webhook configuration
// socle prints is applied with kubectl; an unpromoted digest is denied
// with socle's message; once promoted it is admitted; a tag is pinned
// to the promoted digest in the stored spec; an exempt namespace
// passes; warn mode admits with a warning; the pods' digests reach the
// inventory and the dashboard's Running view (Chromium), with drift for
// the warned one; and with socle stopped the cluster fails closed.
func TestAdmissionOnARealAPIServer(t *testing.T) {
	s := startClusterStack(t)
	ctx := context.Background()
	if out, err := s.kubectl(`apiVersion: v1
kind: Namespace
metadata: {name: shop-prod}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop-staging, labels: {env: staging}}
---
apiVersion: v1
kind: Namespace
metadata: {name: tools}
`, "apply", "-f", "-"); err != nil {
		t.Fatalf("namespaces: %v\n%s", err, out)
	}

	// A real image, pushed to socle's embedded registry.
	ref, _ := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz"))
	img, err := source.Open(ctx, ref, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	repo := s.registry + "/apps/shop"
	tagged, _ := name.ParseReference(repo + ":1.0")
	if err := remote.Write(tagged, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	digest := d.String()
	unpromoted := "sha256:" + strings.Repeat("0", 63) + "1" // hand-made: never pushed, never promoted

	// The webhook configuration socle prints, applied with kubectl.
	hooks, err := s.socle("admission", "config", "--cluster", "main", "--config", s.cfgPath)
	if err != nil {
		t.Fatalf("socle admission config: %v\n%s", err, hooks)
	}
	if !strings.Contains(hooks, "caBundle:") || !strings.Contains(hooks, "failurePolicy: Fail") {
		t.Fatalf("webhook configuration:\n%s", hooks)
	}
	if out, err := s.kubectl(hooks, "apply", "-f", "-"); err != nil {
		t.Fatalf("applying the webhooks: %v\n%s", err, out)
	}

	steps := []testenv.Step{
		{Name: "an unpromoted digest is denied in prod, with socle's message", Run: func(t *testing.T) {
			// The API server loads webhook configurations asynchronously.
			eventually(t, "the webhook answering", func() (bool, string) {
				out, err := s.kubectl(deploymentYAML("shop-prod", "shop", repo+"@"+digest), "apply", "--dry-run=server", "-f", "-")
				return err != nil && strings.Contains(out, "socle"), out
			})
			out, err := s.kubectl(deploymentYAML("shop-prod", "shop", repo+"@"+digest), "apply", "-f", "-")
			if err == nil || !strings.Contains(out, "never promoted, not to prod") || !strings.Contains(out, "socle promote "+repo+"@"+digest+" --to prod") {
				t.Fatalf("unpromoted apply: %v\n%s", err, out)
			}
		}},
		{Name: "after socle promote to prod it is admitted", Run: func(t *testing.T) {
			for _, env := range []string{"dev", "staging", "prod"} {
				if out, err := s.socle("promote", repo+"@"+digest, "--to", env, "--token", s.token, "--config", s.cfgPath); err != nil {
					t.Fatalf("promote to %s: %v\n%s", env, err, out)
				}
			}
			eventually(t, "the promoted digest admitted", func() (bool, string) {
				out, err := s.kubectl(deploymentYAML("shop-prod", "shop", repo+"@"+digest), "apply", "-f", "-")
				return err == nil, out
			})
		}},
		{Name: "a tag is admitted pinned to its digest", Run: func(t *testing.T) {
			if out, err := s.kubectl(deploymentYAML("shop-prod", "shop-by-tag", repo+":prod"), "apply", "-f", "-"); err != nil {
				t.Fatalf("apply by tag: %v\n%s", err, out)
			}
			out, err := s.kubectl("", "get", "deployment", "-n", "shop-prod", "shop-by-tag", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
			if err != nil || out != repo+"@"+digest {
				t.Fatalf("stored image %q (%v), want %s@%s", out, err, repo, digest)
			}
			out, err = s.kubectl(deploymentYAML("shop-prod", "shop-unknown-tag", repo+":nope"), "apply", "-f", "-")
			if err == nil || !strings.Contains(out, `no promoted digest for the tag "nope"`) {
				t.Fatalf("an unknown tag: %v\n%s", err, out)
			}
		}},
		{Name: "an exempt namespace passes", Run: func(t *testing.T) {
			if out, err := s.kubectl(deploymentYAML("tools", "debug", repo+"@"+unpromoted), "apply", "-f", "-"); err != nil {
				t.Fatalf("exempt namespace: %v\n%s", err, out)
			}
		}},
		{Name: "warn mode admits with a warning, and audits it", Run: func(t *testing.T) {
			out, err := s.kubectl(deploymentYAML("shop-staging", "canary", repo+"@"+unpromoted), "apply", "-f", "-")
			if err != nil || !strings.Contains(out, "Warning: socle:") || !strings.Contains(out, "not to staging") {
				t.Fatalf("warn mode: %v\n%s", err, out)
			}
		}},
		{Name: "the inventory records the pods' digests, with drift", Run: func(t *testing.T) {
			var resp struct {
				Running []struct {
					Namespace, Workload, Digest, Environment string
					Drift                                    bool
				} `json:"running"`
			}
			eventually(t, "the running pods recorded", func() (bool, string) {
				s.getJSON("/api/v1/running", &resp)
				found := map[string]bool{}
				for _, r := range resp.Running {
					found[r.Namespace+"/"+r.Workload+" "+r.Digest+fmt.Sprint(" drift=", r.Drift)] = true
				}
				return found["shop-prod/Deployment/shop "+digest+" drift=false"] &&
					found["shop-prod/Deployment/shop-by-tag "+digest+" drift=false"] &&
					found["shop-staging/Deployment/canary "+unpromoted+" drift=true"], fmt.Sprint(found)
			})
		}},
		{Name: "the Running view shows them (Chromium)", Run: func(t *testing.T) {
			bctx := browser(t)
			do(t, bctx, "sign in and open Running",
				chromedp.Navigate("http://"+s.api+"/running"),
				chromedp.WaitVisible(`input[name="token"]`),
				chromedp.SendKeys(`input[name="token"]`, s.token),
				chromedp.Submit(`input[name="token"]`),
				chromedp.WaitVisible(`table.running[data-env="prod"]`),
			)
			shop := text(t, bctx, `table.running[data-env="prod"] tr[data-workload="shop-prod/Deployment/shop"]`)
			if !strings.Contains(shop, oci.ShortDigest(digest)[7:]) || strings.Contains(shop, "drift") {
				t.Fatalf("the promoted shop row: %q", shop)
			}
			// Exempt from admission is not promoted: the tools namespace,
			// mapped to prod, runs an unpromoted digest, shown as drift.
			if debug := text(t, bctx, `table.running[data-env="prod"] tr[data-workload="tools/Deployment/debug"]`); !strings.Contains(debug, "drift") {
				t.Fatalf("the exempt debug row: %q", debug)
			}
			if canary := text(t, bctx, `table.running[data-env="staging"] tr[data-workload="shop-staging/Deployment/canary"]`); !strings.Contains(canary, "drift") {
				t.Fatalf("the warned canary row: %q", canary)
			}
		}},
		{Name: "deleting a deployment marks its image not running", Run: func(t *testing.T) {
			if out, err := s.kubectl("", "delete", "deployment", "-n", "shop-staging", "canary", "--wait=true"); err != nil {
				t.Fatalf("delete: %v\n%s", err, out)
			}
			eventually(t, "the canary stopped", func() (bool, string) {
				rows, err := s.st.RunningImages(ctx, store.RunningQuery{Environment: "staging"})
				return err == nil && len(rows) == 0, fmt.Sprint(rows, err)
			})
		}},
		{Name: "denials are audited and decisions measured", Run: func(t *testing.T) {
			evs, err := s.st.AuditEvents(ctx, 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			denied, warned := map[string]bool{}, 0
			for _, e := range evs {
				switch e.Action {
				case "admission.deny":
					denied[e.Subject] = true
				case "admission.warn":
					warned++
				}
			}
			// The unpromoted digest and the unknown tag were denied (dry runs
			// are not audited); the canary's Deployment, ReplicaSet and pod
			// warned.
			if !denied["shop-prod/deployment shop"] || !denied["shop-prod/deployment shop-unknown-tag"] || warned != 3 {
				t.Fatalf("audit: denied %v, %d warned", denied, warned)
			}
			req, _ := http.NewRequest("GET", "http://"+s.api+"/metrics", nil)
			req.Header.Set("Authorization", "Bearer "+s.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, m := range []string{`socle_admission_decision_seconds_bucket{decision="deny"`, `socle_admission_decisions_total{decision="allow",webhook="validate"}`, `decision="pin"`} {
				if !bytes.Contains(b, []byte(m)) {
					t.Errorf("metrics lack %s", m)
				}
			}
		}},
		{Name: "with socle stopped, the cluster fails closed", Run: func(t *testing.T) {
			s.stop()
			out, err := s.kubectl(deploymentYAML("shop-prod", "after-socle", repo+"@"+digest), "apply", "-f", "-")
			if err == nil || !strings.Contains(out, "failed calling webhook") {
				t.Fatalf("apply with socle stopped: %v\n%s", err, out)
			}
			// Namespaces socle does not govern are not affected.
			if out, err := s.kubectl(deploymentYAML("default", "elsewhere", repo+"@"+unpromoted), "apply", "-f", "-"); err != nil {
				t.Fatalf("an ungoverned namespace with socle stopped: %v\n%s", err, out)
			}
		}},
	}
	testenv.RunSteps(t, steps)
}
