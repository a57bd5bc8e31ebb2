package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/registry"
	"github.com/socle-dev/socle/internal/registry/registrytest"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
)

func TestHealthNeedsNoToken(t *testing.T) {
	s := newStack(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if code := s.call("GET", p, "", "", nil); code != 200 {
			t.Errorf("%s: %d", p, code)
		}
	}
}

func TestEveryOtherRouteNeedsAToken(t *testing.T) {
	s := newStack(t)
	for _, p := range []string{"/api/v1/images", "/api/v1/repositories", "/api/v1/affected?advisory=CVE-1", "/metrics", "/api/v1/jobs", "/api/v1/openapi.yaml/../images"} {
		var body struct {
			Error struct{ Status int }
		}
		if code := s.call("GET", p, "", "", &body); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d", p, code)
		}
	}
	req, _ := http.NewRequest("GET", s.api.URL+"/api/v1/images", nil)
	req.Header.Set("Authorization", "Bearer socle_deadbeef_nothing")
	resp, _ := http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged token: %d", resp.StatusCode)
	}
	// Pages redirect to the login form.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(s.api.URL + "/images/sha256:" + strings.Repeat("a", 64))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
		t.Fatalf("page without a token: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestRoles(t *testing.T) {
	s := newStack(t)
	digest := s.pushAlpine("library/alpine", "3.10")
	s.waitImage(digest)
	body := `{"reference":"library/alpine:3.10"}`
	if code := s.call("POST", "/api/v1/scans", "viewer", body, nil); code != http.StatusForbidden {
		t.Fatalf("viewer scan: %d", code)
	}
	var out struct{ Job int64 }
	if code := s.call("POST", "/api/v1/scans", "developer", body, &out); code != http.StatusAccepted || out.Job == 0 {
		t.Fatalf("developer scan: %d %+v", code, out)
	}
	if code := s.call("POST", "/api/v1/scans", "developer", `{"reference":"library/alpine:nope"}`, nil); code != http.StatusBadRequest {
		t.Fatalf("scan of a missing tag: %d", code)
	}
	if code := s.call("POST", "/api/v1/scans", "developer", `{"ref":1}`, nil); code != http.StatusBadRequest {
		t.Fatalf("bad body: %d", code)
	}
	evs, _ := s.st.AuditEvents(context.Background(), 0, 10)
	if len(evs) != 0 {
		t.Fatalf("scans were audited: %+v", evs)
	}
}

// TestDeploymentRecordsNeedTheirRole: what an environment runs is
// written by an admin, or by a role the environment's roles: name; a
// developer cannot rewrite prod's record.
func TestDeploymentRecordsNeedTheirRole(t *testing.T) {
	s := newStack(t, withEnvironments(t))
	digest := s.pushAlpine("library/alpine", "3.10")
	s.waitImage(digest)
	dep := func(env string) string {
		return `{"environment":"` + env + `","repository":"library/alpine","digest":"` + digest + `"}`
	}
	for _, tc := range []struct {
		role, env string
		want      int
	}{
		{"viewer", "prod", http.StatusForbidden},
		{"developer", "prod", http.StatusForbidden},
		{"developer", "dev", http.StatusForbidden}, // dev names no roles: admins only
		{"approver", "prod", http.StatusCreated},   // prod's roles: [approver, admin]
		{"admin", "dev", http.StatusCreated},
	} {
		if code := s.call("POST", "/api/v1/deployments", tc.role, dep(tc.env), nil); code != tc.want {
			t.Errorf("%s recording %s: %d, want %d", tc.role, tc.env, code, tc.want)
		}
	}
	evs, err := s.st.AuditEvents(context.Background(), 0, 10)
	if err != nil || len(evs) != 2 || !strings.Contains(evs[0].Actor, "approver-user") {
		t.Fatalf("deployments not audited: %+v %v", evs, err)
	}
}

