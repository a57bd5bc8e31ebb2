package admission_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/socle-dev/socle/internal/admission"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
)

var ctx = context.Background()

// Hand-made digests and names: the decisions depend only on what the
// store says was promoted.
var (
	repo     = "registry.test.invalid/apps/shop"
	staged   = "sha256:" + strings.Repeat("a", 64) // promoted to dev and staging
	released = "sha256:" + strings.Repeat("b", 64) // promoted up to prod
	stranger = "sha256:" + strings.Repeat("c", 64) // never promoted
)

var envs = []config.Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod"}}

func promoteDone(t testing.TB, st store.Store, digest, env string) {
	t.Helper()
	p := store.Promotion{Repository: repo, Target: repo, Digest: digest, Environment: env, Tag: env, State: store.PromotionMoving,
		Kind: "promote", By: "ann", Role: "admin", Evidence: []byte(`{}`)}
	id, err := st.CreatePromotion(ctx, p, store.AuditEvent{Actor: "ann", Action: "promotion.moving", Subject: repo})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.TransitionPromotion(ctx, id, store.PromotionMoving, store.PromotionDone, nil, "", time.Now(), store.AuditEvent{Actor: "ann", Action: "promotion.done", Subject: repo}); err != nil {
		t.Fatal(err)
	}
}

// newController is a controller on a real SQLite store holding the
// promotions above, with one cluster mapping namespaces by name.
func newController(t testing.TB, exempt ...config.AdmissionExempt) (*admission.Controller, store.Store) {
	t.Helper()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	promoteDone(t, st, staged, "dev")
	promoteDone(t, st, staged, "staging")
	for _, e := range envs {
		promoteDone(t, st, released, e.Name)
	}
	if err := st.PutTag(ctx, store.TagEvent{Repository: repo, Tag: "1.0", Digest: released, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c, err := admission.New(ctx, admission.Options{Source: st, Environments: envs, Exempt: exempt, Audit: st,
		Clusters: []config.Cluster{{Name: "main", Namespaces: []config.NamespaceMap{
			{Names: []string{"shop-dev"}, Environment: "dev"},
			{Names: []string{"shop-staging"}, Environment: "staging"},
			{Names: []string{"shop-prod"}, Environment: "prod"},
		}}}})
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

// podReview is a hand-made AdmissionReview of a pod with these images.
func podReview(namespace string, images ...string) []byte {
	var cs []map[string]string
	for i, im := range images {
		cs = append(cs, map[string]string{"name": fmt.Sprintf("c%d", i), "image": im})
	}
	pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]string{"name": "p", "namespace": namespace},
		"spec": map[string]any{"containers": cs}})
	rev, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": "uid-1", "kind": map[string]string{"group": "", "version": "v1", "kind": "Pod"},
		"resource":  map[string]string{"group": "", "version": "v1", "resource": "pods"},
		"namespace": namespace, "operation": "CREATE", "userInfo": map[string]string{"username": "dev@test"},
		"object": json.RawMessage(pod),
	}})
	return rev
}

// post sends a review body to a webhook path and decodes the answer.
func post(t testing.TB, h http.Handler, path string, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", path, bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: HTTP %d %s", path, rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || out.Response == nil || out.APIVersion != "admission.k8s.io/v1" {
		t.Fatalf("%s: answer %s (%v)", path, rec.Body, err)
	}
	return out.Response
}

