package server_test

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/store"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// webClient is a cookie-keeping client of the stack's dashboard.
type webClient struct {
	t      *testing.T
	s      *stack
	client *http.Client
}

func newWebClient(t *testing.T, s *stack) *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{t: t, s: s, client: &http.Client{Jar: jar}}
}

// get returns a page's status, final path and body.
func (b *webClient) get(path string) (int, string, string) {
	b.t.Helper()
	resp, err := b.client.Get(b.s.api.URL + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL.RequestURI(), string(body)
}

func (b *webClient) post(path string, form url.Values) (int, string, string) {
	b.t.Helper()
	resp, err := b.client.PostForm(b.s.api.URL+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL.RequestURI(), string(body)
}

// signIn submits the sign-in form with a token, and returns where it
// landed.
func (b *webClient) signIn(token, next string) (int, string) {
	b.t.Helper()
	_, _, page := b.get("/login")
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("the sign-in form has no CSRF token:\n%s", page)
	}
	code, where, _ := b.post("/login", url.Values{"token": {token}, "next": {next}, "csrf": {m[1]}})
	return code, where
}

func (b *webClient) cookie(name string) string {
	u, _ := url.Parse(b.s.api.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// TestDashboardSessions: the sign-in form needs its CSRF token; a good
// token opens a session whose cookie is not the token; the post-login
// redirect stays on the site however it is written; a cookie request
// that changes state needs the session's CSRF token; sign-out revokes
// the session, and its cookie no longer works.
func TestDashboardSessions(t *testing.T) {
	s := newStack(t)
	b := newWebClient(t, s)
	// Login CSRF: a form posted without the token from the page.
	if code, _, _ := b.post("/login", url.Values{"token": {s.tokens[store.RoleDeveloper]}, "next": {"/"}}); code != http.StatusBadRequest {
		t.Fatalf("sign-in without its CSRF token: %d", code)
	}
	if code, _ := b.signIn("socle_wrong", "/"); code != http.StatusUnauthorized {
		t.Fatalf("bad token: %d", code)
	}
	for _, next := range []string{"//evil.example/", "/\t/evil.example/", "/\\evil.example", "https://evil.example/", "/%0a/evil.example"} {
		b := newWebClient(t, s)
		// A redirect off the site would fail to reach evil.example.
		_, where := b.signIn(s.tokens[store.RoleDeveloper], next)
		if u, _ := url.Parse(where); u.Host != "" || !strings.HasPrefix(where, "/") {
			t.Fatalf("next %q left the site: %s", next, where)
		}
	}
	if code, where := b.signIn(s.tokens[store.RoleDeveloper], "/jobs"); code != http.StatusOK || where != "/jobs" {
		t.Fatalf("sign-in: %d %s", code, where)
	}
	session := b.cookie("socle_session")
	if session == "" || session == s.tokens[store.RoleDeveloper] || strings.HasPrefix(session, "socle_") {
		t.Fatalf("the session cookie is %q", session)
	}
	// A cookie-authenticated POST needs the session's CSRF token.
	req, _ := http.NewRequest("POST", s.api.URL+"/api/v1/scans", strings.NewReader(`{"reference":"app:none"}`))
	resp, _ := b.client.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST without CSRF: %d", resp.StatusCode)
	}
	_, _, page := b.get("/")
	csrf := csrfField.FindStringSubmatch(page)[1]
	req, _ = http.NewRequest("POST", s.api.URL+"/api/v1/scans", strings.NewReader(`{"reference":"app:none"}`))
	req.Header.Set("X-Socle-CSRF", csrf)
	resp, _ = b.client.Do(req)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), "CSRF") {
		t.Fatalf("POST with CSRF: %d %s", resp.StatusCode, body)
	}
	// Another webClient's CSRF token does not work for this session.
	other := newWebClient(t, s)
	other.signIn(s.tokens[store.RoleViewer], "/")
	_, _, otherPage := other.get("/")
	req, _ = http.NewRequest("POST", s.api.URL+"/api/v1/scans", strings.NewReader(`{"reference":"app:none"}`))
	req.Header.Set("X-Socle-CSRF", csrfField.FindStringSubmatch(otherPage)[1])
	resp, _ = b.client.Do(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("POST with another session's CSRF token: %d", resp.StatusCode)
	}
	// Sign-out revokes: the old cookie no longer opens a page.
	if _, where, _ := b.post("/logout", url.Values{"csrf": {csrf}}); where != "/login" {
		t.Fatalf("sign-out landed on %s", where)
	}
	stolen := newWebClient(t, s)
	u, _ := url.Parse(s.api.URL)
	stolen.client.Jar.SetCookies(u, []*http.Cookie{{Name: "socle_session", Value: session}})
	if _, where, _ := stolen.get("/"); !strings.HasPrefix(where, "/login") {
		t.Fatalf("a signed-out session still opened %s", where)
	}
	// Both sign-ins and the sign-out are in the audit log.
	evs, _ := s.st.AuditEvents(t.Context(), 0, 1000)
	seen := map[string]int{}
	for _, e := range evs {
		seen[e.Action]++
	}
	if seen["auth.signin"] < 2 || seen["auth.signout"] != 1 {
		t.Fatalf("audit: %v", seen)
	}
}

