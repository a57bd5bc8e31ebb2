package admission

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/store"
)

// The webhooks' paths. The configuration `socle admission config`
// prints adds /CLUSTER, which names the cluster (a webhook URL may not
// carry a query); without it, the only cluster configured.
const (
	ValidatePath = "/admission/validate"
	MutatePath   = "/admission/mutate"
)

// Audit actions.
const (
	ActionDeny = "admission.deny"
	ActionWarn = "admission.warn"
)

// Handler serves both webhooks.
func (c *Controller) Handler() http.Handler {
	mux := http.NewServeMux()
	validate := func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, false) }
	mutate := func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, true) }
	mux.HandleFunc("POST "+ValidatePath, validate)
	mux.HandleFunc("POST "+ValidatePath+"/{cluster}", validate)
	mux.HandleFunc("POST "+MutatePath, mutate)
	mux.HandleFunc("POST "+MutatePath+"/{cluster}", mutate)
	return mux
}

func (c *Controller) serve(w http.ResponseWriter, r *http.Request, mutate bool) {
	webhook := "validate"
	if mutate {
		webhook = "mutate"
	}
	rev, err := DecodeReview(http.MaxBytesReader(w, r.Body, MaxReviewBytes+1))
	start := time.Now()
	var resp *admissionv1.AdmissionResponse
	decision := "error"
	if err != nil {
		resp = refuse("", http.StatusBadRequest, err.Error())
	} else {
		resp, decision = c.Review(rev.Request, r.PathValue("cluster"), mutate)
	}
	out := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Response: resp}
	b, err := json.Marshal(out)
	if err != nil {
		http.Error(w, "encoding the answer", http.StatusInternalServerError)
		return
	}
	c.metrics.decisions.WithLabelValues(webhook, decision).Inc()
	c.metrics.latency.WithLabelValues(decision).Observe(time.Since(start).Seconds())
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func refuse(uid string, code int32, msg string) *admissionv1.AdmissionResponse {
	reason := metav1.StatusReasonForbidden
	if code == http.StatusBadRequest {
		reason = metav1.StatusReasonBadRequest
	}
	return &admissionv1.AdmissionResponse{UID: types.UID(uid), Allowed: false,
		Result: &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg}}
}

// Review decides one request for the validating webhook, or pins tags
// for the mutating one. It returns the answer and the decision's name
// (allow, deny, warn, pin, error).
func (c *Controller) Review(req *admissionv1.AdmissionRequest, cluster string, mutate bool) (*admissionv1.AdmissionResponse, string) {
	allow := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return allow, "allow"
	}
	if req.SubResource != "" && req.SubResource != "ephemeralcontainers" {
		return allow, "allow"
	}
	if c.namespaceExempt(req.Namespace) {
		return allow, "allow"
	}
	s := c.snap.Load()
	env, mapped, err := c.environment(cluster, req.Namespace)
	switch {
	case err != nil:
		return refuse(string(req.UID), http.StatusServiceUnavailable, "socle: "+err.Error()), "error"
	case !mapped:
		return allow, "allow"
	case s == nil:
		return refuse(string(req.UID), http.StatusServiceUnavailable, "socle: the admission data is not loaded yet"), "error"
	}
	obj, err := objectOf(req)
	if err != nil {
		return refuse(string(req.UID), http.StatusBadRequest, "socle: "+err.Error()), "error"
	}
	verdicts := make([]verdict, len(obj.Containers))
	for i, ct := range obj.Containers {
		verdicts[i] = c.judge(s, env, ct)
	}
	if mutate {
		return c.pin(allow, verdicts)
	}
	var reasons []string
	for _, v := range verdicts {
		reasons = append(reasons, v.reasons...)
	}
	if len(reasons) == 0 {
		return allow, "allow"
	}
	ev := c.event(req, cluster, env, obj, verdicts, reasons)
	if env.AdmissionMode() == config.ModeWarn {
		ev.Action = ActionWarn
		c.queueAudit(ev, req.DryRun)
		allow.Warnings = warnings(reasons)
		return allow, "warn"
	}
	ev.Action = ActionDeny
	c.queueAudit(ev, req.DryRun)
	return refuse(string(req.UID), http.StatusForbidden, denial(obj, req.Namespace, env.Name, reasons)), "deny"
}

// pin answers the mutating webhook: a JSON patch replacing each tag
// socle resolved by its digest.
func (c *Controller) pin(allow *admissionv1.AdmissionResponse, verdicts []verdict) (*admissionv1.AdmissionResponse, string) {
	type op struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value string `json:"value"`
	}
	var ops []op
	for _, v := range verdicts {
		if v.pinned != "" && v.pinned != v.container.Image {
			ops = append(ops, op{"replace", v.container.Path, v.pinned})
		}
	}
	if len(ops) == 0 {
		return allow, "allow"
	}
	patch, _ := json.Marshal(ops)
	pt := admissionv1.PatchTypeJSONPatch
	allow.Patch, allow.PatchType = patch, &pt
	return allow, "pin"
}

func (c *Controller) event(req *admissionv1.AdmissionRequest, cluster string, env config.Environment, obj Object, verdicts []verdict, reasons []string) store.AuditEvent {
	var images []string
	for _, v := range verdicts {
		if len(v.reasons) > 0 {
			images = append(images, v.container.Image)
		}
	}
	details, _ := json.Marshal(map[string]any{
		"cluster": cluster, "environment": env.Name, "mode": env.AdmissionMode(), "uid": req.UID,
		"operation": req.Operation, "images": images, "reasons": reasons,
	})
	return store.AuditEvent{At: time.Now().UTC(), Actor: req.UserInfo.Username,
		Subject: fmt.Sprintf("%s/%s %s", req.Namespace, strings.ToLower(obj.Kind), cmp.Or(obj.Name, req.Name)), Details: details}
}

// denial is the message kubectl shows: what, where, why, and what to run.
func denial(obj Object, namespace, env string, reasons []string) string {
	const most = 5
	shown := reasons
	if len(shown) > most {
		shown = shown[:most]
	}
	msg := fmt.Sprintf("socle: %s %s in namespace %s (environment %s) may not run: %s", strings.ToLower(obj.Kind), cmp.Or(obj.Name, "(new)"), namespace, env, strings.Join(shown, "; "))
	if len(reasons) > most {
		msg += fmt.Sprintf("; and %d more", len(reasons)-most)
	}
	return msg
}

// warnings are the reasons as AdmissionResponse warnings, which the API
// server limits in number and length.
func warnings(reasons []string) []string {
	var out []string
	for i, r := range reasons {
		if i == 10 {
			out = append(out, fmt.Sprintf("socle: and %d more", len(reasons)-10))
			break
		}
		if len(r) > 240 {
			r = r[:240] + "…"
		}
		out = append(out, "socle: "+r)
	}
	return out
}
