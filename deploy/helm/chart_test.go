// Package helm_test renders and lints the Helm chart in deploy/helm/socle
// with the real helm binary (.ci/run installs it with go install).
package helm_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/socle-dev/socle/internal/admission"
	"github.com/socle-dev/socle/internal/config"
)

func helm(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SOCLE_HELM"); p != "" {
		return p
	}
	p, err := exec.LookPath("helm")
	if err != nil {
		if os.Getenv("SOCLE_SKIP_HELM") == "1" {
			t.Skip("SOCLE_SKIP_HELM=1: no helm here")
		}
		t.Fatal("helm not found (.ci/run installs it; set SOCLE_HELM or SOCLE_SKIP_HELM=1)")
	}
	return p
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(helm(t), args...).CombinedOutput()
	return string(out), err
}

// render returns the rendered manifests by kind.
func render(t *testing.T, args ...string) map[string][]map[string]any {
	t.Helper()
	out, err := run(t, append([]string{"template", "r", "socle"}, args...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	byKind := map[string][]map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc == nil {
			continue
		}
		k, _ := doc["kind"].(string)
		byKind[k] = append(byKind[k], doc)
	}
	return byKind
}

func TestLint(t *testing.T) {
	for _, args := range [][]string{{}, {"-f", "socle/values-replicas.yaml"}} {
		if out, err := run(t, append([]string{"lint", "--strict", "socle"}, args...)...); err != nil {
			t.Fatalf("helm lint %v: %v\n%s", args, err, out)
		}
	}
}

func container(t *testing.T, docs map[string][]map[string]any) map[string]any {
	t.Helper()
	d := docs["Deployment"]
	if len(d) != 1 {
		t.Fatalf("%d deployments", len(d))
	}
	spec := d[0]["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	return spec["containers"].([]any)[0].(map[string]any)
}

func TestSingleReplicaDefaults(t *testing.T) {
	docs := render(t)
	if len(docs["PersistentVolumeClaim"]) != 1 {
		t.Fatal("the single replica has no volume for SQLite and the registry")
	}
	args := strings.Join(toStrings(container(t, docs)["args"]), " ")
	if !strings.Contains(args, "--registry-addr=0.0.0.0:5050") || strings.Contains(args, "--registry=") {
		t.Fatalf("args %s", args)
	}
}

func TestReplicasSharePostgres(t *testing.T) {
	docs := render(t, "-f", "socle/values-replicas.yaml")
	dep := docs["Deployment"][0]["spec"].(map[string]any)
	if dep["replicas"].(int) != 3 {
		t.Fatalf("replicas = %v", dep["replicas"])
	}
	if len(docs["PersistentVolumeClaim"]) != 0 {
		t.Fatal("replicas must not share a ReadWriteOnce volume")
	}
	c := container(t, docs)
	args := strings.Join(toStrings(c["args"]), " ")
	if !strings.Contains(args, "--registry=harbor.example.internal/platform") {
		t.Fatalf("args %s", args)
	}
	env := c["env"].([]any)[0].(map[string]any)
	if env["name"] != "SOCLE_DATABASE" || env["valueFrom"].(map[string]any)["secretKeyRef"].(map[string]any)["name"] != "socle-database" {
		t.Fatalf("database env %v", env)
	}
}

func TestRefusesUnsafeReplicas(t *testing.T) {
	for _, args := range [][]string{
		{"--set", "replicaCount=2"},
		{"--set", "replicaCount=2", "--set", "registry.external=r.example/p"},
	} {
		out, err := run(t, append([]string{"template", "r", "socle"}, args...)...)
		if err == nil || !strings.Contains(out, "replicaCount > 1 needs") {
			t.Fatalf("%v rendered: %v\n%s", args, err, out)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestAdmissionAndInventory installs the webhook configuration socle
// prints for an in-cluster service, the admission listener and port,
// and read-only RBAC for the pod watch.
func TestAdmissionAndInventory(t *testing.T) {
	cl := config.Cluster{Name: "main", InCluster: true, Namespaces: []config.NamespaceMap{{Names: []string{"shop-prod"}, Environment: "prod"}}}
	hooks, err := admission.WebhookConfigurations(cl, config.Admission{Service: &config.AdmissionService{Namespace: "platform", Name: "r-socle", Port: 8443}},
		[]byte("-----BEGIN CERTIFICATE-----\nhand-made\n-----END CERTIFICATE-----\n"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "webhooks.yaml")
	if err := os.WriteFile(file, hooks, 0o600); err != nil {
		t.Fatal(err)
	}
	docs := render(t, "--set", "admission.enabled=true", "--set", "kubernetes.watch=true", "--set", "admission.tlsSecret=socle-admission-tls",
		"--set-file", "admission.webhooks="+file)
	if len(docs["MutatingWebhookConfiguration"]) != 1 || len(docs["ValidatingWebhookConfiguration"]) != 1 {
		t.Fatalf("webhook configurations: %d mutating, %d validating", len(docs["MutatingWebhookConfiguration"]), len(docs["ValidatingWebhookConfiguration"]))
	}
	hook := docs["ValidatingWebhookConfiguration"][0]["webhooks"].([]any)[0].(map[string]any)
	svc := hook["clientConfig"].(map[string]any)["service"].(map[string]any)
	if svc["name"] != "r-socle" || svc["path"] != "/admission/validate/main" || hook["failurePolicy"] != "Fail" {
		t.Fatalf("validating webhook %v", hook)
	}
	c := container(t, docs)
	if args := strings.Join(toStrings(c["args"]), " "); !strings.Contains(args, "--admission-addr=0.0.0.0:8443") {
		t.Fatalf("args %s", args)
	}
	ports := fmt.Sprint(docs["Service"][0]["spec"].(map[string]any)["ports"])
	if !strings.Contains(ports, "admission") {
		t.Fatalf("service ports %s", ports)
	}
	role := docs["ClusterRole"][0]
	for _, r := range role["rules"].([]any) {
		if verbs := fmt.Sprint(r.(map[string]any)["verbs"]); verbs != "[get list watch]" {
			t.Fatalf("the inventory's role may %s", verbs)
		}
	}
	if docs["Deployment"][0]["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["serviceAccountName"] != "r-socle" {
		t.Fatal("the pod does not run as the watching service account")
	}
	// Without the flags, none of it.
	plain := render(t)
	if len(plain["ClusterRole"])+len(plain["ValidatingWebhookConfiguration"]) != 0 {
		t.Fatal("RBAC or webhooks rendered by default")
	}
}
