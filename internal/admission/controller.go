package admission

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/vuln"
)

// NamespaceLabels tells the labels of a cluster's namespaces, from the
// cluster's informers; false when they are not known (yet).
type NamespaceLabels interface {
	Labels(cluster, namespace string) (map[string]string, bool)
}

// Auditor records admission events.
type Auditor interface {
	AppendAudit(ctx context.Context, ev store.AuditEvent) (store.AuditEvent, error)
}

// Options configure a Controller.
type Options struct {
	Source       Source
	Environments []config.Environment
	Clusters     []config.Cluster
	Exempt       []config.AdmissionExempt
	// Namespaces gives namespace labels for selector mappings; nil
	// decides only the mappings by name.
	Namespaces NamespaceLabels
	Audit      Auditor
	// Keys loads an environment's signed_by key files.
	Keys       func(files []string) ([]*sign.Verifier, error)
	Signatures *Signatures
	Log        *slog.Logger
	// Refresh is how often the data generation is polled (default 1s).
	Refresh time.Duration
}

// Controller decides admission reviews from an in-memory snapshot.
type Controller struct {
	o        Options
	order    map[string]int
	envs     map[string]config.Environment
	keys     map[string][]*sign.Verifier
	severity bool
	snap     atomic.Pointer[Snapshot]
	audit    chan store.AuditEvent
	metrics  *metrics
}

// New makes a controller and reads its first snapshot.
func New(ctx context.Context, o Options) (*Controller, error) {
	c, err := newController(o)
	if err != nil {
		return nil, err
	}
	if err := c.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("reading what was promoted: %w", err)
	}
	return c, nil
}

// newController makes a controller with no snapshot yet.
func newController(o Options) (*Controller, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Signatures == nil {
		o.Signatures = &Signatures{Log: o.Log}
	}
	o.Signatures.init()
	c := &Controller{o: o, order: map[string]int{}, envs: map[string]config.Environment{}, keys: map[string][]*sign.Verifier{},
		audit: make(chan store.AuditEvent, 4096), metrics: newMetrics()}
	for i, e := range o.Environments {
		c.order[e.Name], c.envs[e.Name] = i, e
		if e.Admission.MaxSeverity != "" {
			c.severity = true
		}
		if len(e.Admission.SignedBy) > 0 {
			if o.Keys == nil {
				return nil, fmt.Errorf("environment %s: admission.signed_by needs keys loaded", e.Name)
			}
			ks, err := o.Keys(e.Admission.SignedBy)
			if err != nil {
				return nil, fmt.Errorf("environment %s: admission.signed_by: %w", e.Name, err)
			}
			c.keys[e.Name] = ks
		}
	}
	return c, nil
}

// Collectors are the controller's Prometheus metrics.
func (c *Controller) Collectors() []prometheus.Collector { return c.metrics.collectors() }

// Snapshot is the snapshot decisions are made from.
func (c *Controller) Snapshot() *Snapshot { return c.snap.Load() }

// Refresh rebuilds the snapshot when the store's data changed, and asks
// for the signatures environments need.
func (c *Controller) Refresh(ctx context.Context) error {
	if cur := c.snap.Load(); cur != nil {
		gen, err := c.o.Source.DataGeneration(ctx)
		if err != nil || gen == cur.Generation {
			return err
		}
	}
	start := time.Now()
	s, err := build(ctx, c.o.Source, c.order, c.severity)
	if err != nil {
		return err
	}
	c.snap.Store(s)
	c.metrics.refresh.Observe(time.Since(start).Seconds())
	c.metrics.promoted.Set(float64(s.Size()))
	c.wantSignatures(s)
	return nil
}

// wantSignatures queues the digests each signing environment admits.
func (c *Controller) wantSignatures(s *Snapshot) {
	for env, keys := range c.keys {
		idx := c.order[env]
		for digest, reached := range s.reached {
			if reached >= idx {
				c.o.Signatures.want(s.stored[digest], digest, env, keys)
			}
		}
	}
}

// Run refreshes the snapshot, checks signatures and writes audit events
// until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	go c.o.Signatures.run(ctx, 4)
	go c.writeAudit(ctx)
	every := c.o.Refresh
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := c.Refresh(rctx); err != nil {
				c.o.Log.Error("admission: refreshing the snapshot", "err", err)
			}
			cancel()
		}
	}
}

// writeAudit appends queued events; the request path never waits on it.
func (c *Controller) writeAudit(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-c.audit:
			if c.o.Audit == nil {
				continue
			}
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if _, err := c.o.Audit.AppendAudit(actx, ev); err != nil {
				c.o.Log.Error("admission: writing an audit event", "err", err, "action", ev.Action)
			}
			cancel()
		}
	}
}

func (c *Controller) queueAudit(ev store.AuditEvent, dryRun *bool) {
	if dryRun != nil && *dryRun {
		return // a dry run has no side effects (sideEffects: NoneOnDryRun)
	}
	select {
	case c.audit <- ev:
	default:
		c.metrics.auditDropped.Inc()
		c.o.Log.Error("admission: the audit queue is full, an event was dropped", "action", ev.Action, "subject", ev.Subject)
	}
}

