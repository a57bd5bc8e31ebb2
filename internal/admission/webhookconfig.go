package admission

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	admregv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/socle-dev/socle/internal/config"
)

// rules are the objects the webhooks see: pods (and the ephemeral
// containers added to them), and the workloads with a pod template.
func rules() []admregv1.RuleWithOperations {
	ops := []admregv1.OperationType{admregv1.Create, admregv1.Update}
	rule := func(group string, resources ...string) admregv1.RuleWithOperations {
		scope := admregv1.NamespacedScope
		return admregv1.RuleWithOperations{Operations: ops, Rule: admregv1.Rule{
			APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources, Scope: &scope}}
	}
	return []admregv1.RuleWithOperations{
		rule("", "pods", "pods/ephemeralcontainers"),
		rule("apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
		rule("batch", "jobs", "cronjobs"),
	}
}

// WebhookConfigurations returns the ValidatingWebhookConfiguration and
// MutatingWebhookConfiguration of a cluster, as YAML: one webhook per
// namespace mapping (its namespaceSelector selects the mapping's
// namespaces), calling socle at a.URL or a.Service with the CA caPEM.
func WebhookConfigurations(cl config.Cluster, a config.Admission, caPEM []byte) ([]byte, error) {
	if a.URL == "" && a.Service == nil {
		return nil, fmt.Errorf("admission: give url (socle outside the cluster) or service (inside) for the API server to call")
	}
	if len(cl.Namespaces) == 0 {
		return nil, fmt.Errorf("cluster %s maps no namespace to an environment", cl.Name)
	}
	failure := admregv1.Fail
	if a.FailurePolicy == "Ignore" {
		failure = admregv1.Ignore
	}
	timeout := int32(a.WebhookTimeout().Seconds())
	side := admregv1.SideEffectClassNoneOnDryRun
	equivalent := admregv1.Equivalent
	reinvoke := admregv1.IfNeededReinvocationPolicy
	name := "socle-" + cl.Name
	conditions := matchConditions(a.Exempt)

	validating := admregv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/managed-by": "socle"}},
	}
	mutating := admregv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: validating.ObjectMeta,
	}
	for i, m := range cl.Namespaces {
		sel, err := namespaceSelector(m)
		if err != nil {
			return nil, err
		}
		hook := fmt.Sprintf("%d-%s.%s.admission.socle.dev", i, m.Environment, cl.Name)
		validating.Webhooks = append(validating.Webhooks, admregv1.ValidatingWebhook{
			Name: "validate-" + hook, ClientConfig: clientConfig(a, ValidatePath, cl.Name, caPEM),
			Rules: rules(), FailurePolicy: &failure, MatchPolicy: &equivalent, NamespaceSelector: sel,
			SideEffects: &side, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"}, MatchConditions: conditions,
		})
		mutating.Webhooks = append(mutating.Webhooks, admregv1.MutatingWebhook{
			Name: "pin-" + hook, ClientConfig: clientConfig(a, MutatePath, cl.Name, caPEM),
			Rules: rules(), FailurePolicy: &failure, MatchPolicy: &equivalent, NamespaceSelector: sel,
			SideEffects: &side, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy: &reinvoke, MatchConditions: conditions,
		})
	}
	v, err := yaml.Marshal(validating)
	if err != nil {
		return nil, err
	}
	mu, err := yaml.Marshal(mutating)
	if err != nil {
		return nil, err
	}
	return []byte("# socle admission for cluster " + cl.Name + ": kubectl apply -f this file\n" + string(mu) + "---\n" + string(v)), nil
}

func clientConfig(a config.Admission, path, cluster string, caPEM []byte) admregv1.WebhookClientConfig {
	q := "/" + url.PathEscape(cluster)
	if a.Service != nil {
		p := path + q
		port := int32(a.Service.Port)
		if port == 0 {
			port = 443
		}
		return admregv1.WebhookClientConfig{CABundle: caPEM, Service: &admregv1.ServiceReference{
			Namespace: a.Service.Namespace, Name: a.Service.Name, Path: &p, Port: &port}}
	}
	u := strings.TrimSuffix(a.URL, "/") + path + q
	return admregv1.WebhookClientConfig{CABundle: caPEM, URL: &u}
}

func namespaceSelector(m config.NamespaceMap) (*metav1.LabelSelector, error) {
	if len(m.Names) > 0 {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: m.Names}}}, nil
	}
	sel, err := metav1.ParseToLabelSelector(m.Selector)
	if err != nil {
		return nil, fmt.Errorf("namespace selector %q: %w", m.Selector, err)
	}
	return sel, nil
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// matchConditions keep the API server from calling socle for namespaces
// exempt by name (patterns are decided by socle itself).
func matchConditions(exempt []config.AdmissionExempt) []admregv1.MatchCondition {
	var names []string
	for _, x := range exempt {
		if dnsLabel.MatchString(x.Namespace) {
			names = append(names, "'"+x.Namespace+"'")
		}
	}
	if len(names) == 0 {
		return nil
	}
	return []admregv1.MatchCondition{{Name: "not-exempt-namespace",
		Expression: "!(request.namespace in [" + strings.Join(names, ", ") + "])"}}
}