func TestDecisions(t *testing.T) {
	c, _ := newController(t)
	h := c.Handler()
	for _, tc := range []struct {
		ns, image string
		allowed   bool
		says      string
	}{
		{"shop-dev", repo + "@" + staged, true, ""},
		{"shop-staging", repo + "@" + staged, true, ""},
		{"shop-prod", repo + "@" + staged, false, "promoted only to staging, not to prod"},
		{"shop-prod", repo + "@" + released, true, ""},
		{"shop-prod", repo + "@" + stranger, false, "never promoted, not to prod: run `socle promote " + repo + "@" + stranger + " --to prod`"},
		{"shop-prod", repo + ":prod", true, ""},
		{"shop-prod", repo + ":1.0", true, ""},
		{"shop-prod", repo + ":2.0", false, `no promoted digest for the tag "2.0"`},
		{"shop-staging", repo + ":prod", false, `no promoted digest for the tag "prod"`},
		{"elsewhere", repo + "@" + stranger, true, ""},
		{"shop-prod", "Not An Image!", false, "does not parse"},
	} {
		resp := post(t, h, admission.ValidatePath+"/main", podReview(tc.ns, tc.image))
		if resp.UID != "uid-1" || resp.Allowed != tc.allowed {
			t.Errorf("%s in %s: allowed %v, want %v (%v)", tc.image, tc.ns, resp.Allowed, tc.allowed, resp.Result)
			continue
		}
		if !tc.allowed && (resp.Result.Code != 403 || !strings.Contains(resp.Result.Message, tc.says) || !strings.Contains(resp.Result.Message, "namespace "+tc.ns)) {
			t.Errorf("%s in %s: %+v, want it to say %q", tc.image, tc.ns, resp.Result, tc.says)
		}
	}
	// The mutating webhook pins tags to the promoted digest, with a JSON
	// patch of the container's image; digests are left alone.
	resp := post(t, h, admission.MutatePath+"/main", podReview("shop-prod", repo+":prod", repo+"@"+released, repo+":1.0"))
	if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("mutate: %+v", resp)
	}
	var ops []struct{ Op, Path, Value string }
	json.Unmarshal(resp.Patch, &ops)
	want := fmt.Sprint([]struct{ Op, Path, Value string }{{"replace", "/spec/containers/0/image", repo + "@" + released}, {"replace", "/spec/containers/2/image", repo + "@" + released}})
	if fmt.Sprint(ops) != want {
		t.Fatalf("patch %s, want %s", resp.Patch, want)
	}
}

// TestBadInput: whatever arrives, the answer is an AdmissionReview that
// says what is wrong, and nothing is admitted by accident.
func TestBadInput(t *testing.T) {
	c, _ := newController(t)
	h := c.Handler()
	many := func(n int) []string {
		var out []string
		for range n {
			out = append(out, repo+"@"+stranger)
		}
		return out
	}
	deployment := bytes.Replace(podReview("shop-prod"), []byte(`"kind":"Pod","version":"v1"`), []byte(`"kind":"Widget","version":"v1"`), 1)
	for _, tc := range []struct {
		name string
		body []byte
		code int32
		says string
	}{
		{"not JSON", []byte("{nope"), 400, "malformed AdmissionReview"},
		{"another API version", []byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}`), 400, "want admission.k8s.io/v1"},
		{"no request", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), 400, "no request"},
		{"too large", append([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":"`), bytes.Repeat([]byte("a"), admission.MaxReviewBytes)...), 400, "more than"},
		{"an unknown kind", deployment, 400, "does not admit this kind: v1/Widget"},
		{"a pod that is not a pod", bytes.Replace(podReview("shop-prod", "x"), []byte(`"spec":{`), []byte(`"spec":"a string","x":{`), 1), 400, "does not decode"},
		{"300 containers", podReview("shop-prod", many(300)...), 400, "300 containers, socle admits at most 256"},
		{"200 containers", podReview("shop-prod", many(200)...), 403, "and 195 more"},
	} {
		resp := post(t, h, admission.ValidatePath+"/main", tc.body)
		if resp.Allowed || resp.Result == nil || resp.Result.Code != tc.code || !strings.Contains(resp.Result.Message, tc.says) {
			t.Errorf("%s: %+v", tc.name, resp.Result)
		}
	}
	// An unknown cluster is refused, not admitted.
	if resp := post(t, h, admission.ValidatePath+"/other", podReview("shop-prod", repo+"@"+released)); resp.Allowed || !strings.Contains(resp.Result.Message, `no cluster "other"`) {
		t.Errorf("unknown cluster: %+v", resp.Result)
	}
}

// TestExemptions: an exempt namespace or image pattern is admitted as is.
func TestExemptions(t *testing.T) {
	c, _ := newController(t, config.AdmissionExempt{Namespace: "shop-p*"}, config.AdmissionExempt{Image: "registry.test.invalid/tools/**"})
	h := c.Handler()
	if resp := post(t, h, admission.ValidatePath+"/main", podReview("shop-prod", repo+"@"+stranger)); !resp.Allowed {
		t.Errorf("exempt namespace: %+v", resp.Result)
	}
	if resp := post(t, h, admission.ValidatePath+"/main", podReview("shop-staging", "registry.test.invalid/tools/debug/shell:1", repo+"@"+staged)); !resp.Allowed {
		t.Errorf("exempt image: %+v", resp.Result)
	}
	if resp := post(t, h, admission.ValidatePath+"/main", podReview("shop-staging", "registry.test.invalid/toolsy/shell:1")); resp.Allowed {
		t.Error("an image beside the exempt pattern was admitted")
	}
}

