package cli_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary socleBinary built (136 MB a run).
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// socleBinary builds cmd/socle once per test run.
func socleBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "socle-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "socle")
		// The test binary carries the fault hooks (socle_fault); the
		// shipped one does not.
		cmd := exec.Command("go", "build", "-tags", "socle_fault", "-o", binPath, "./cmd/socle")
		cmd.Dir = testenv.RepoRoot(t)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// server is a running socle serve process.
type server struct {
	cmd      *exec.Cmd
	api      string
	registry string
	token    string
}

var addrLine = regexp.MustCompile(`^\s+(registry|dashboard)\s+https?://([0-9.:]+)`)

func startServe(t *testing.T, dataDir string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(socleBinary(t), append([]string{"serve", "--data-dir", dataDir, "--addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0", "--workers", "1", "--job-lease", "3s"}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("socle serve stderr:\n%s", stderr.String())
		}
	})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	sc := bufio.NewScanner(stdout)
	deadline := time.After(30 * time.Second)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for s.api == "" || s.registry == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("socle serve exited before it was ready")
			}
			if m := addrLine.FindStringSubmatch(l); m != nil {
				if m[1] == "registry" {
					s.registry = m[2]
				} else {
					s.api = m[2]
				}
			}
		case <-deadline:
			t.Fatal("socle serve did not print its addresses")
		}
	}
	go func() {
		for range lines {
		}
	}()
	b, err := os.ReadFile(filepath.Join(dataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(b))
	return s
}

type jobView struct {
	ID    int64
	State string
	Key   string
}

func (s *server) jobs(t *testing.T) []jobView {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.api+"/api/v1/jobs?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body struct{ Jobs []jobView }
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &body)
	return body.Jobs
}

// TestSIGKILLDuringScans pushes images while socle scans them, kills the
// server with SIGKILL in the middle, restarts it, and checks that every
// push the registry acknowledged is stored, scanned and tagged, and that
// the registry and the database agree.
func TestSIGKILLDuringScans(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the socle binary")
	}
	dataDir := t.TempDir()
	srv := startServe(t, dataDir)
	gobin := testenv.ReadShared(t, "gobin", "age-keygen")

	var mu sync.Mutex
	acked := map[string]string{} // tag -> digest
	stopPush := make(chan struct{})
	pushDone := make(chan struct{})
	var pushers sync.WaitGroup
	for w := 0; w < 3; w++ {
		pushers.Add(1)
		go func() {
			defer pushers.Done()
			for i := w; ; i += 3 {
				select {
				case <-stopPush:
					return
				default:
				}
				// Each image carries the real Go binary under its own name, so
				// each has a layer to read (hand-made layout around real data).
				img := testenv.Image(t,
					testenv.Layer(t, testenv.DebianBaseFiles(t)),
					testenv.Layer(t, []testenv.File{{Path: fmt.Sprintf("usr/bin/tool-%d", i), Content: gobin, Mode: 0o755}}))
				tag := fmt.Sprintf("v%d", i)
				ref, _ := name.ParseReference(srv.registry + "/app:" + tag)
				if err := remote.Write(ref, img); err != nil {
					return // the server died under this push: not acknowledged
				}
				d, _ := img.Digest()
				mu.Lock()
				acked[tag] = d.String()
				mu.Unlock()
			}
		}()
	}
	go func() { pushers.Wait(); close(pushDone) }()

	// Kill once scans are under way, with more pushed than scanned.
	deadline := time.Now().Add(60 * time.Second)
	for {
		js := srv.jobs(t)
		running, pending := 0, 0
		for _, j := range js {
			switch j.State {
			case "running":
				running++
			case "pending":
				pending++
			}
		}
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if running > 0 && pending >= 2 && n >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never saw a scan running with more queued (running %d, pending %d, pushed %d)", running, pending, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Wait()
	close(stopPush)
	<-pushDone
	mu.Lock()
	want := map[string]string{}
	for k, v := range acked {
		want[k] = v
	}
	mu.Unlock()
	t.Logf("killed the server after %d acknowledged pushes", len(want))

	// Restart; the work resumes and finishes.
	srv2 := startServe(t, dataDir)
	deadline = time.Now().Add(90 * time.Second)
	for {
		js := srv2.jobs(t)
		busy := 0
		for _, j := range js {
			if j.State == "running" || j.State == "pending" {
				busy++
			}
			if j.State == "failed" {
				t.Fatalf("job failed after restart: %+v", j)
			}
		}
		if len(js) > 0 && busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs did not finish after the restart: %d busy", busy)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for tag, digest := range want {
		ref, _ := name.ParseReference(srv2.registry + "/app:" + tag)
		desc, err := remote.Head(ref)
		if err != nil {
			t.Fatalf("acknowledged push app:%s lost from the registry: %v", tag, err)
		}
		if desc.Digest.String() != digest {
			t.Fatalf("app:%s is %s in the registry, pushed %s", tag, desc.Digest, digest)
		}
	}
	srv2.cmd.Process.Signal(syscall.SIGTERM)
	srv2.cmd.Wait()

	// The database and the registry journal agree: every registry tag is
	// in the database with the same digest, and scanned.
	st, err := sqlite.Open(context.Background(), filepath.Join(dataDir, "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	tags, err := st.Tags(context.Background(), "app")
	if err != nil {
		t.Fatal(err)
	}
	inDB := map[string]string{}
	for _, tg := range tags {
		inDB[tg.Tag] = tg.Digest
	}
	regTags := registryTags(t, filepath.Join(dataDir, "registry", "repositories", "app", "_tags"))
	if len(regTags) < len(want) {
		t.Fatalf("registry has %d tags, %d were acknowledged", len(regTags), len(want))
	}
	for tag, digest := range regTags {
		if inDB[tag] != digest {
			t.Errorf("app:%s: registry %s, database %q", tag, digest, inDB[tag])
		}
		if ok, _ := st.HasImage(context.Background(), digest); !ok {
			t.Errorf("app:%s (%s) was never scanned", tag, digest)
		}
	}
	if len(inDB) != len(regTags) {
		t.Errorf("database has %d tags, registry %d", len(inDB), len(regTags))
	}
}

func registryTags(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = strings.TrimSpace(string(b))
	}
	return out
}

// TestServeGracefulShutdown: SIGTERM lets the server stop cleanly.
func TestServeGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the socle binary")
	}
	srv := startServe(t, t.TempDir())
	resp, err := http.Get("http://" + srv.api + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", err, resp)
	}
	resp.Body.Close()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error)
	go func() { done <- srv.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("socle serve did not stop on SIGTERM")
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestServeTLSSelfSigned serves HTTPS with the generated loopback
// certificate, which a client trusting that certificate accepts.
func TestServeTLSSelfSigned(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the socle binary")
	}
	dir := t.TempDir()
	srv := startServe(t, dir, "--tls-self-signed")
	pemBytes, err := os.ReadFile(filepath.Join(dir, "tls", "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("no certificate in cert.pem")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + srv.api + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
	if _, err := http.Get("https://" + srv.api + "/healthz"); err == nil {
		t.Fatal("a client without the certificate trusted it")
	}
	if fi, err := os.Stat(filepath.Join(dir, "tls", "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi.Mode(), err)
	}
}
