package check_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/check"
	"github.com/socle-dev/socle/internal/testenv"
)

// kubeconformVerdicts runs the real kubeconform, strict and offline, on
// paths with the shared Kubernetes 1.30 standalone-strict schemas (nine
// kinds), and returns valid or invalid per resource ("file kind name");
// resources of kinds it has no schema for are left out.
func kubeconformVerdicts(t *testing.T, paths ...string) map[string]string {
	t.Helper()
	bin := testenv.PeerTool(t, "kubeconform")
	schemas := testenv.SharedData(t, "kubeconform", "schemas")
	args := []string{"-strict", "-verbose", "-output", "json", "-kubernetes-version", "1.30.0",
		"-schema-location", schemas + "/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json"}
	out, err := exec.Command(bin, append(args, paths...)...).Output()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
		t.Fatalf("kubeconform: %v\n%s", err, out)
	}
	var doc struct {
		Resources []struct {
			Filename, Kind, Name, Status, Msg string
		} `json:"resources"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("kubeconform's JSON: %v", err)
	}
	v := map[string]string{}
	for _, r := range doc.Resources {
		key := r.Filename + " " + r.Kind + " " + r.Name
		switch r.Status {
		case "statusValid":
			v[key] = "valid"
		case "statusInvalid":
			v[key] = "invalid: " + r.Msg
		}
	}
	return v
}

// TestAgreesWithKubeconform validates every shared manifest and every
// kubeconform fixture with socle (strict, Kubernetes 1.32, the oldest
// schema socle carries) and with kubeconform (strict, the shared 1.30
// schemas), resource by resource: every verdict agrees. Two differences
// were found and fixed in socle: required fields (the structured schema
// has none; they now come from k8s.io/api's types, as the OpenAPI
// generator derives them), and duplicate list-map keys (two env entries
// of one name), which the API server accepts with a warning and socle
// refused.
func TestAgreesWithKubeconform(t *testing.T) {
	roots := []string{testenv.SharedData(t, "k8s-manifests"), testenv.SharedData(t, "kubeconform", "fixtures")}
	var files []string
	for _, in := range collect(t, roots...) {
		if !check.IsDockerfile(in.Name) && !strings.Contains(in.Name, "/cache/") && !strings.HasSuffix(in.Name, ".json") {
			files = append(files, in.Name)
		}
	}
	theirs := kubeconformVerdicts(t, files...)
	agree := 0
	perFile := map[string]int{}
	var differ []string
	for _, in := range collect(t, files...) {
		data := load(t, in)
		objs, err := check.ParseManifests(in.Name, data)
		if err != nil {
			continue
		}
		for _, o := range objs {
			key := in.Name + " " + o.Kind + " " + o.Name
			want, ok := theirs[key]
			if !ok {
				continue
			}
			fs := check.ValidateSchema(o, check.SchemaOptions{KubernetesVersion: "1.32", Strict: true})
			ours := "valid"
			if len(fs) > 0 {
				ours = "invalid: " + fs[0].Message
			}
			if (ours == "valid") == (want == "valid") {
				agree++
				perFile[in.Name]++
				continue
			}
			differ = append(differ, fmt.Sprintf("%s:\n  socle: %s\n  kubeconform: %s", key, ours, want))
		}
	}
	names := make([]string, 0, len(perFile))
	for f := range perFile {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		t.Logf("%s: %d resources, same verdict", f, perFile[f])
	}
	t.Logf("%d resources in %d files agree with kubeconform", agree, len(perFile))
	if agree < 50 {
		t.Fatalf("only %d resources compared", agree)
	}
	sort.Strings(differ)
	if len(differ) > 0 {
		t.Errorf("%d differences:\n%s", len(differ), strings.Join(differ, "\n"))
	}
}
