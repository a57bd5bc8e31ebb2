package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/socle-dev/socle/internal/admission"
	"github.com/socle-dev/socle/internal/kube"
	"github.com/socle-dev/socle/internal/sign"
)

// clusterSet is the watched clusters, by name: they tell admission the
// labels of their namespaces.
type clusterSet map[string]*kube.Watcher

func (c clusterSet) Labels(cluster, namespace string) (map[string]string, bool) {
	if w, ok := c[cluster]; ok {
		return w.Labels(namespace)
	}
	return nil, false
}

// buildClusters connects to the configured clusters and makes the
// admission controller, and its TLS listener when an address is given.
func (a *App) buildClusters(ctx context.Context, metrics *Metrics) error {
	f := a.cfg.File
	if len(f.Clusters) == 0 && a.cfg.AdmissionAddr == "" {
		return nil
	}
	a.clusters = clusterSet{}
	for _, cl := range f.Clusters {
		client, err := kube.Client(cl, f.Resolve)
		if err != nil {
			return err
		}
		a.clusters[cl.Name] = &kube.Watcher{Cluster: cl, Client: client, Store: a.st, Log: a.log.With("component", "kube", "cluster", cl.Name)}
	}
	var err error
	a.admission, err = admission.New(ctx, admission.Options{
		Source: a.st, Environments: f.Environments, Clusters: f.Clusters, Exempt: f.Admission.Exempt,
		Namespaces: a.clusters, Audit: a.st, Log: a.log.With("component", "admission"),
		Keys: func(files []string) ([]*sign.Verifier, error) {
			var out []*sign.Verifier
			for _, k := range files {
				v, err := sign.LoadVerifierFile(f.Resolve(k))
				if err != nil {
					return nil, err
				}
				out = append(out, v)
			}
			return out, nil
		},
		Signatures: &admission.Signatures{Remote: a.remote, Log: a.log.With("component", "admission")},
	})
	if err != nil {
		return err
	}
	metrics.Register(a.admission.Collectors()...)
	if a.cfg.AdmissionAddr == "" {
		return nil
	}
	certs, err := a.admissionCertificates()
	if err != nil {
		return err
	}
	a.admissionCA = certs.CA
	ln, err := net.Listen("tcp", a.cfg.AdmissionAddr)
	if err != nil {
		return fmt.Errorf("admission address %s: %w", a.cfg.AdmissionAddr, err)
	}
	a.admLn = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{certs.Serving}, MinVersion: tls.VersionTLS12})
	// Reviews are small and must be answered within the API server's
	// timeout: every phase of a request is bounded.
	a.admSrv = &http.Server{Handler: a.admission.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	return nil
}

// admissionCertificates are the configured ones, or a CA and serving
// certificate kept in DATA_DIR/admission for the names the API server
// may dial: the listener's address, loopback, admission.hosts, the
// service's DNS names and the URL's host.
func (a *App) admissionCertificates() (admission.Certificates, error) {
	ac := a.cfg.File.Admission
	if ac.TLS.Cert != "" {
		return admission.LoadCertificates(a.cfg.File.Resolve(ac.TLS.Cert), a.cfg.File.Resolve(ac.TLS.Key), a.cfg.File.Resolve(ac.TLS.CA))
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, _, err := net.SplitHostPort(a.cfg.AdmissionAddr); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	hosts = append(hosts, ac.Hosts...)
	if s := ac.Service; s != nil {
		hosts = append(hosts, s.Name+"."+s.Namespace+".svc", s.Name+"."+s.Namespace+".svc.cluster.local")
	}
	if u, err := url.Parse(ac.URL); err == nil && u.Hostname() != "" {
		hosts = append(hosts, u.Hostname())
	}
	return admission.EnsureCertificates(filepath.Join(a.cfg.DataDir, "admission"), hosts, time.Now())
}

// runClusters starts the watchers, the admission refresh and the
// webhook listener; they stop with ctx.
func (a *App) runClusters(ctx context.Context, serveErr chan<- error) {
	for _, w := range a.clusters {
		go func() {
			if err := w.Run(ctx); err != nil {
				a.log.Error("watching a cluster", "cluster", w.Cluster.Name, "err", err)
			}
		}()
	}
	if a.admission != nil {
		go a.admission.Run(ctx)
	}
	if a.admSrv != nil {
		go func() { serveErr <- ignoreClosed(a.admSrv.Serve(a.admLn)) }()
	}
}
