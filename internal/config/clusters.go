package config

import (
	"fmt"
	"net"
	"path"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Cluster is a Kubernetes cluster socle watches and admits images to.
type Cluster struct {
	Name string `yaml:"name"`
	// Kubeconfig is a kubeconfig file ("~/" is the home directory);
	// Context picks one of its contexts (default its current one).
	Kubeconfig string `yaml:"kubeconfig"`
	Context    string `yaml:"context"`
	// InCluster uses the service account socle runs as.
	InCluster bool `yaml:"in_cluster"`
	// Namespaces maps namespaces to socle environments; the first
	// mapping that names a namespace, or whose selector its labels
	// match, wins. Namespaces no mapping names are not socle's.
	Namespaces []NamespaceMap `yaml:"namespaces"`
}

// NamespaceMap maps namespaces, by name or by a label selector, to an
// environment.
type NamespaceMap struct {
	Names       []string `yaml:"names"`
	Selector    string   `yaml:"selector"`
	Environment string   `yaml:"environment"`
}

// Admission configures the admission webhooks socle serve runs.
type Admission struct {
	// Addr is the webhooks' TLS listener (or --admission-addr); empty
	// runs none.
	Addr string `yaml:"addr"`
	// URL is how the API server reaches the webhooks when socle runs
	// outside the cluster (https://host:port); Service when inside.
	URL     string            `yaml:"url"`
	Service *AdmissionService `yaml:"service"`
	// Hosts are the names and addresses of the generated serving
	// certificate, beside the listener's and the service's.
	Hosts []string `yaml:"hosts"`
	// TLS is a certificate and key to serve with, and the CA that signed
	// them (for the webhook configuration's caBundle); default a CA and
	// certificate generated in DATA_DIR/admission.
	TLS AdmissionTLS `yaml:"tls"`
	// Exempt images and namespaces are always admitted, unchanged.
	Exempt []AdmissionExempt `yaml:"exempt"`
	// FailurePolicy is the webhooks' (Fail, the default, or Ignore).
	FailurePolicy string `yaml:"failure_policy"`
	// Timeout is how long the API server waits for socle (default 5s,
	// at most 30s).
	Timeout Duration `yaml:"timeout"`
}

// AdmissionService names the Service in front of socle in the cluster.
type AdmissionService struct {
	Namespace string `yaml:"namespace"`
	Name      string `yaml:"name"`
	Port      int    `yaml:"port"`
}

// AdmissionTLS is the webhook listener's certificate.
type AdmissionTLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	CA   string `yaml:"ca"`
}

// AdmissionExempt exempts a namespace (by name or path.Match pattern)
// or an image (a repository pattern, "*" within a path segment, "**"
// across them, matched against the repository with its registry).
type AdmissionExempt struct {
	Namespace string `yaml:"namespace"`
	Image     string `yaml:"image"`
}

// EnvironmentAdmission is how admission treats an environment's
// namespaces.
type EnvironmentAdmission struct {
	// Mode is enforce (deny, the default) or warn (admit with a warning
	// and an audit event).
	Mode string `yaml:"mode"`
	// SignedBy lists public keys; an image must carry a signature by one.
	SignedBy []string `yaml:"signed_by"`
	// MaxSeverity refuses images with an open finding of this severity
	// or higher (low, medium, high, critical), fixable or not.
	MaxSeverity string `yaml:"max_severity"`
}

// Admission modes.
const (
	ModeEnforce = "enforce"
	ModeWarn    = "warn"
)

// AdmissionMode returns e's admission mode.
func (e Environment) AdmissionMode() string {
	if e.Admission.Mode == "" {
		return ModeEnforce
	}
	return e.Admission.Mode
}

// WebhookTimeout returns the API server's timeout for the webhooks.
func (a Admission) WebhookTimeout() time.Duration {
	if a.Timeout.Duration <= 0 {
		return 5 * time.Second
	}
	return a.Timeout.Duration
}

// Cluster returns the cluster named name.
func (f *File) Cluster(name string) (Cluster, bool) {
	for _, c := range f.Clusters {
		if c.Name == name {
			return c, true
		}
	}
	return Cluster{}, false
}

