package admission

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/socle-dev/socle/internal/config"
)

// FuzzReview feeds AdmissionReviews to the decoder and the decision: no
// input may panic, and every decoded review gets an answer with its UID
// that admits nothing it could not decide on.
func FuzzReview(f *testing.F) {
	// Hand-made seeds: reviews of a pod, a deployment, a cronjob, an
	// ephemeral container, an unknown kind, and broken documents.
	review := func(group, kind, sub, object string) []byte {
		return fmt.Appendf(nil, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":%q,"version":"v1","kind":%q},"subResource":%q,"namespace":"shop","operation":"CREATE","object":%s}}`, group, kind, sub, object)
	}
	f.Add(review("", "Pod", "", `{"spec":{"containers":[{"name":"a","image":"registry.test.invalid/apps/app:prod"}],"initContainers":[{"name":"i","image":"busybox@sha256:`+fmt.Sprintf("%064x", 1)+`"}]}}`))
	f.Add(review("apps", "Deployment", "", `{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"x"}]}}}}`))
	f.Add(review("batch", "CronJob", "", `{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"image":"y:1"}]}}}}}}`))
	f.Add(review("", "Pod", "ephemeralcontainers", `{"spec":{"ephemeralContainers":[{"name":"debug","image":"z"}]}}`))
	f.Add(review("", "Widget", "", `{}`))
	f.Add(review("", "Pod", "", `null`))
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"}}`))
	f.Add([]byte(`{`))
	s, _ := handMadeSnapshot(10)
	c, err := newController(Options{
		Environments: []config.Environment{{Name: "dev"}, {Name: "staging"}, {Name: "prod"}},
		Clusters:     []config.Cluster{{Name: "main", Namespaces: []config.NamespaceMap{{Names: []string{"shop"}, Environment: "prod"}}}},
	})
	if err != nil {
		f.Fatal(err)
	}
	c.snap.Store(s)
	f.Fuzz(func(t *testing.T, b []byte) {
		rev, err := DecodeReview(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, mutate := range []bool{false, true} {
			resp, decision := c.Review(rev.Request, "main", mutate)
			if resp == nil || resp.UID != rev.Request.UID {
				t.Fatalf("answer %+v for uid %q", resp, rev.Request.UID)
			}
			if decision == "error" && resp.Allowed {
				t.Fatalf("an undecidable review was admitted: %s", b)
			}
		}
	})
}
