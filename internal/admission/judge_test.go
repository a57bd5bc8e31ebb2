package admission

import (
	"fmt"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/vuln"
)

// handMadeSnapshot promotes n digests (hand-made) to prod (index 2),
// each with an open LOW finding, the first with an open HIGH one.
func handMadeSnapshot(n int) (*Snapshot, []string) {
	s := &Snapshot{reached: map[string]int{}, stored: map[string]string{}, envTags: map[envTag]string{}, tags: map[string]string{}, severity: map[string]int{}}
	digests := make([]string, n)
	for i := range n {
		d := fmt.Sprintf("sha256:%064x", i+1)
		digests[i] = d
		s.reached[d], s.stored[d] = 2, "registry.test.invalid/apps/app"
		s.severity[d] = vuln.SeverityRank(vuln.SeverityLow)
	}
	s.severity[digests[0]] = vuln.SeverityRank(vuln.SeverityHigh)
	return s, digests
}

func handMadeController(t testing.TB, prod config.EnvironmentAdmission, s *Snapshot) *Controller {
	t.Helper()
	c, err := newController(Options{
		Environments: []config.Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod", Admission: prod}},
		Clusters:     []config.Cluster{{Name: "main", Namespaces: []config.NamespaceMap{{Names: []string{"shop"}, Environment: "prod"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c.snap.Store(s)
	return c
}

func podRequest(t testing.TB, images ...string) *admissionv1.AdmissionRequest {
	var cs []string
	for i, im := range images {
		cs = append(cs, fmt.Sprintf(`{"name":"c%d","image":%q}`, i, im))
	}
	raw := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[%s]}}`, strings.Join(cs, ","))
	req := &admissionv1.AdmissionRequest{UID: "u", Namespace: "shop", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: []byte(raw)}}
	req.Kind.Version, req.Kind.Kind = "v1", "Pod"
	return req
}

// TestMaxSeverity: prod refuses open findings of HIGH or more; an image
// socle has no scan of is refused too, since nothing says it is clean.
func TestMaxSeverity(t *testing.T) {
	s, digests := handMadeSnapshot(3)
	s.reached["sha256:"+strings.Repeat("e", 64)] = 2 // promoted, never scanned
	c := handMadeController(t, config.EnvironmentAdmission{MaxSeverity: "high"}, s)
	repo := "registry.test.invalid/apps/app@"
	for _, tc := range []struct {
		digest string
		says   string
	}{
		{digests[0], "has an open HIGH finding; prod refuses HIGH or more"},
		{digests[1], ""},
		{"sha256:" + strings.Repeat("e", 64), "socle has no scan of it"},
	} {
		resp, _ := c.Review(podRequest(t, repo+tc.digest), "main", false)
		if tc.says == "" {
			if !resp.Allowed {
				t.Errorf("%s: %v", tc.digest, resp.Result.Message)
			}
			continue
		}
		if resp.Allowed || !strings.Contains(resp.Result.Message, tc.says) {
			t.Errorf("%s: %+v, want %q", tc.digest, resp.Result, tc.says)
		}
	}
}

// BenchmarkReview is the decision itself, at 100,000 promoted digests,
// for pods of 1 and 10 containers.
func BenchmarkReview(b *testing.B) {
	s, digests := handMadeSnapshot(100_000)
	c := handMadeController(b, config.EnvironmentAdmission{}, s)
	for _, n := range []int{1, 10} {
		var images []string
		for i := range n {
			images = append(images, "registry.test.invalid/apps/app@"+digests[1000+i*977])
		}
		req := podRequest(b, images...)
		b.Run(fmt.Sprintf("containers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := c.Review(req, "main", false); !resp.Allowed {
					b.Fatal(resp.Result.Message)
				}
			}
		})
	}
}
