// Command admission measures socle's admission webhook for
// bench/admission.sh: it starts a real control plane (kubetest), fills a
// store with -digests promoted digests (hand-made), runs socle serve on
// it with the admission listener, applies the webhook configuration, and
// then sends AdmissionReviews of pods with 1 and 10 containers directly
// to the webhook (latency percentiles and decisions per second), and
// creates the same pods through the API server with dry run, with and
// without the webhooks, to show socle's share of the API server's time.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/socle-dev/socle/internal/kube/kubetest"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

// benchT gives the control plane what it needs of a test.
type benchT struct {
	dir      string
	cleanups []func()
}

func (b *benchT) Helper()                    {}
func (b *benchT) Logf(f string, args ...any) { log.Printf(f, args...) }
func (b *benchT) Skip(args ...any)           { b.Fatal(args...) }
func (b *benchT) Failed() bool               { return false }
func (b *benchT) Cleanup(f func())           { b.cleanups = append(b.cleanups, f) }
func (b *benchT) Fatalf(f string, a ...any)  { b.Fatal(fmt.Sprintf(f, a...)) }
func (b *benchT) Fatal(args ...any)          { b.close(); log.Fatal(args...) }
func (b *benchT) TempDir() string {
	d, err := os.MkdirTemp(b.dir, "t")
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func (b *benchT) close() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

const repo = "registry.test.invalid/apps/app"

func digestN(i int) string { return fmt.Sprintf("sha256:%064x", i+1) }

func main() {
	socle := flag.String("socle", "socle", "the socle binary")
	work := flag.String("work", "", "work directory")
	digests := flag.Int("digests", 100_000, "promoted digests in the store")
	reviews := flag.Int("reviews", 20_000, "reviews sent directly, per pod size")
	parallel := flag.Int("parallel", 8, "concurrent direct reviews")
	viaAPI := flag.Int("apiserver", 300, "dry-run pod creations through the API server, per pod size and setting")
	flag.Parse()
	t := &benchT{dir: *work}
	defer t.close()
	ctx := context.Background()

	cp := kubetest.Start(t)
	data := filepath.Join(*work, "data")
	start := time.Now()
	fill(ctx, data, *digests)
	fmt.Printf("fill %d %.1f\n", *digests, time.Since(start).Seconds())

	admissionAddr, apiAddr, regAddr := freeAddr(), freeAddr(), freeAddr()
	cfg := filepath.Join(*work, "socle.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, `server: {addr: %s, registry_addr: %s}
environments: [{name: dev}, {name: staging}, {name: prod}]
clusters:
  - name: main
    kubeconfig: %s
    namespaces: [{names: [shop], environment: prod}]
admission: {addr: %s, url: "https://%s"}
`, apiAddr, regAddr, cp.Kubeconfig, admissionAddr, admissionAddr), 0o600)
	serve := exec.Command(*socle, "serve", "--data-dir", data, "--config", cfg, "--log-level", "error")
	serve.Stdout, serve.Stderr = os.Stderr, os.Stderr
	start = time.Now()
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
	waitReady(t, "http://"+apiAddr+"/readyz")
	fmt.Printf("serve-ready %.2f\n", time.Since(start).Seconds())

	hooks, err := exec.Command(*socle, "admission", "config", "--data-dir", data, "--config", cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cp.Kubectl("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n", "apply", "-f", "-"); err != nil {
		t.Fatal(out)
	}
	if out, err := cp.Kubectl(string(hooks), "apply", "-f", "-"); err != nil {
		t.Fatal(out)
	}
	ca, _ := os.ReadFile(filepath.Join(data, "admission", "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: *parallel}}
	for _, n := range []int{1, 10} {
		body := review(n, *digests)
		lat, elapsed := direct(t, client, "https://"+admissionAddr+"/admission/validate/main", body, *reviews, *parallel)
		fmt.Printf("direct %d %s %.0f\n", n, percentiles(lat), float64(len(lat))/elapsed.Seconds())
	}
	fmt.Printf("decision %s\n", decisionTimes(t, apiAddr, data))
	waitWebhook(t, cp)
	for _, n := range []int{1, 10} {
		with := viaAPIServer(t, cp, n, *digests, *viaAPI)
		fmt.Printf("apiserver-with %d %s\n", n, percentiles(with))
	}
	cp.Kubectl("", "delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", "socle-main")
	time.Sleep(2 * time.Second)
	for _, n := range []int{1, 10} {
		without := viaAPIServer(t, cp, n, *digests, *viaAPI)
		fmt.Printf("apiserver-without %d %s\n", n, percentiles(without))
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", serve.Process.Pid))
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			fmt.Printf("socle-peak-kb %s\n", strings.Fields(l)[1])
		}
	}
}

// fill records n digests promoted to prod, as socle's promoter does.
func fill(ctx context.Context, dir string, n int) {
	os.MkdirAll(dir, 0o700)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "socle.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	for i := range n {
		p := store.Promotion{Repository: repo, Target: repo, Digest: digestN(i), Environment: "prod", Tag: "prod",
			State: store.PromotionMoving, Kind: "promote", By: "bench", Role: "admin", Evidence: []byte(`{}`)}
		id, err := st.CreatePromotion(ctx, p, store.AuditEvent{Actor: "bench", Action: "promotion.moving", Subject: repo})
		if err == nil {
			err = st.TransitionPromotion(ctx, id, store.PromotionMoving, store.PromotionDone, nil, "", time.Now(), store.AuditEvent{Actor: "bench", Action: "promotion.done", Subject: repo})
		}
		if err != nil {
			log.Fatal(err)
		}
	}
}

func pod(n, digests int) *corev1.Pod {
	p := &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-", Namespace: "shop"}}
	for i := range n {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: repo + "@" + digestN((i*7919)%digests)})
	}
	return p
}

func review(n, digests int) []byte {
	raw, _ := json.Marshal(pod(n, digests))
	b, _ := json.Marshal(map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": map[string]any{
		"uid": "bench", "kind": map[string]string{"version": "v1", "kind": "Pod"}, "resource": map[string]string{"version": "v1", "resource": "pods"},
		"namespace": "shop", "operation": "CREATE", "userInfo": map[string]string{"username": "bench"}, "object": json.RawMessage(raw)}})
	return b
}

// direct sends total reviews with parallel workers, and returns each
// round trip's latency.
func direct(t *benchT, client *http.Client, url string, body []byte, total, parallel int) ([]time.Duration, time.Duration) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	jobs := make(chan struct{}, total)
	for range total {
		jobs <- struct{}{}
	}
	close(jobs)
	start := time.Now()
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for range jobs {
				s := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mine = append(mine, time.Since(s))
				if !bytes.Contains(b, []byte(`"allowed":true`)) {
					t.Fatalf("a promoted pod was refused: %s", b)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, time.Since(start)
}

// viaAPIServer creates pods with dry run through the API server.
func viaAPIServer(t *benchT, cp *kubetest.ControlPlane, n, digests, total int) []time.Duration {
	ctx := context.Background()
	var lat []time.Duration
	p := pod(n, digests)
	for range total {
		s := time.Now()
		if _, err := cp.Client.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(s))
	}
	return lat
}

// waitWebhook waits until the API server calls socle: an unpromoted
// image is refused.
func waitWebhook(t *benchT, cp *kubetest.ControlPlane) {
	bad := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Namespace: "shop"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: repo + "@sha256:" + strings.Repeat("f", 64)}}}}
	for range 300 {
		_, err := cp.Client.CoreV1().Pods("shop").Create(context.Background(), bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), "socle") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the API server never called socle")
}

// decisionTimes reads socle's own decision histogram: count, mean, and
// the bucket holding the 99th percentile.
func decisionTimes(t *benchT, api, data string) string {
	token, _ := os.ReadFile(filepath.Join(data, "admin-token"))
	req, _ := http.NewRequest("GET", "http://"+api+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var count, sum float64
	type bucket struct{ le, n float64 }
	var buckets []bucket
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, `decision="allow"`) || !strings.HasPrefix(l, "socle_admission_decision_seconds") {
			continue
		}
		f := strings.Fields(l)
		var v float64
		fmt.Sscan(f[len(f)-1], &v)
		switch {
		case strings.HasPrefix(l, "socle_admission_decision_seconds_count"):
			count = v
		case strings.HasPrefix(l, "socle_admission_decision_seconds_sum"):
			sum = v
		case strings.Contains(l, `le="+Inf"`):
		default:
			var le float64
			fmt.Sscanf(l[strings.Index(l, `le="`)+4:], "%g", &le)
			buckets = append(buckets, bucket{le, v})
		}
	}
	p99 := "?"
	for _, bk := range buckets {
		if bk.n >= 0.99*count {
			p99 = fmt.Sprintf("%g", bk.le*1000)
			break
		}
	}
	return fmt.Sprintf("%.0f %.4f %s", count, sum/count*1000, p99)
}

func percentiles(lat []time.Duration) string {
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	return fmt.Sprintf("%.3f %.3f", q(0.5), q(0.99))
}

func freeAddr() string {
	addr, err := testenv.FreeAddr()
	if err != nil {
		log.Fatal(err)
	}
	return addr
}

func waitReady(t *benchT, url string) {
	for range 600 {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("socle serve never became ready")
}
