package kubetest

import (
	"crypto/tls"
	"net/http"
)

// insecureTransport reaches the API server's self-signed readiness
// endpoint while it starts; the clients use the kubeconfig.
func insecureTransport() *http.Transport {
	return &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // test control plane on loopback
}
