package check_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

var ctx = context.Background()

func collect(t *testing.T, paths ...string) []check.Input {
	t.Helper()
	in, err := check.Collect(paths, nil)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func load(t *testing.T, in check.Input) []byte {
	t.Helper()
	b, err := in.Load()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func run(t *testing.T, inputs []check.Input, opts check.Options) *check.Report {
	t.Helper()
	r, err := check.Run(ctx, inputs, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDockerfilesGolden checks the real Dockerfiles of the shared data,
// with the default rules and with every opt-in rule, against a golden
// file. Each rule that fires has a hand-written justification in
// testdata/dockerfiles.review (the review of its findings), and no
// default rule fires on every file.
func TestDockerfilesGolden(t *testing.T) {
	dir := testenv.SharedData(t, "dockerfiles")
	inputs := collect(t, dir)
	var buf bytes.Buffer
	fired := map[string]bool{}
	for _, mode := range []struct {
		name string
		opts check.DockerfileOptions
	}{
		{"default", check.DockerfileOptions{}},
		{"--pin-base --pin-packages --require-healthcheck", check.DockerfileOptions{PinBase: true, PinPackages: true, RequireHealthcheck: true}},
	} {
		r := run(t, inputs, check.Options{Dockerfile: mode.opts})
		if r.Checked["dockerfile"] != len(inputs) {
			t.Fatalf("%s: checked %v of %d files", mode.name, r.Checked, len(inputs))
		}
		fmt.Fprintf(&buf, "## %s: %d findings\n", mode.name, len(r.Findings))
		files := map[string]map[string]bool{}
		for _, f := range r.Findings {
			rel, _ := filepath.Rel(dir, f.File)
			fmt.Fprintf(&buf, "%s:%d %s %s\n", rel, f.Line, f.Rule, f.Message)
			if files[f.Rule] == nil {
				files[f.Rule] = map[string]bool{}
			}
			files[f.Rule][f.File] = true
			fired[f.Rule] = true
		}
		if mode.name == "default" {
			for rule, fs := range files {
				if len(fs) == len(inputs) {
					t.Errorf("%s fires on every Dockerfile", rule)
				}
			}
		}
	}
	golden := filepath.Join("testdata", "dockerfiles.golden")
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Fatalf("findings differ from %s (review them, then go test -update)", golden)
	}
	review, err := os.ReadFile(filepath.Join("testdata", "dockerfiles.review"))
	if err != nil {
		t.Fatal(err)
	}
	for rule := range fired {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(rule) + `: \S`).Match(review) {
			t.Errorf("%s fires on the shared Dockerfiles but testdata/dockerfiles.review does not justify it", rule)
		}
	}
}

// TestWorkloadRulesAgainstTheFiles: on every shared manifest, a workload
// is reported privileged exactly in the files that say privileged: true,
// and on the host's namespaces exactly where they say hostNetwork,
// hostPID or hostIPC: true (an oracle read from the text).
func TestWorkloadRulesAgainstTheFiles(t *testing.T) {
	root := testenv.SharedData(t, "k8s-manifests")
	inputs := collect(t, root)
	r := run(t, inputs, check.Options{})
	byRule := map[string]map[string]bool{}
	for _, f := range r.Findings {
		if byRule[f.Rule] == nil {
			byRule[f.Rule] = map[string]bool{}
		}
		byRule[f.Rule][f.File] = true
	}
	priv := regexp.MustCompile(`(?mi)^\s*"?privileged"?\s*:\s*true`)
	host := regexp.MustCompile(`(?mi)^\s*"?host(Network|PID|IPC)"?\s*:\s*true`)
	checked := 0
	for _, in := range inputs {
		data := load(t, in)
		objs, err := check.ParseManifests(in.Name, data)
		if err != nil || !hasWorkload(objs) {
			continue
		}
		checked++
		if want, got := priv.Match(data), byRule["pss-privileged"][in.Name]; want != got && !isPSP(objs) {
			t.Errorf("%s: privileged in the text %v, reported %v", in.Name, want, got)
		}
		if want, got := host.Match(data), byRule["pss-host-namespaces"][in.Name]; want != got && !isPSP(objs) {
			t.Errorf("%s: host namespaces in the text %v, reported %v", in.Name, want, got)
		}
	}
	if checked < 50 {
		t.Fatalf("only %d files with workloads", checked)
	}
}

func hasWorkload(objs []check.Object) bool {
	for _, o := range objs {
		switch o.Kind {
		case "Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "ReplicationController":
			return true
		}
	}
	return false
}

// isPSP: PodSecurityPolicies say privileged: true of what they allow,
// not of a workload.
func isPSP(objs []check.Object) bool {
	for _, o := range objs {
		if o.Kind == "PodSecurityPolicy" {
			return true
		}
	}
	return false
}

// TestEveryWorkloadKind: the same hand-made pod spec, privileged, is
// found in every kind that has a pod template, init and ephemeral
// containers included.
func TestEveryWorkloadKind(t *testing.T) {
	pod := `securityContext: {}
      containers: [{name: app, image: "registry.test.invalid/app:1", securityContext: {privileged: true}}]
      initContainers: [{name: init, image: "registry.test.invalid/init:1", securityContext: {privileged: true}}]
      ephemeralContainers: [{name: debug, image: "registry.test.invalid/debug:1", securityContext: {privileged: true}}]`
	docs := map[string]string{
		"Pod":         "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  " + strings.ReplaceAll(pod, "\n      ", "\n  "),
		"Deployment":  "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec:\n      " + pod,
		"StatefulSet": "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec:\n  template:\n    spec:\n      " + pod,
		"DaemonSet":   "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\nspec:\n  template:\n    spec:\n      " + pod,
		"ReplicaSet":  "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: rs}\nspec:\n  template:\n    spec:\n      " + pod,
		"Job":         "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n      " + pod,
		"CronJob":     "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          " + strings.ReplaceAll(pod, "\n      ", "\n          "),
	}
	for kind, doc := range docs {
		objs, err := check.ParseManifests(kind+".yaml", []byte(doc)) // hand-made
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %v", kind, err)
		}
		n := 0
		for _, f := range check.CheckWorkload(objs[0], check.WorkloadOptions{}) {
			if f.Rule == "pss-privileged" {
				n++
			}
		}
		if n != 3 {
			t.Errorf("%s: %d privileged containers found, want the 3 (container, init, ephemeral)", kind, n)
		}
	}
}

// TestIgnores: inline comments ignore a rule in their document or the
// whole file, a comment without a reason ignores nothing, and --ignore
// ignores a rule everywhere.
func TestIgnores(t *testing.T) {
	// Hand-made manifests.
	doc := `# socle:ignore pss-privileged the node agent needs it
apiVersion: v1
kind: Pod
metadata: {name: agent}
spec:
  containers: [{name: a, image: "registry.test.invalid/a:1@sha256:` + strings.Repeat("a", 64) + `", securityContext: {privileged: true}}]
---
# socle:ignore pss-host-namespaces
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  hostNetwork: true
  containers: [{name: w, image: "registry.test.invalid/w:1", securityContext: {privileged: true}}]
`
	r := run(t, []check.Input{{Name: "pods.yaml", Data: []byte(doc)}}, check.Options{Ignore: map[string]string{"k8s-probes": "no probes in tests"}})
	rules := map[string][]string{}
	for _, f := range r.Findings {
		rules[f.Rule] = append(rules[f.Rule], f.Object)
	}
	if got := rules["pss-privileged"]; len(got) != 1 || got[0] != "Pod/web" {
		t.Errorf("privileged: %v (agent's is ignored, web's is not)", got)
	}
	if got := rules["pss-host-namespaces"]; len(got) != 1 {
		t.Errorf("an ignore without a reason was honoured: %v", got)
	}
	if len(rules["k8s-probes"]) != 0 {
		t.Errorf("--ignore k8s-probes: %v", rules["k8s-probes"])
	}
	reasons := map[string]bool{}
	for _, ig := range r.Ignored {
		reasons[ig.Reason] = true
	}
	if !reasons["the node agent needs it"] || !reasons["no probes in tests"] {
		t.Errorf("ignored reasons %v", reasons)
	}
	// A Dockerfile: an ignore above an instruction covers it, a file-wide
	// one covers the whole file.
	df := "FROM registry.test.invalid/base:1\n# socle:ignore df-add the build context is controlled\nADD app /app\nADD more /more\n# socle:ignore-file df-user-root a root daemon by design\n"
	r = run(t, []check.Input{{Name: "Dockerfile", Data: []byte(df)}}, check.Options{})
	var left []string
	for _, f := range r.Findings {
		left = append(left, fmt.Sprintf("%s:%d", f.Rule, f.Line))
	}
	sort.Strings(left)
	if strings.Join(left, " ") != "df-add:4" {
		t.Errorf("Dockerfile findings %v, want only the second ADD", left)
	}
}

// TestSchemaValidation: the kubeconform fixtures that kubeconform calls
// invalid are invalid here too, strict mode refuses an undeclared field
// that the default mode lets pass, and a custom resource is validated
// against its CRD.
func TestSchemaValidation(t *testing.T) {
	dir := testenv.SharedData(t, "kubeconform", "fixtures")
	verdict := func(file string, strict bool, crds *check.CRDs) []check.Finding {
		r := run(t, collect(t, filepath.Join(dir, file)), check.Options{Rules: map[string]bool{"schema": true},
			Schema: check.SchemaOptions{Strict: strict, CRDs: crds}})
		return r.Findings
	}
	for _, f := range []string{"invalid.yaml", "list_invalid.yaml", "multi_invalid.yaml"} {
		if len(verdict(f, false, nil)) == 0 {
			t.Errorf("%s passes", f)
		}
	}
	for _, f := range []string{"valid.yaml", "multi_valid.yaml", "list_valid.yaml", "int_or_string.yaml", "quantity.yaml", "null_string.yaml"} {
		if fs := verdict(f, true, nil); len(fs) != 0 {
			t.Errorf("%s fails: %v", f, fs[0].Message)
		}
	}
	if len(verdict("extra_property.yaml", false, nil)) != 0 || len(verdict("extra_property.yaml", true, nil)) == 0 {
		t.Error("extra_property.yaml: strict mode should refuse it, the default mode pass it")
	}
	// test_crd.yaml is a TrainingJob; crd_schema.yaml its CRD.
	crds := check.NewCRDs()
	for _, in := range collect(t, filepath.Join(dir, "crd_schema.yaml")) {
		data := load(t, in)
		objs, err := check.ParseManifests(in.Name, data)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			crds.Add(o)
		}
	}
	if crds.Len() == 0 {
		t.Fatal("no CRD read")
	}
	r := run(t, collect(t, filepath.Join(dir, "test_crd.yaml")), check.Options{Rules: map[string]bool{"schema": true, "schema-unknown-kind": true},
		Schema: check.SchemaOptions{CRDs: crds}})
	if len(r.Findings) != 0 {
		t.Errorf("test_crd.yaml against its CRD: %v", r.Findings)
	}
	r = run(t, collect(t, filepath.Join(dir, "test_crd.yaml")), check.Options{Rules: map[string]bool{"schema-unknown-kind": true}})
	if len(r.Findings) != 1 {
		t.Errorf("test_crd.yaml without its CRD: %v", r.Findings)
	}
	if _, err := check.Run(ctx, nil, check.Options{Schema: check.SchemaOptions{KubernetesVersion: "1.99"}}); err != nil {
		t.Fatal(err)
	}
	// Hand-made: a Deployment without its required selector is refused,
	// as the API server refuses it; two env entries of one name pass, as
	// the API server lets them (with a warning).
	noSelector := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  template:\n    spec: {containers: [{name: c, image: x}]}\n"
	dupEnv := "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, image: x, env: [{name: A, value: '1'}, {name: A, value: '2'}]}]}\n"
	for doc, want := range map[string]string{noSelector: ".spec.selector: required", dupEnv: ""} {
		objs, err := check.ParseManifests("hand-made.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		fs := check.ValidateSchema(objs[0], check.SchemaOptions{Strict: true})
		got := ""
		if len(fs) > 0 {
			got = fs[0].Message
		}
		if got != want {
			t.Errorf("%s: %q, want %q", objs[0], got, want)
		}
	}
}

// TestOutputs: SARIF validates against the official 2.1.0 schema, JUnit
// parses with a failure per finding, JSON lists the findings.
func TestOutputs(t *testing.T) {
	r := run(t, collect(t, testenv.SharedData(t, "k8s-manifests", "kubernetes-goat")), check.Options{})
	if len(r.Findings) == 0 {
		t.Fatal("no findings")
	}
	var sarif bytes.Buffer
	if err := check.Write(&sarif, "sarif", r); err != nil {
		t.Fatal(err)
	}
	schema := testenv.CompileSchema(t, map[string]string{"sarif-2.1.0.json": testenv.SARIFSchema(t)}, "sarif-2.1.0.json")
	if err := testenv.Validate(schema, sarif.Bytes()); err != nil {
		t.Fatalf("SARIF: %v", err)
	}
	var junit bytes.Buffer
	if err := check.Write(&junit, "junit", r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(junit.Bytes(), &doc); err != nil || doc.Failures != len(r.Findings) {
		t.Fatalf("JUnit: %d failures, %v", doc.Failures, err)
	}
	if err := check.Write(&bytes.Buffer{}, "yaml", r); err == nil {
		t.Fatal("an unknown format was accepted")
	}
}

// FuzzParseManifests: any stream is read or refused with an error, and
// what is read checks without failing.
func FuzzParseManifests(f *testing.F) {
	f.Add([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec: {containers: [{name: c, image: x}]}\n---\n# socle:ignore pss-privileged reason\n")) // hand-made
	f.Add([]byte("--- !!binary\n---\n[1, 2]\n---\n{a: &x b, c: *x}\n"))                                                                                                                                 // hand-made
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _ := check.ParseManifests("f.yaml", data)
		for _, o := range objs {
			check.CheckWorkload(o, check.WorkloadOptions{Registries: []string{"registry.test.invalid"}})
			check.ValidateSchema(o, check.SchemaOptions{})
		}
	})
}

// FuzzCRDs: any CRD is read or refused, and a custom resource validates
// against it without failing.
func FuzzCRDs(f *testing.F) {
	f.Add([]byte("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: ts.x.io}\nspec:\n  group: x.io\n  names: {kind: T}\n  versions:\n  - name: v1\n    schema:\n      openAPIV3Schema: {type: object, properties: {spec: {type: object, properties: {n: {type: integer}}}}}\n---\napiVersion: x.io/v1\nkind: T\nmetadata: {name: t}\nspec: {n: one}\n")) // hand-made
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _ := check.ParseManifests("crd.yaml", data)
		crds := check.NewCRDs()
		for _, o := range objs {
			crds.Add(o)
		}
		for _, o := range objs {
			check.ValidateSchema(o, check.SchemaOptions{CRDs: crds, Strict: true})
		}
	})
}

// FuzzIgnoreComments: ignore comments in a Dockerfile never fail the
// check, and an ignore without a reason never suppresses anything.
func FuzzIgnoreComments(f *testing.F) {
	f.Add([]byte("FROM a:1\n# socle:ignore df-add reason\nADD x /x\n# socle:ignore-file * why\n")) // hand-made
	f.Add([]byte("FROM a\n# socle:ignore df-base-latest\n"))                                       // hand-made
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := check.Run(ctx, []check.Input{{Name: "Dockerfile", Data: data}}, check.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ig := range r.Ignored {
			if strings.TrimSpace(ig.Reason) == "" {
				t.Fatalf("ignored without a reason: %+v", ig)
			}
		}
	})
}