// environment returns the environment a namespace of cluster maps to.
func (c *Controller) environment(cluster, namespace string) (config.Environment, bool, error) {
	cl, ok := c.cluster(cluster)
	if !ok {
		return config.Environment{}, false, fmt.Errorf("socle has no cluster %q in clusters:", cluster)
	}
	env, need := cl.EnvironmentFor(namespace, nil)
	if need {
		var labels map[string]string
		known := false
		if c.o.Namespaces != nil {
			labels, known = c.o.Namespaces.Labels(cl.Name, namespace)
		}
		if !known {
			return config.Environment{}, false, fmt.Errorf("socle does not know the labels of namespace %s in cluster %s yet", namespace, cl.Name)
		}
		env, _ = cl.EnvironmentFor(namespace, labels)
	}
	if env == "" {
		return config.Environment{}, false, nil
	}
	e, ok := c.envs[env]
	return e, ok, nil
}

func (c *Controller) cluster(name string) (config.Cluster, bool) {
	if name == "" && len(c.o.Clusters) == 1 {
		return c.o.Clusters[0], true
	}
	for _, cl := range c.o.Clusters {
		if cl.Name == name {
			return cl, true
		}
	}
	return config.Cluster{}, false
}

func (c *Controller) namespaceExempt(ns string) bool {
	for _, x := range c.o.Exempt {
		if x.Namespace != "" {
			if ok, _ := path.Match(x.Namespace, ns); ok {
				return true
			}
		}
	}
	return false
}

func (c *Controller) imageExempt(repository string) bool {
	for _, x := range c.o.Exempt {
		if x.Image != "" && (oci.MatchRepository(x.Image, repository) || oci.MatchRepository(strings.TrimSuffix(x.Image, "/*")+"/**", repository)) {
			return true
		}
	}
	return false
}

// verdict is the decision on one container.
type verdict struct {
	container Container
	// pinned is the image rewritten to a digest, when it had a tag.
	pinned string
	digest string
	// reasons the image may not run; empty when it may.
	reasons []string
}

// judge decides one container's image in env with snapshot s.
func (c *Controller) judge(s *Snapshot, env config.Environment, ct Container) verdict {
	v := verdict{container: ct}
	ref, err := name.ParseReference(ct.Image)
	if err != nil {
		v.reasons = append(v.reasons, fmt.Sprintf("image %q does not parse: %v", ct.Image, err))
		return v
	}
	repo := ref.Context().Name()
	if c.imageExempt(repo) {
		return v
	}
	switch r := ref.(type) {
	case name.Digest:
		v.digest = r.DigestStr()
	case name.Tag:
		d, ok := s.resolve(env.Name, repo, r.TagStr())
		if !ok {
			v.reasons = append(v.reasons, fmt.Sprintf("%s: socle has no promoted digest for the tag %q; promote one with `socle promote %s@sha256:… --to %s`",
				ct.Image, r.TagStr(), repo, env.Name))
			return v
		}
		v.digest, v.pinned = d, repo+"@"+d
	}
	idx := c.order[env.Name]
	reached, ok := s.Promoted(v.digest)
	if !ok || reached < idx {
		where := "never promoted"
		if ok {
			where = "promoted only to " + c.o.Environments[reached].Name
		}
		v.reasons = append(v.reasons, fmt.Sprintf("%s@%s was %s, not to %s: run `socle promote %s@%s --to %s`",
			repo, oci.ShortDigest(v.digest), where, env.Name, repo, v.digest, env.Name))
		return v
	}
	if keys := c.keys[env.Name]; len(keys) > 0 {
		signed, checked := c.o.Signatures.Verified(v.digest, env.Name)
		switch {
		case !checked:
			v.reasons = append(v.reasons, fmt.Sprintf("%s@%s: its signature is not verified yet (socle checks promoted digests in the background; retry shortly)", repo, oci.ShortDigest(v.digest)))
		case !signed:
			v.reasons = append(v.reasons, fmt.Sprintf("%s@%s carries no signature by the keys %s requires (%s): sign it with `cosign sign --key …`",
				repo, oci.ShortDigest(v.digest), env.Name, strings.Join(env.Admission.SignedBy, ", ")))
		}
	}
	if limit := env.Admission.MaxSeverity; limit != "" {
		worst, known := s.severity[v.digest]
		switch {
		case !known:
			v.reasons = append(v.reasons, fmt.Sprintf("%s@%s: socle has no scan of it, and %s refuses open findings of %s or more", repo, oci.ShortDigest(v.digest), env.Name, limit))
		case worst >= vuln.SeverityRank(vuln.NormalizeSeverity(limit)):
			v.reasons = append(v.reasons, fmt.Sprintf("%s@%s has an open %s finding; %s refuses %s or more: see `socle scan %s@%s`",
				repo, oci.ShortDigest(v.digest), severityName(worst), env.Name, strings.ToUpper(limit), repo, v.digest))
		}
	}
	return v
}

func severityName(rank int) string {
	for _, s := range vuln.Severities {
		if vuln.SeverityRank(s) == rank {
			return s
		}
	}
	return vuln.SeverityUnknown
}
