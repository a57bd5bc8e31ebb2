package registry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
)

// prodTags protects the "prod" tag, as socle serve does for the tags of
// its environments.
func prodTags(_, tag string) string {
	if tag == "prod" {
		return "prod"
	}
	return ""
}

func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

// TestEnvironmentTagsArePromotersOnly: a push that would move an
// environment tag is DENIED and names socle promote, with a developer's
// token and on an open loopback registry alike; deleting the tag is
// refused too, even for an admin. The promoter (in process, or with the
// promoter secret) moves it.
func TestEnvironmentTagsArePromotersOnly(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth registry.Authorizer
		as   remote.Option
	}{
		{"open loopback registry", nil, remote.WithAuth(authn.Anonymous)},
		{"developer token", tokenAuth{}, asWriter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := registrytest.Start(t, registry.Options{Authorizer: tc.auth, Protected: prodTags, PromoterSecret: "promoter-secret-of-the-test-registry"})
			img := handMadeImage(t, "release candidate")
			prod, _ := name.NewTag(srv.Host + "/platform/app:prod")
			err := remote.Write(prod, img, tc.as)
			if statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "DENIED") || !strings.Contains(err.Error(), "socle promote") {
				t.Fatalf("a push moved the prod tag: %v", err)
			}
			if _, err := remote.Head(prod, tc.as); statusOf(err) != http.StatusNotFound {
				t.Fatalf("the prod tag after a refused push: %v", err)
			}
			// The promoter moves it: in process, then over HTTP with the
			// promoter secret.
			local, _ := name.NewTag("localhost/platform/app:prod")
			if err := remote.Write(local, img, remote.WithTransport(srv.Transport())); err != nil {
				t.Fatalf("the in-process promoter: %v", err)
			}
			other := handMadeImage(t, "next release")
			promoter := remote.WithAuth(&authn.Basic{Username: "socle-promoter", Password: "promoter-secret-of-the-test-registry"})
			if err := remote.Write(prod, other, promoter); err != nil {
				t.Fatalf("the promoter secret: %v", err)
			}
			if err := remote.Delete(prod, asAdmin); statusOf(err) != http.StatusForbidden {
				t.Fatalf("deleting the prod tag: %v", err)
			}
			d, _ := other.Digest()
			if got, err := remote.Head(prod, tc.as); err != nil || got.Digest != d {
				t.Fatalf("prod after the promoter's move: %v %v", got, err)
			}
		})
	}
}

// TestImmutableTags: a version tag cannot be overwritten with another
// digest; pushing the same digest again is fine; floating tags move.
func TestImmutableTags(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{Immutable: registry.ImmutableBy(registry.DefaultImmutableTags)})
	v241, _ := name.NewTag(srv.Host + "/apps/billing:2.4.1")
	first := handMadeImage(t, "2.4.1")
	if err := remote.Write(v241, first); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(v241, first); err != nil {
		t.Fatalf("pushing the same digest again: %v", err)
	}
	err := remote.Write(v241, handMadeImage(t, "2.4.1 rebuilt"))
	if statusOf(err) != http.StatusForbidden || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("overwriting 2.4.1: %v", err)
	}
	floating, _ := name.NewTag(srv.Host + "/apps/billing:2")
	for _, c := range []string{"one", "two"} {
		if err := remote.Write(floating, handMadeImage(t, c)); err != nil {
			t.Fatalf("moving a floating tag: %v", err)
		}
	}
}

// scopedAuth is a hand-made Authorizer whose writer may push only to
// apps/billing/*, as a token made with --repositories would.
type scopedAuth struct{}

func (scopedAuth) Authorize(r *http.Request, a registry.Access) (registry.Principal, error) {
	if a.Action == registry.ActionPush && a.Repository != "" && !strings.HasPrefix(a.Repository, "apps/billing/") {
		return registry.Principal{Name: "billing-ci"}, fmt.Errorf("%w: billing-ci may push only to apps/billing/*", registry.ErrDenied)
	}
	return tokenAuth{}.Authorize(r, a)
}

// TestDeletes: manifest and blob deletes need an admin; a blob any
// manifest references is never deleted, whoever asks.
func TestDeletes(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{Authorizer: tokenAuth{}})
	shared := handMadeImage(t, "shared base layer")
	for _, repo := range []string{"team/a", "team/b"} {
		ref, _ := name.NewTag(srv.Host + "/" + repo + ":1")
		if err := remote.Write(ref, shared, asWriter); err != nil {
			t.Fatal(err)
		}
	}
	layers, _ := shared.Layers()
	ld, _ := layers[0].Digest()
	blob := "http://" + srv.Host + "/v2/team/a/blobs/" + ld.String()
	for _, who := range []string{"writer", "admin"} {
		req, _ := http.NewRequest(http.MethodDelete, blob, nil)
		req.SetBasicAuth("x", who)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := map[string]int{"writer": http.StatusForbidden, "admin": http.StatusConflict}[who]
		if resp.StatusCode != want {
			t.Fatalf("%s deleting a referenced blob: %d %s", who, resp.StatusCode, body)
		}
	}
	// Both repositories still pull the whole image.
	for _, repo := range []string{"team/a", "team/b"} {
		ref, _ := name.NewTag(srv.Host + "/" + repo + ":1")
		pullAll(t, ref, asWriter)
	}
	tag, _ := name.NewTag(srv.Host + "/team/a:1")
	if err := remote.Delete(tag, asWriter); statusOf(err) != http.StatusForbidden {
		t.Fatalf("a developer deleted a tag: %v", err)
	}
	if err := remote.Delete(tag, asAdmin); err != nil {
		t.Fatalf("an admin deleting a tag: %v", err)
	}
}