func TestPushScanQuery(t *testing.T) {
	s := newStack(t)
	s.importAdvisories("alpine", "vuln-list-alpine-3.10")
	digest := s.pushAlpine("library/alpine", "3.10")
	s.waitImage(digest)

	var imgs struct {
		Images []struct {
			Digest  string
			Tags    []string
			Fixable map[string]int
		}
	}
	if code := s.call("GET", "/api/v1/images", "viewer", "", &imgs); code != 200 || len(imgs.Images) != 1 || imgs.Images[0].Digest != digest || imgs.Images[0].Tags[0] != "3.10" {
		t.Fatalf("images: %d %+v", code, imgs)
	}
	var fs struct {
		Findings []struct {
			ID           string
			FixedVersion string `json:"fixed_version"`
			Package      struct{ Name string }
		}
	}
	if code := s.call("GET", "/api/v1/images/"+digest+"/findings", "viewer", "", &fs); code != 200 || len(fs.Findings) == 0 {
		t.Fatalf("findings: %d %+v", code, fs)
	}
	pick := fs.Findings[0]
	// The "affected by" query answers from the index, by CVE and by the
	// secdb record's own ID (an alias of the same vulnerability).
	for _, q := range []string{pick.ID, "ALPINE-v3.10-" + pick.ID} {
		var aff struct {
			Images   int
			Affected []struct{ Digest, Package string }
		}
		if code := s.call("GET", "/api/v1/affected?advisory="+url.QueryEscape(q), "viewer", "", &aff); code != 200 || aff.Images != 1 || aff.Affected[0].Digest != digest {
			t.Fatalf("affected by %s: %d %+v", q, code, aff)
		}
	}
	var byPkg struct{ Images int }
	s.call("GET", "/api/v1/affected?package=musl&ecosystem=Alpine", "viewer", "", &byPkg)
	if byPkg.Images != 1 {
		t.Fatalf("affected by package musl: %+v", byPkg)
	}
	if code := s.call("GET", "/api/v1/affected", "viewer", "", nil); code != http.StatusBadRequest {
		t.Fatalf("empty affected query: %d", code)
	}
	// The SBOM endpoint serves a CycloneDX document that decodes.
	req, _ := http.NewRequest("GET", s.api.URL+"/api/v1/images/"+digest+"/sbom", nil)
	req.Header.Set("Authorization", "Bearer "+s.tokens["viewer"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(resp.Body, cdx.BOMFileFormatJSON).Decode(&bom); err != nil || bom.Components == nil || len(*bom.Components) < 14 {
		t.Fatalf("sbom: %v", err)
	}
	resp.Body.Close()
	for _, p := range []string{"/api/v1/images/sha256:" + strings.Repeat("0", 64), "/api/v1/advisories/CVE-0000-0000", "/api/v1/jobs/999999"} {
		if code := s.call("GET", p, "viewer", "", nil); code != http.StatusNotFound {
			t.Errorf("%s: %d", p, code)
		}
	}
	if code := s.call("GET", "/api/v1/images/not-a-digest", "viewer", "", nil); code != http.StatusBadRequest {
		t.Errorf("bad digest: %d", code)
	}
	var trend struct{ Points []struct{ Open, Fixable int } }
	s.call("GET", "/api/v1/trend?days=7", "viewer", "", &trend)
	if len(trend.Points) != 8 || trend.Points[7].Fixable == 0 {
		t.Fatalf("trend: %+v", trend)
	}
	req, _ = http.NewRequest("GET", s.api.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+s.tokens["viewer"])
	resp, _ = http.DefaultClient.Do(req)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"socle_images 1", "socle_http_requests_total", "socle_advisories"} {
		if !bytes.Contains(b, []byte(m)) {
			t.Errorf("metrics lack %q", m)
		}
	}
}

// TestRegistryTokens: the registry, exposed beyond loopback, takes the
// API's tokens: viewers pull, developers push, strangers neither.
func TestRegistryTokens(t *testing.T) {
	s := newStack(t)
	reg := registrytest.Start(t, registry.Options{Authorizer: server.RegistryAuthorizer{Auth: auth.NewAuthenticator(s.st)}})
	img := testenv.Image(t, testenv.Layer(t, []testenv.File{{Path: "hand-made", Content: []byte("x")}}))
	ref, _ := name.ParseReference(reg.Host + "/app:1")
	as := func(role string) remote.Option {
		return remote.WithAuth(&authn.Basic{Username: "socle", Password: s.tokens[role]})
	}
	if err := remote.Write(ref, img); err == nil {
		t.Fatal("anonymous push accepted")
	}
	if err := remote.Write(ref, img, as(store.RoleViewer)); err == nil {
		t.Fatal("viewer push accepted")
	}
	if err := remote.Write(ref, img, as(store.RoleDeveloper)); err != nil {
		t.Fatalf("developer push: %v", err)
	}
	if _, err := remote.Image(ref, as(store.RoleViewer)); err != nil {
		t.Fatalf("viewer pull: %v", err)
	}
	if _, err := remote.Image(ref); err == nil {
		t.Fatal("anonymous pull accepted")
	}
}