func (f *File) validateClusters() Errors {
	var errs Errors
	envs := map[string]bool{}
	for _, e := range f.Environments {
		envs[e.Name] = true
	}
	seen := map[string]bool{}
	for i, c := range f.Clusters {
		field := fmt.Sprintf("clusters[%d]", i)
		switch {
		case c.Name == "":
			errs = append(errs, f.errorf(field+".name", "required"))
		case seen[c.Name]:
			errs = append(errs, f.errorf(field+".name", "%q is used twice", c.Name))
		}
		seen[c.Name] = true
		if c.InCluster && c.Kubeconfig != "" {
			errs = append(errs, f.errorf(field, "either kubeconfig or in_cluster, not both"))
		}
		for j, m := range c.Namespaces {
			mf := fmt.Sprintf("%s.namespaces[%d]", field, j)
			if (len(m.Names) == 0) == (m.Selector == "") {
				errs = append(errs, f.errorf(mf, "give names or a selector, one of them"))
			}
			if m.Selector != "" {
				if _, err := labels.Parse(m.Selector); err != nil {
					errs = append(errs, f.errorf(mf+".selector", "%v", err))
				}
			}
			if !envs[m.Environment] {
				errs = append(errs, f.errorf(mf+".environment", "%q is not one of environments:", m.Environment))
			}
		}
	}
	a := f.Admission
	if a.Addr != "" {
		if _, _, err := net.SplitHostPort(a.Addr); err != nil {
			errs = append(errs, f.errorf("admission.addr", "%q is not host:port", a.Addr))
		}
	}
	if a.URL != "" && !strings.HasPrefix(a.URL, "https://") {
		errs = append(errs, f.errorf("admission.url", "the API server calls webhooks over https only"))
	}
	if a.URL != "" && a.Service != nil {
		errs = append(errs, f.errorf("admission", "either url or service, not both"))
	}
	if a.Service != nil && (a.Service.Name == "" || a.Service.Namespace == "") {
		errs = append(errs, f.errorf("admission.service", "needs a namespace and a name"))
	}
	if (a.TLS.Cert == "") != (a.TLS.Key == "") || (a.TLS.Cert != "" && a.TLS.CA == "") {
		errs = append(errs, f.errorf("admission.tls", "cert, key and ca go together"))
	}
	switch a.FailurePolicy {
	case "", "Fail", "Ignore":
	default:
		errs = append(errs, f.errorf("admission.failure_policy", "%q: want Fail or Ignore", a.FailurePolicy))
	}
	if a.Timeout.Duration > 30*time.Second || a.Timeout.Duration < 0 {
		errs = append(errs, f.errorf("admission.timeout", "at most 30s"))
	}
	for i, x := range a.Exempt {
		field := fmt.Sprintf("admission.exempt[%d]", i)
		if (x.Namespace == "") == (x.Image == "") {
			errs = append(errs, f.errorf(field, "give a namespace or an image, one of them"))
		}
		if _, err := path.Match(x.Namespace, ""); err != nil {
			errs = append(errs, f.errorf(field+".namespace", "bad pattern %q", x.Namespace))
		}
	}
	for i, e := range f.Environments {
		field := fmt.Sprintf("environments[%d].admission", i)
		switch e.Admission.Mode {
		case "", ModeEnforce, ModeWarn:
		default:
			errs = append(errs, f.errorf(field+".mode", "%q: want enforce or warn", e.Admission.Mode))
		}
		if s := e.Admission.MaxSeverity; s != "" && !severities[strings.ToLower(s)] {
			errs = append(errs, f.errorf(field+".max_severity", "%q: want low, medium, high or critical", s))
		}
	}
	return errs
}

// EnvironmentFor returns the environment namespace maps to in c: the
// first mapping that names it, or whose selector its labels match.
// labels may be nil when they are not known; needLabels then says a
// selector mapping could not be decided without them.
func (c Cluster) EnvironmentFor(namespace string, nsLabels map[string]string) (env string, needLabels bool) {
	for _, m := range c.Namespaces {
		if slices.Contains(m.Names, namespace) {
			return m.Environment, false
		}
		if m.Selector == "" {
			continue
		}
		if nsLabels == nil {
			return "", true
		}
		sel, err := labels.Parse(m.Selector)
		if err == nil && sel.Matches(labels.Set(nsLabels)) {
			return m.Environment, false
		}
	}
	return "", false
}