// TestWarnModeAndAudit: warn admits with warnings and an audit event;
// enforce denies with one; a dry run audits nothing.
func TestWarnModeAndAudit(t *testing.T) {
	c, st := newController(t)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Run(rctx)
	warnEnvs := []config.Environment{{Name: "dev"}, {Name: "staging", Admission: config.EnvironmentAdmission{Mode: config.ModeWarn}}, {Name: "prod"}}
	w, err := admission.New(ctx, admission.Options{Source: st, Environments: warnEnvs, Audit: st,
		Clusters: []config.Cluster{{Name: "main", Namespaces: []config.NamespaceMap{{Names: []string{"shop-staging"}, Environment: "staging"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	go w.Run(rctx)
	resp := post(t, w.Handler(), admission.ValidatePath, podReview("shop-staging", repo+"@"+stranger))
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.HasPrefix(resp.Warnings[0], "socle: ") {
		t.Fatalf("warn mode: %+v", resp)
	}
	post(t, c.Handler(), admission.ValidatePath, podReview("shop-prod", repo+"@"+stranger))
	dry := bytes.Replace(podReview("shop-prod", repo+"@"+stranger), []byte(`"operation":"CREATE"`), []byte(`"operation":"CREATE","dryRun":true`), 1)
	post(t, c.Handler(), admission.ValidatePath, dry)
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, _ := st.AuditEvents(ctx, 0, 1000)
		got := map[string]int{}
		for _, e := range evs {
			got[e.Action]++
		}
		if got[admission.ActionWarn] == 1 && got[admission.ActionDeny] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit events: %v", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRefresh: a promotion made after the controller started is admitted
// once the store's data generation moves, without a restart.
func TestRefresh(t *testing.T) {
	c, st := newController(t)
	h := c.Handler()
	if post(t, h, admission.ValidatePath, podReview("shop-prod", repo+"@"+staged)).Allowed {
		t.Fatal("staged digest admitted in prod")
	}
	promoteDone(t, st, staged, "prod")
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if resp := post(t, h, admission.ValidatePath, podReview("shop-prod", repo+"@"+staged)); !resp.Allowed {
		t.Fatalf("after its promotion: %+v", resp.Result)
	}
}

// TestWebhookConfigurations: the printed configurations parse back as
// Kubernetes objects with the CA, the selectors and the fail-closed
// policy.
func TestWebhookConfigurations(t *testing.T) {
	cl := config.Cluster{Name: "main", Namespaces: []config.NamespaceMap{{Names: []string{"a", "b"}, Environment: "prod"}, {Selector: "env=staging", Environment: "staging"}}}
	ca := []byte("-----BEGIN CERTIFICATE-----\nhand-made\n-----END CERTIFICATE-----\n")
	out, err := admission.WebhookConfigurations(cl, config.Admission{URL: "https://socle.test.invalid:8443", Exempt: []config.AdmissionExempt{{Namespace: "kube-system"}, {Namespace: "x*"}}}, ca)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"kind: MutatingWebhookConfiguration", "kind: ValidatingWebhookConfiguration",
		"url: https://socle.test.invalid:8443/admission/validate/main", "url: https://socle.test.invalid:8443/admission/mutate/main",
		"caBundle: " + base64.StdEncoding.EncodeToString(ca), "failurePolicy: Fail", "sideEffects: NoneOnDryRun",
		"kubernetes.io/metadata.name", "env: staging", "reinvocationPolicy: IfNeeded", "timeoutSeconds: 5",
		"expression: '!(request.namespace in [''kube-system''])'", "pods/ephemeralcontainers", "cronjobs",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("configuration lacks %q", want)
		}
	}
	if _, err := admission.WebhookConfigurations(cl, config.Admission{}, ca); err == nil {
		t.Error("a configuration with neither url nor service")
	}
}
