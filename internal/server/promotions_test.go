package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/socle-dev/socle/internal/auth"
	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/oci"
	"github.com/socle-dev/socle/internal/promote"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/source"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
)

// promotionStack is the server with two environments: dev, then prod,
// which only approvers and admins may request and two approvers approve.
func promotionStack(t *testing.T) *stack {
	t.Helper()
	s := newStack(t, withEnvironments(t))
	secret, _, err := auth.Create(context.Background(), s.st, auth.Spec{User: "second-approver", Name: "second-approver", Role: store.RoleApprover}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.tokens["approver2"] = secret
	return s
}

// withEnvironments gives the server a promoter of two environments.
func withEnvironments(t testing.TB) func(store.Store, *server.Deps) {
	cfg, err := config.Parse("socle.yaml", []byte(`environments:
  - name: dev
  - name: prod
    roles: [approver, admin]
    gates:
      approvals: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	return func(st store.Store, d *server.Deps) {
		d.Promoter = &promote.Promoter{Store: st, Envs: cfg.Environments}
	}
}

type promotionAnswer struct {
	Promotion struct {
		ID        int64
		State     string
		Approvers []string
	}
	Gates []promote.Gate
	Error struct{ Message string }
}

// TestPromotionAPI: a developer reaches dev, approvers request prod, two
// distinct approver tokens approve, a developer token gets 403.
func TestPromotionAPI(t *testing.T) {
	s := promotionStack(t)
	digest := s.pushAlpine("apps/shop", "1.0")
	image := s.reg.Host + "/apps/shop@" + digest
	body := func(to string) string { return fmt.Sprintf(`{"image":%q,"to":%q}`, image, to) }

	var a promotionAnswer
	if code := s.call("POST", "/api/v1/promotions", "viewer", body("dev"), &a); code != 403 {
		t.Fatalf("a viewer promoted: %d", code)
	}
	if code := s.call("POST", "/api/v1/promotions", "developer", body("prod"), &a); code != 403 || !strings.Contains(a.Error.Message, "may not promote to prod") {
		t.Fatalf("a developer promoted to prod: %d %+v", code, a)
	}
	if code := s.call("POST", "/api/v1/promotions", "approver", body("prod"), &a); code != 409 || a.Gates[0].Gate != promote.GatePath {
		t.Fatalf("prod before dev: %d %+v", code, a)
	}
	if code := s.call("POST", "/api/v1/promotions", "developer", body("dev"), &a); code != 201 || a.Promotion.State != store.PromotionDone {
		t.Fatalf("dev: %d %+v", code, a)
	}
	if code := s.call("POST", "/api/v1/promotions", "developer", body("dev"), &a); code != 200 {
		t.Fatalf("dev again: %d %+v", code, a)
	}
	if code := s.call("POST", "/api/v1/promotions", "approver", body("prod"), &a); code != 202 || a.Promotion.State != store.PromotionAwaitingApproval {
		t.Fatalf("prod request: %d %+v", code, a)
	}
	id := a.Promotion.ID
	approve := fmt.Sprintf("/api/v1/promotions/%d/approve", id)
	if code := s.call("POST", approve, "developer", "", nil); code != 403 {
		t.Fatalf("a developer approved: %d", code)
	}
	if code := s.call("POST", approve, "approver", "", &a); code != 403 {
		t.Fatalf("the requester approved: %d", code)
	}
	if code := s.call("POST", approve, "approver2", "", &a); code != 202 || a.Promotion.State != store.PromotionAwaitingApproval {
		t.Fatalf("first approval: %d %+v", code, a)
	}
	if code := s.call("POST", approve, "approver2", "", &a); code != 202 {
		t.Fatalf("the same approver again: %d %+v", code, a)
	}
	if code := s.call("POST", approve, "admin", "", &a); code != 200 || a.Promotion.State != store.PromotionDone {
		t.Fatalf("second approval: %d %+v", code, a)
	}
	var got struct {
		State     string
		Approvers []string
		Evidence  promote.Evidence
	}
	s.call("GET", fmt.Sprintf("/api/v1/promotions/%d", id), "viewer", "", &got)
	if got.State != store.PromotionDone || strings.Join(got.Approvers, ",") != "second-approver,admin-user" {
		t.Fatalf("promotion %+v", got)
	}
	var deps struct {
		Deployments []struct{ Environment, Digest string }
	}
	s.call("GET", "/api/v1/deployments", "viewer", "", &deps)
	if len(deps.Deployments) != 2 {
		t.Fatalf("deployments %+v", deps)
	}
	var drift struct{ Drift []promote.Drift }
	if code := s.call("GET", "/api/v1/drift", "viewer", "", &drift); code != 200 || len(drift.Drift) != 0 {
		t.Fatalf("drift %d %+v", code, drift)
	}
	var audit struct{ Events []struct{ Action string } }
	if code := s.call("GET", "/api/v1/audit", "viewer", "", nil); code != 403 {
		t.Fatalf("a viewer read the audit log: %d", code)
	}
	s.call("GET", "/api/v1/audit", "approver", "", &audit)
	var actions []string
	for _, e := range audit.Events {
		actions = append(actions, e.Action)
	}
	if want := "promotion.blocked promotion.moving promotion.done promotion.requested promotion.approved promotion.approved promotion.moving promotion.done"; strings.Join(actions, " ") != want {
		t.Fatalf("audit %v", actions)
	}
}

// TestBrowserApprove requests prod in the API, then two approvers sign
// in to the dashboard in turn and approve it there.
func TestBrowserApprove(t *testing.T) {
	s := promotionStack(t)
	digest := s.pushAlpine("apps/shop", "1.0")
	image := s.reg.Host + "/apps/shop@" + digest
	var a promotionAnswer
	s.call("POST", "/api/v1/promotions", "developer", fmt.Sprintf(`{"image":%q,"to":"dev"}`, image), &a)
	if code := s.call("POST", "/api/v1/promotions", "admin", fmt.Sprintf(`{"image":%q,"to":"prod"}`, image), &a); code != 202 {
		t.Fatalf("prod request: %d %+v", code, a)
	}
	ctx := browser(t)
	row := fmt.Sprintf(`#promotions tr[data-promotion="%d"]`, a.Promotion.ID)
	for i, who := range []string{"approver", "approver2"} {
		do(t, ctx, "sign in as "+who,
			chromedp.Navigate(s.api.URL+"/login?next=/promotions"),
			chromedp.WaitVisible(`input[name="token"]`),
			chromedp.SendKeys(`input[name="token"]`, s.tokens[who]),
			chromedp.Submit(`input[name="token"]`),
			chromedp.WaitVisible(row+` button.approve`),
		)
		if gates := text(t, ctx, row); !strings.Contains(gates, fmt.Sprintf("%d of 2 approvals", i)) {
			t.Fatalf("row before approval %d: %q", i+1, gates)
		}
		do(t, ctx, "approve", chromedp.Click(row+` button.approve`), chromedp.WaitVisible(`#promotion-message`))
		want := store.PromotionAwaitingApproval
		if i == 1 {
			want = store.PromotionDone
		}
		if msg := text(t, ctx, `#promotion-message`); !strings.Contains(msg, want) {
			t.Fatalf("after approval %d: %q", i+1, msg)
		}
		do(t, ctx, "sign out", chromedp.Submit(`form.logout button`), chromedp.WaitVisible(`input[name="token"]`))
	}
	var got struct{ State string }
	s.call("GET", fmt.Sprintf("/api/v1/promotions/%d", a.Promotion.ID), "viewer", "", &got)
	if got.State != store.PromotionDone {
		t.Fatalf("after two approvals in the dashboard: %s", got.State)
	}
}

// TestAnswerCache: a repeated "affected by" query is served from the
// cache, and a push that changes the answer is seen at once.
func TestAnswerCache(t *testing.T) {
	s := newStack(t)
	s.importAdvisories("alpine", "vuln-list-alpine-3.10")
	first := s.pushAlpine("library/alpine", "3.10")
	s.waitImage(first)
	var fs struct{ Findings []struct{ ID string } }
	s.call("GET", "/api/v1/images/"+first+"/findings", "viewer", "", &fs)
	if len(fs.Findings) == 0 {
		t.Fatal("no findings")
	}
	q := "/api/v1/affected?advisory=" + fs.Findings[0].ID
	get := func() (int, string) {
		req, _ := http.NewRequest("GET", s.api.URL+q, nil)
		req.Header.Set("Authorization", "Bearer "+s.tokens["viewer"])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var aff struct{ Images int }
		json.NewDecoder(resp.Body).Decode(&aff)
		return aff.Images, resp.Header.Get("X-Socle-Cache")
	}
	if n, hit := get(); n != 1 || hit != "" {
		t.Fatalf("first answer: %d images, cache %q", n, hit)
	}
	if n, hit := get(); n != 1 || hit != "hit" {
		t.Fatalf("second answer: %d images, cache %q", n, hit)
	}
	// Another image with the same packages (the real Alpine image plus a
	// hand-made layer): the answer must count it at once.
	r, _ := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz"))
	src, err := source.Open(context.Background(), r, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	more, err := mutate.AppendLayers(src.Image, testenv.Layer(t, []testenv.File{{Path: "srv/hand-made.txt", Content: []byte("hand-made\n")}}))
	if err != nil {
		t.Fatal(err)
	}
	second := s.push(more, "apps/alpine-app", "1")
	s.waitImage(second)
	if n, hit := get(); n != 2 || hit == "hit" {
		t.Fatalf("after a new affected image: %d images, cache %q", n, hit)
	}
	if n, hit := get(); n != 2 || hit != "hit" {
		t.Fatalf("the new answer is not cached: %d images, cache %q", n, hit)
	}
	// A viewer-less request never reaches the cache.
	if code := s.call("GET", q, "", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", code)
	}
}

// TestDriftOnDashboard: a tag moved behind socle's back shows on the
// Promotions page.
func TestDriftOnDashboard(t *testing.T) {
	s := promotionStack(t)
	first := s.pushAlpine("apps/shop", "1.0")
	var a promotionAnswer
	if code := s.call("POST", "/api/v1/promotions", "developer", fmt.Sprintf(`{"image":%q,"to":"dev"}`, s.reg.Host+"/apps/shop@"+first), &a); code != 201 {
		t.Fatalf("dev: %d %+v", code, a)
	}
	// Someone retags dev by hand, to another image.
	r, _ := oci.ParseImageRef("docker-archive:" + testenv.SharedData(t, "images", "alpine-310.tar.gz"))
	src, err := source.Open(context.Background(), r, source.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	other, _ := mutate.AppendLayers(src.Image, testenv.Layer(t, []testenv.File{{Path: "hand-made", Content: []byte("x\n")}}))
	s.push(other, "apps/shop", "dev")
	req, _ := http.NewRequest("GET", s.api.URL+"/promotions", nil)
	req.Header.Set("Authorization", "Bearer "+s.tokens["viewer"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page strings.Builder
	io.Copy(&page, resp.Body)
	if !strings.Contains(page.String(), `id="drift"`) || !strings.Contains(page.String(), "apps/shop:dev") {
		t.Fatalf("the page shows no drift:\n%s", page.String())
	}
}

// TestApprovalsCountPeople: approvals count distinct users, not tokens:
// a second token of the requester may not approve, and a second token
// of an approver who already approved adds nothing.
func TestApprovalsCountPeople(t *testing.T) {
	s := promotionStack(t)
	mint := func(user, name string) string {
		secret, _, err := auth.Create(context.Background(), s.st, auth.Spec{User: user, Name: name, Role: store.RoleApprover}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[name] = secret
		return name
	}
	digest := s.pushAlpine("apps/shop", "1.0")
	image := s.reg.Host + "/apps/shop@" + digest
	var a promotionAnswer
	s.call("POST", "/api/v1/promotions", "developer", fmt.Sprintf(`{"image":%q,"to":"dev"}`, image), &a)
	if code := s.call("POST", "/api/v1/promotions", "approver", fmt.Sprintf(`{"image":%q,"to":"prod"}`, image), &a); code != http.StatusAccepted && code != http.StatusOK {
		t.Fatalf("prod request: %d %+v", code, a)
	}
	id := a.Promotion.ID
	approve := func(role string) int {
		a = promotionAnswer{}
		return s.call("POST", fmt.Sprintf("/api/v1/promotions/%d/approve", id), role, "", &a)
	}
	// The requester is approver-user: their second token is refused.
	if code := approve(mint("approver-user", "laptop")); code != http.StatusForbidden {
		t.Fatalf("the requester's second token approved: %d", code)
	}
	if code := approve(mint("ann", "ann-ci")); code != http.StatusAccepted {
		t.Fatalf("ann's approval: %d %+v", code, a)
	}
	if code := approve(mint("ann", "ann-laptop")); code == http.StatusOK && a.Promotion.State == store.PromotionDone {
		t.Fatalf("ann's second token completed the two approvals")
	}
	if code := approve("approver2"); code != http.StatusOK || a.Promotion.State != store.PromotionDone {
		t.Fatalf("the second person's approval: %d %+v", code, a)
	}
}
