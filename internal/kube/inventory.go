package kube

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	batchlisters "k8s.io/client-go/listers/batch/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/store"
)

// InventoryStore is where the watcher records what runs.
type InventoryStore interface {
	SyncRunning(ctx context.Context, cluster string, rows []store.Running, now time.Time) (started, stopped int, err error)
}

// Watcher follows one cluster's pods and namespaces with informers, and
// records the digests its running containers run.
type Watcher struct {
	Cluster config.Cluster
	Client  kubernetes.Interface
	Store   InventoryStore
	Log     *slog.Logger
	// Debounce gathers a burst of pod events into one sync (default
	// 250ms); Resync syncs anyway, to mark rows seen (default 30s).
	Debounce, Resync time.Duration

	pods   corelisters.PodLister
	ns     corelisters.NamespaceLister
	rs     appslisters.ReplicaSetLister
	jobs   batchlisters.JobLister
	synced atomic.Bool
	kick   chan struct{}
}

// Labels returns a namespace's labels, once the informers have synced.
func (w *Watcher) Labels(namespace string) (map[string]string, bool) {
	if !w.synced.Load() {
		return nil, false
	}
	ns, err := w.ns.Get(namespace)
	if err != nil {
		return nil, false
	}
	return ns.Labels, true
}

// stripManaged drops what socle never reads from cached objects, to keep
// the informers' memory small.
func stripManaged(obj any) (any, error) {
	if m, ok := obj.(metav1.ObjectMetaAccessor); ok {
		m.GetObjectMeta().SetManagedFields(nil)
		m.GetObjectMeta().SetAnnotations(nil)
	}
	return obj, nil
}

// Run starts the informers and syncs the inventory on every change
// until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Log == nil {
		w.Log = slog.New(slog.DiscardHandler)
	}
	w.kick = make(chan struct{}, 1)
	f := informers.NewSharedInformerFactoryWithOptions(w.Client, 10*time.Minute, informers.WithTransform(stripManaged))
	podInf, nsInf := f.Core().V1().Pods(), f.Core().V1().Namespaces()
	w.pods, w.ns = podInf.Lister(), nsInf.Lister()
	w.rs, w.jobs = f.Apps().V1().ReplicaSets().Lister(), f.Batch().V1().Jobs().Lister()
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.poke() },
		UpdateFunc: func(any, any) { w.poke() },
		DeleteFunc: func(any) { w.poke() },
	}
	if _, err := podInf.Informer().AddEventHandler(kick); err != nil {
		return err
	}
	if _, err := nsInf.Informer().AddEventHandler(kick); err != nil {
		return err
	}
	f.Start(ctx.Done())
	defer f.Shutdown()
	for typ, ok := range f.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cluster %s: the %v informer did not sync", w.Cluster.Name, typ)
		}
	}
	w.synced.Store(true)
	w.Log.Info("watching the cluster", "cluster", w.Cluster.Name)
	resync := time.NewTicker(cmpDuration(w.Resync, 30*time.Second))
	defer resync.Stop()
	w.sync(ctx)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-resync.C:
		case <-w.kick:
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(cmpDuration(w.Debounce, 250*time.Millisecond)):
			}
		}
		w.sync(ctx)
	}
}

func cmpDuration(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func (w *Watcher) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Watcher) sync(ctx context.Context) {
	rows, err := w.Running()
	if err != nil {
		w.Log.Error("reading the cluster's pods", "cluster", w.Cluster.Name, "err", err)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	started, stopped, err := w.Store.SyncRunning(sctx, w.Cluster.Name, rows, time.Now())
	if err != nil {
		w.Log.Error("recording what runs", "cluster", w.Cluster.Name, "err", err)
		return
	}
	if started+stopped > 0 {
		w.Log.Info("inventory", "cluster", w.Cluster.Name, "running", len(rows), "started", started, "stopped", stopped)
	}
}

// Running returns what runs in the cluster now, from the informers'
// caches: one row per running container of a running pod whose digest
// is known.
func (w *Watcher) Running() ([]store.Running, error) {
	pods, err := w.pods.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	var rows []store.Running
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
			continue
		}
		nsLabels, _ := w.Labels(p.Namespace)
		env, _ := w.Cluster.EnvironmentFor(p.Namespace, nsLabels)
		workload := w.workloadOf(p)
		images := specImages(&p.Spec)
		statuses := append(append(append([]corev1.ContainerStatus{}, p.Status.ContainerStatuses...), p.Status.InitContainerStatuses...), p.Status.EphemeralContainerStatuses...)
		for _, cs := range statuses {
			if cs.State.Running == nil {
				continue
			}
			repo, digest, ok := imageOf(images[cs.Name], cs)
			if !ok {
				continue
			}
			rows = append(rows, store.Running{Cluster: w.Cluster.Name, Namespace: p.Namespace, Workload: workload,
				Container: cs.Name, Environment: env, Repository: repo, Digest: digest, Pods: 1})
		}
	}
	return rows, nil
}

func specImages(s *corev1.PodSpec) map[string]string {
	out := map[string]string{}
	for _, c := range s.Containers {
		out[c.Name] = c.Image
	}
	for _, c := range s.InitContainers {
		out[c.Name] = c.Image
	}
	for _, c := range s.EphemeralContainers {
		out[c.Name] = c.Image
	}
	return out
}

// imageOf returns the repository and manifest digest a container runs:
// the digest from its status's imageID (repo@sha256:…, as kubelets
// report it), else from its spec image when that is pinned. An imageID
// that is only an image ID (sha256:… of the config) says nothing of the
// manifest.
func imageOf(specImage string, cs corev1.ContainerStatus) (repo, digest string, ok bool) {
	image := specImage
	if image == "" {
		image = cs.Image
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		return "", "", false
	}
	repo = ref.Context().Name()
	if _, d, found := strings.Cut(cs.ImageID, "@"); found && strings.HasPrefix(d, "sha256:") && len(d) == 71 {
		return repo, d, true
	}
	if d, isDigest := ref.(name.Digest); isDigest {
		return repo, d.DigestStr(), true
	}
	return "", "", false
}

// workloadOf names a pod's top owner: Deployment/NAME through its
// ReplicaSet, CronJob/NAME through its Job, the StatefulSet or
// DaemonSet, or the pod itself.
func (w *Watcher) workloadOf(p *corev1.Pod) string {
	owner := metav1.GetControllerOf(p)
	if owner == nil {
		return "Pod/" + p.Name
	}
	switch owner.Kind {
	case "ReplicaSet":
		if rs, err := w.rs.ReplicaSets(p.Namespace).Get(owner.Name); err == nil {
			if top := metav1.GetControllerOf(rs); top != nil {
				return top.Kind + "/" + top.Name
			}
		}
	case "Job":
		if j, err := w.jobs.Jobs(p.Namespace).Get(owner.Name); err == nil {
			if top := metav1.GetControllerOf(j); top != nil {
				return top.Kind + "/" + top.Name
			}
		}
	}
	return owner.Kind + "/" + owner.Name
}
