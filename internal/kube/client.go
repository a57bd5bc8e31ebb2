package kube

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/socle-dev/socle/internal/config"
)

// RESTConfig is how socle reaches cluster c: its kubeconfig (a path of
// socle.yaml, resolved by resolve; "~/" is the home directory), or the
// in-cluster service account. Every request has a deadline.
func RESTConfig(c config.Cluster, resolve func(string) string) (*rest.Config, error) {
	var rc *rest.Config
	var err error
	if c.InCluster {
		rc, err = rest.InClusterConfig()
	} else {
		path := c.Kubeconfig
		if rest, ok := strings.CutPrefix(path, "~/"); ok {
			home, _ := os.UserHomeDir()
			path = filepath.Join(home, rest)
		} else if resolve != nil {
			path = resolve(path)
		}
		rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
		if path == "" {
			rules = clientcmd.NewDefaultClientConfigLoadingRules()
		}
		rc, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: c.Context}).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	// Deadlines: connections and TLS handshakes are bounded here (client-go
	// bounds handshakes at 10s); lists run under the caller's context; a
	// watch ends on the server's timeout and is started again. A client
	// Timeout would cut every watch, so none is set.
	rc.Dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	rc.UserAgent = "socle"
	return rc, nil
}

// Client returns a clientset for cluster c.
func Client(c config.Cluster, resolve func(string) string) (kubernetes.Interface, error) {
	rc, err := RESTConfig(c, resolve)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(rc)
}
