// Package kubetest runs a real Kubernetes control plane for tests:
// etcd, kube-apiserver, kube-controller-manager and kwok, built by
// .ci/k8s.sh and found through SOCLE_K8S (a directory holding them).
// Pods scheduled on its fake node become Running with no kubelet.
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/socle-dev/socle/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

//go:embed kwok-pod-stages.yaml
var podStages []byte

// T is what the control plane needs of a test (testing.TB has it); a
// benchmark program gives its own.
type T interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
	Skip(args ...any)
	TempDir() string
	Cleanup(func())
	Failed() bool
}

// NodeName is the fake node pods are scheduled on (there is no
// scheduler: pods name it in spec.nodeName).
const NodeName = "kwok-node"

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Kubeconfig is an admin kubeconfig file (a system:masters token).
	Kubeconfig string
	Client     kubernetes.Interface
	bin        string
	dir        string
}

// Binaries returns the directory of the control plane's binaries, or
// skips the test when SOCLE_SKIP_K8S is set.
func Binaries(t T) string {
	t.Helper()
	if d := os.Getenv("SOCLE_K8S"); d != "" {
		return d
	}
	if os.Getenv("SOCLE_SKIP_K8S") != "" {
		t.Skip("SOCLE_SKIP_K8S is set")
	}
	t.Fatal("no Kubernetes control plane: .ci/run builds one with .ci/k8s.sh and sets SOCLE_K8S (or set SOCLE_SKIP_K8S=1)")
	return ""
}

func freePort(t T) int {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	return n
}

// Start runs etcd, the API server, the controller manager and kwok, with
// one fake node, and stops them when the test ends.
func Start(t T) *ControlPlane {
	t.Helper()
	bin := Binaries(t)
	dir := t.TempDir()
	cp := &ControlPlane{bin: bin, dir: dir}

	etcdPort, peerPort := freePort(t), freePort(t)
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	cp.run(t, "etcd", filepath.Join(bin, "etcd"), "--data-dir", filepath.Join(dir, "etcd"), "--name", "socle-test",
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peerPort),
		"--initial-cluster", fmt.Sprintf("socle-test=http://127.0.0.1:%d", peerPort),
		"--unsafe-no-fsync", "--log-level", "warn")
	waitHTTP(t, etcdURL+"/health", nil)

	token := randomHex(16)
	write(t, filepath.Join(dir, "tokens.csv"), []byte(token+",admin,admin,system:masters\n"))
	writeServiceAccountKey(t, dir)
	apiPort := freePort(t)
	cp.run(t, "kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", etcdURL, "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(apiPort), "--cert-dir", filepath.Join(dir, "pki"),
		"--token-auth-file", filepath.Join(dir, "tokens.csv"), "--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range", "10.96.0.0/24", "--disable-admission-plugins", "ServiceAccount",
		"--allow-privileged=true")
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	write(t, cp.Kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: test, context: {cluster: test, user: admin}}]
current-context: test
`, server, token)))
	waitHTTP(t, server+"/readyz", map[string]string{"Authorization": "Bearer " + token})

	cp.run(t, "kube-controller-manager", filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig", cp.Kubeconfig, "--leader-elect=false", "--use-service-account-credentials=false",
		"--controllers", "deployment-controller,replicaset-controller,garbage-collector-controller,job-controller,cronjob-controller",
		"--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(freePort(t)))
	write(t, filepath.Join(dir, "kwok-stages.yaml"), podStages)
	cp.run(t, "kwok", filepath.Join(bin, "kwok"), "--kubeconfig", cp.Kubeconfig, "-c", filepath.Join(dir, "kwok-stages.yaml"),
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector", "kwok.x-k8s.io/node=fake",
		"--cidr", "10.244.0.1/24", "--node-ip", "10.244.0.1")

	rc, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	rc.QPS, rc.Burst = 1000, 2000 // client-go's default of 5/s would time the limiter, not the server
	cp.Client, err = kubernetes.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	cp.addNode(t)
	return cp
}

// run starts a component, logging to DIR/NAME.log (shown when the test
// fails), and kills it at the end.
func (cp *ControlPlane) run(t T, name, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(cp.dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+cp.dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("%s log (tail):\n%s", name, b)
		}
	})
}

// addNode makes the fake node kwok manages, and waits until it is Ready.
func (cp *ControlPlane) addNode(t T) {
	t.Helper()
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: NodeName,
		Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"}, Labels: map[string]string{"type": "kwok"}}}
	if _, err := cp.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		n, err := cp.Client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err == nil {
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					return
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the kwok node never became Ready")
}

// Kubectl runs kubectl against the control plane with input on stdin.
func (cp *ControlPlane) Kubectl(input string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(cp.bin, "kubectl"), append([]string{"--kubeconfig", cp.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(input)
	cmd.Env = append(os.Environ(), "HOME="+cp.dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func waitHTTP(t T, url string, headers map[string]string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second, Transport: insecureTransport()}
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200 (last: %s)", url, last)
}

func writeServiceAccountKey(t T, dir string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	write(t, filepath.Join(dir, "sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	write(t, filepath.Join(dir, "sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
}

func write(t T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
