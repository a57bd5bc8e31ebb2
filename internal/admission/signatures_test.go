package admission_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/admission"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/sign"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/store/sqlite"
	"github.com/socle-dev/socle/internal/testenv"
)

// TestSignedBy: prod requires a signature by the release key. Two
// images are promoted to prod in a real registry; only one is signed
// (with socle's signer, as cosign does). Admission checks both in the
// background: the signed one is admitted, the other denied, and before
// the check nothing is admitted.
func TestSignedBy(t *testing.T) {
	reg := registrytest.Start(t, registry.Options{})
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "socle.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	kp, err := sign.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := sign.LoadSigner(kp.Private, nil)
	verifier, _ := sign.LoadVerifier("release.pub", kp.Public)
	repository := reg.Host + "/apps/shop"
	push := func(tag, release string) name.Digest {
		img := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "etc/release", Mode: 0o644, Content: []byte(release)}}))
		ref, _ := name.NewTag(repository + ":" + tag)
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
		d, _ := img.Digest()
		return ref.Context().Digest(d.String())
	}
	// Hand-made images: one file each, so that their digests differ.
	signed := push("signed", "signed\n")
	unsigned := push("unsigned", "unsigned\n")
	if err := signer.Sign(ctx, signed, nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []name.Digest{signed, unsigned} {
		p := store.Promotion{Repository: repository, Target: repository, Digest: d.DigestStr(), Environment: "prod", Tag: "prod",
			State: store.PromotionMoving, Kind: "promote", By: "ann", Role: "admin", Evidence: []byte(`{}`)}
		id, err := st.CreatePromotion(ctx, p, store.AuditEvent{Actor: "ann", Action: "promotion.moving"})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.TransitionPromotion(ctx, id, store.PromotionMoving, store.PromotionDone, nil, "", time.Now(), store.AuditEvent{Actor: "ann", Action: "promotion.done"}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := admission.New(ctx, admission.Options{Source: st,
		Environments: []config.Environment{{Name: "prod", Admission: config.EnvironmentAdmission{SignedBy: []string{"release.pub"}}}},
		Clusters:     []config.Cluster{{Name: "main", Namespaces: []config.NamespaceMap{{Names: []string{"shop"}, Environment: "prod"}}}},
		Keys:         func([]string) ([]*sign.Verifier, error) { return []*sign.Verifier{verifier}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	h := c.Handler()
	if resp := post(t, h, admission.ValidatePath, podReview("shop", signed.String())); resp.Allowed || !strings.Contains(resp.Result.Message, "not verified yet") {
		t.Fatalf("before the check: %+v", resp.Result)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.Run(rctx)
	deadline := time.Now().Add(30 * time.Second)
	for !post(t, h, admission.ValidatePath, podReview("shop", signed.String())).Allowed {
		if time.Now().After(deadline) {
			t.Fatal("the signed image was never admitted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var resp = post(t, h, admission.ValidatePath, podReview("shop", unsigned.String()))
	for strings.Contains(resp.Result.Message, "not verified yet") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		resp = post(t, h, admission.ValidatePath, podReview("shop", unsigned.String()))
	}
	if resp.Allowed || !strings.Contains(resp.Result.Message, "carries no signature by the keys prod requires (release.pub)") {
		t.Fatalf("the unsigned image: %+v", resp.Result)
	}
}
