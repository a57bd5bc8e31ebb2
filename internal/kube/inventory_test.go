package kube_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/kube"
	"github.com/socle-dev/socle/internal/kube/kubetest"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
)

// Hand-made digests: nothing pulls them (kwok runs no container).
var (
	digestA = "sha256:" + fmt.Sprintf("%064x", 0xa)
	digestB = "sha256:" + fmt.Sprintf("%064x", 0xb)
)

func deployment(name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	replicas := int32(2)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				NodeName:   kubetest.NodeName,
				Containers: []corev1.Container{{Name: "app", Image: image}},
			}}},
	}
}

// waitFor polls cond until it holds or a minute passes.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: never happened (last: %s)", what, last)
}

// TestInventory runs Deployments on a real API server with kwok's fake
// node: their pods become Running, socle records the digests with the
// workload and environment, a new digest replaces the old, and deleting
// the Deployment marks its images as no longer running.
func TestInventory(t *testing.T) {
	cp := kubetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cs := cp.Client
	for ns, labels := range map[string]map[string]string{"shop-prod": nil, "team-a": {"env": "staging"}} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cl := config.Cluster{Name: "main", Kubeconfig: cp.Kubeconfig, Namespaces: []config.NamespaceMap{
		{Names: []string{"shop-prod"}, Environment: "prod"},
		{Selector: "env=staging", Environment: "staging"},
	}}
	client, err := kube.Client(cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &kube.Watcher{Cluster: cl, Client: client, Store: st}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	repo := "registry.test.invalid/apps/shop"
	if _, err := cs.AppsV1().Deployments("shop-prod").Create(ctx, deployment("shop", repo+"@"+digestA), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.AppsV1().Deployments("team-a").Create(ctx, deployment("shop", repo+"@"+digestB), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := func(q store.RunningQuery) []store.Running {
		rows, err := st.RunningImages(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	waitFor(t, "both deployments recorded", func() (bool, string) {
		rows := running(store.RunningQuery{})
		return len(rows) == 2 && rows[0].Pods == 2 && rows[1].Pods == 2, fmt.Sprintf("%+v", rows)
	})
	prod := running(store.RunningQuery{Environment: "prod"})
	if len(prod) != 1 || prod[0].Workload != "Deployment/shop" || prod[0].Digest != digestA || prod[0].Repository != repo ||
		prod[0].Namespace != "shop-prod" || prod[0].Container != "app" || prod[0].Cluster != "main" {
		t.Fatalf("prod inventory: %+v", prod)
	}
	if staging := running(store.RunningQuery{Environment: "staging"}); len(staging) != 1 || staging[0].Digest != digestB {
		t.Fatalf("staging inventory (by namespace label): %+v", staging)
	}
	if labels, ok := w.Labels("team-a"); !ok || labels["env"] != "staging" {
		t.Fatalf("namespace labels: %v %v", labels, ok)
	}

	// A rollout to a new digest: the old one stops, the new one starts.
	d, err := cs.AppsV1().Deployments("shop-prod").Get(ctx, "shop", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Spec.Template.Spec.Containers[0].Image = repo + "@" + digestB
	if _, err := cs.AppsV1().Deployments("shop-prod").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rollout recorded", func() (bool, string) {
		rows := running(store.RunningQuery{Environment: "prod"})
		return len(rows) == 1 && rows[0].Digest == digestB, fmt.Sprintf("%+v", rows)
	})

	// Deleting the Deployment (its pods go with it) stops its rows.
	bg := metav1.DeletePropagationForeground
	if err := cs.AppsV1().Deployments("shop-prod").Delete(ctx, "shop", metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deleted deployment marked stopped", func() (bool, string) {
		rows := running(store.RunningQuery{Environment: "prod"})
		return len(rows) == 0, fmt.Sprintf("%+v", rows)
	})
	all := running(store.RunningQuery{Environment: "prod", Stopped: true})
	for _, r := range all {
		if r.StoppedAt.IsZero() {
			t.Fatalf("still running: %+v", r)
		}
	}
	if len(all) != 2 {
		t.Fatalf("prod history: %+v", all)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