// TestSecureCookies: the session cookie is Secure when the public URL is
// https, or when a trusted proxy says the request came over https; a
// header from anyone else is not believed.
func TestSecureCookies(t *testing.T) {
	for _, tc := range []struct {
		name      string
		auth      config.Auth
		forwarded bool
		secure    bool
	}{
		{"plain loopback", config.Auth{}, false, false},
		{"https public URL", config.Auth{PublicURL: "https://socle.example.org"}, false, true},
		{"trusted proxy", config.Auth{TrustedProxies: []string{"127.0.0.0/8"}}, true, true},
		{"untrusted forwarded header", config.Auth{TrustedProxies: []string{"10.0.0.0/8"}}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStack(t, func(_ store.Store, d *server.Deps) { d.AuthConfig = tc.auth })
			req, _ := http.NewRequest("GET", s.api.URL+"/login", nil)
			if tc.forwarded {
				req.Header.Set("X-Forwarded-Proto", "https")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for _, c := range resp.Cookies() {
				if c.Name == "socle_login" && c.Secure != tc.secure {
					t.Fatalf("Secure = %v, want %v", c.Secure, tc.secure)
				}
				if !c.HttpOnly {
					t.Fatalf("cookie %s is readable by scripts", c.Name)
				}
			}
		})
	}
}

// TestSessionAPI: a person lists and revokes their own sessions, not
// another's; an admin revokes anyone's, and it is audited.
func TestSessionAPI(t *testing.T) {
	s := newStack(t)
	dev, viewer := newWebClient(t, s), newWebClient(t, s)
	dev.signIn(s.tokens[store.RoleDeveloper], "/")
	viewer.signIn(s.tokens[store.RoleViewer], "/")
	var list struct{ Sessions []struct{ ID, User string } }
	s.call("GET", "/api/v1/sessions", "viewer", "", &list)
	if len(list.Sessions) != 1 || list.Sessions[0].User != "viewer-user" {
		t.Fatalf("a viewer's list: %+v", list)
	}
	mine := list.Sessions[0].ID
	s.call("GET", "/api/v1/sessions", "admin", "", &list)
	if len(list.Sessions) != 2 {
		t.Fatalf("the admin's list: %+v", list)
	}
	var devSession string
	for _, se := range list.Sessions {
		if se.User == "developer-user" {
			devSession = se.ID
		}
	}
	if code := s.call("DELETE", "/api/v1/sessions/"+devSession, "viewer", "", nil); code != http.StatusForbidden {
		t.Fatalf("a viewer revoked another's session: %d", code)
	}
	if code := s.call("DELETE", "/api/v1/sessions/"+mine, "viewer", "", nil); code != http.StatusOK {
		t.Fatalf("revoking one's own session: %d", code)
	}
	if code := s.call("DELETE", "/api/v1/sessions/"+devSession, "admin", "", nil); code != http.StatusOK {
		t.Fatalf("the admin revoking: %d", code)
	}
	if _, where, _ := dev.get("/"); !strings.HasPrefix(where, "/login") {
		t.Fatalf("a revoked session still opened %s", where)
	}
}