// pullAll reads every blob of an image.
func pullAll(t *testing.T, ref name.Reference, opts ...remote.Option) {
	t.Helper()
	img, err := remote.Image(ref, opts...)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		rc.Close()
	}
}

// TestRepositoryScope: a token scoped to apps/billing/* pushes there and
// nowhere else.
func TestRepositoryScope(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{Authorizer: scopedAuth{}})
	img := handMadeImage(t, "billing")
	ok, _ := name.NewTag(srv.Host + "/apps/billing/api:1")
	if err := remote.Write(ok, img, asWriter); err != nil {
		t.Fatalf("push in scope: %v", err)
	}
	out, _ := name.NewTag(srv.Host + "/apps/shop/api:1")
	if err := remote.Write(out, img, asWriter); statusOf(err) != http.StatusForbidden {
		t.Fatalf("push out of scope: %v", err)
	}
}

// TestManifestMustParse: a manifest of an unknown media type, one that
// is not JSON, and one naming a blob the registry lacks are refused
// before anything is stored.
func TestManifestMustParse(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{})
	missing := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, ctype, body, code string
	}{
		{"schema1", "application/vnd.docker.distribution.manifest.v1+prettyjws", `{"schemaVersion":1}`, "MANIFEST_INVALID"},
		{"not JSON", "application/vnd.oci.image.manifest.v1+json", `not json`, "MANIFEST_INVALID"},
		{"type mismatch", "application/vnd.oci.image.manifest.v1+json", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`, "MANIFEST_INVALID"},
		{"missing blob", "application/vnd.oci.image.manifest.v1+json", `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + missing + `","size":2},"layers":[]}`, "MANIFEST_BLOB_UNKNOWN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPut, "http://"+srv.Host+"/v2/app/manifests/x", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.ctype)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), tc.code) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if ms, _ := srv.Manifests(); len(ms) != 0 {
				t.Fatalf("stored %+v", ms)
			}
		})
	}
}

// TestReferrers: an artifact naming an image as its subject is listed
// by the OCI 1.1 referrers API, and filtered by artifact type.
func TestReferrers(t *testing.T) {
	srv := registrytest.Start(t, registry.Options{})
	img := handMadeImage(t, "subject")
	ref, _ := name.NewTag(srv.Host + "/app:1")
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	sbom := artifact(t, srv.Host+"/app", img, "application/vnd.cyclonedx+json")
	artifact(t, srv.Host+"/app", img, "application/vnd.dev.cosign.artifact.sig.v1+json")
	for filter, want := range map[string]int{"": 2, "application/vnd.cyclonedx+json": 1, "text/other": 0} {
		u := "http://" + srv.Host + "/v2/app/referrers/" + d.String()
		if filter != "" {
			u += "?artifactType=" + url.QueryEscape(filter)
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		var idx v1.IndexManifest
		json.NewDecoder(resp.Body).Decode(&idx)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(idx.Manifests) != want || resp.Header.Get("Content-Type") != "application/vnd.oci.image.index.v1+json" {
			t.Fatalf("referrers %q: %d, %d manifests", filter, resp.StatusCode, len(idx.Manifests))
		}
		if filter == "application/vnd.cyclonedx+json" && idx.Manifests[0].Digest != sbom {
			t.Fatalf("the SBOM is not listed: %+v", idx.Manifests)
		}
	}
}

// artifact pushes a hand-made artifact of artifactType (its config's
// media type) whose subject is img, and returns its digest.
func artifact(t *testing.T, repo string, img v1.Image, artifactType string) v1.Hash {
	t.Helper()
	sd, _ := img.Digest()
	sz, _ := img.Size()
	mt, _ := img.MediaType()
	a := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	a = mutate.ConfigMediaType(a, types.MediaType(artifactType))
	a, err := mutate.Append(a, mutate.Addendum{Layer: static.NewLayer([]byte("hand-made "+artifactType), "application/octet-stream")})
	if err != nil {
		t.Fatal(err)
	}
	a = mutate.Subject(a, v1.Descriptor{MediaType: mt, Digest: sd, Size: sz}).(v1.Image)
	d, _ := a.Digest()
	ref, _ := name.NewDigest(repo + "@" + d.String())
	if err := remote.Write(ref, a); err != nil {
		t.Fatal(err)
	}
	return d
}
