package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socle-dev/socle/internal/config"
	"github.com/socle-dev/socle/internal/server"
	"github.com/socle-dev/socle/internal/store"
	"github.com/socle-dev/socle/internal/testenv"
)

// oidcProvider is a real OpenID Connect provider process: zitadel's
// example OP (.ci/run builds it from the module proxy). Its users come
// from a file; it has no groups claim, so these tests map roles from
// the email claim, which it does serve (from its userinfo endpoint).
type oidcProvider struct {
	issuer string
	port   string
}

// opUser is one entry of the provider's users file (hand-made).
type opUser struct {
	ID, Username, Password, FirstName, LastName, Email string
	EmailVerified                                      bool
	PreferredLanguage                                  string
}

func oidcBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SOCLE_OIDC_OP"); p != "" {
		return p
	}
	if os.Getenv("SOCLE_SKIP_OIDC") != "" {
		t.Skip("SOCLE_SKIP_OIDC is set")
	}
	t.Fatal("no OIDC provider: .ci/run builds one and sets SOCLE_OIDC_OP (or set SOCLE_SKIP_OIDC=1)")
	return ""
}

// reserveOIDC picks the provider's port before socle starts, since socle
// needs the issuer and the provider needs socle's callback URL.
func reserveOIDC(t *testing.T) *oidcProvider {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return &oidcProvider{issuer: "http://localhost:" + port + "/", port: port}
}

// start runs the provider with users, redirecting only to callback.
func (op *oidcProvider) start(t *testing.T, callback string, users map[string]opUser) {
	t.Helper()
	bin := oidcBinary(t)
	dir := t.TempDir()
	b, _ := json.Marshal(users)
	usersFile := filepath.Join(dir, "users.json")
	if err := os.WriteFile(usersFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "PORT="+op.port, "USERS_FILE="+usersFile, "REDIRECT_URI="+callback)
	logf, _ := os.Create(filepath.Join(dir, "op.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("OIDC provider log:\n%s", b)
		}
	})
	testenv.WaitOK(t, op.issuer+".well-known/openid-configuration", "the OIDC provider", 30*time.Second)
}

var opRequestID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// signInWithOIDC runs the browser's part: socle sends it to the
// provider, it signs in there with a username and password, and the
// provider sends it back to socle. It returns the final status and path.
func (b *webClient) signInWithOIDC(op *oidcProvider, username, password, next string) (int, string, string) {
	b.t.Helper()
	code, where, page := b.get("/auth/oidc?next=" + url.QueryEscape(next))
	if code != http.StatusOK || !strings.HasPrefix(where, "/login/username") {
		b.t.Fatalf("socle did not send the browser to the provider's sign-in: %d %s\n%s", code, where, page)
	}
	m := opRequestID.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("the provider's sign-in form has no request id:\n%s", page)
	}
	resp, err := b.client.PostForm(op.issuer+"login/username", url.Values{"username": {username}, "password": {password}, "id": {m[1]}})
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL.RequestURI(), string(body)
}

// TestOIDCSignIn signs people in through a real provider: the code is
// exchanged at its token endpoint, the ID token verified against its
// keys, the email read from its userinfo endpoint and mapped to a role.
// Someone the mapping does not name gets no session; a wrong password
// never comes back; a callback with a state socle did not issue is
// refused; the session works for the API, and the sign-in is audited.
func TestOIDCSignIn(t *testing.T) {
	op := reserveOIDC(t)
	t.Setenv("SOCLE_TEST_OIDC_SECRET", "secret")
	s := newStack(t, func(_ store.Store, d *server.Deps) {
		d.AuthConfig = config.Auth{OIDC: &config.OIDC{
			Issuer: op.issuer, ClientID: "web", ClientSecretEnv: "SOCLE_TEST_OIDC_SECRET",
			UserClaim: "email", GroupsClaim: "email",
			Roles: map[string]string{"alice@test.invalid": store.RoleApprover},
		}}
	})
	op.start(t, s.api.URL+"/auth/callback", map[string]opUser{
		"u-alice":   {ID: "u-alice", Username: "alice", Password: "alice's password", Email: "alice@test.invalid", EmailVerified: true, PreferredLanguage: "en"},
		"u-mallory": {ID: "u-mallory", Username: "mallory", Password: "mallory's password", Email: "mallory@test.invalid", EmailVerified: true, PreferredLanguage: "en"},
	})

	b := newWebClient(t, s)
	if _, _, page := b.get("/login"); !strings.Contains(page, "/auth/oidc") {
		t.Fatalf("the sign-in page offers no OIDC sign-in:\n%s", page)
	}
	code, where, page := b.signInWithOIDC(op, "alice", "alice's password", "/jobs")
	if code != http.StatusOK || where != "/jobs" {
		t.Fatalf("alice's sign-in ended at %d %s:\n%s", code, where, page)
	}
	if b.cookie("socle_session") == "" {
		t.Fatal("no session cookie after the sign-in")
	}
	// The session is alice's, with the role her email maps to.
	req, _ := http.NewRequest("GET", s.api.URL+"/api/v1/sessions", nil)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sessions struct {
		Sessions []struct{ User, Role, Source string } `json:"sessions"`
	}
	json.NewDecoder(resp.Body).Decode(&sessions)
	resp.Body.Close()
	if len(sessions.Sessions) != 1 || sessions.Sessions[0].User != "alice@test.invalid" || sessions.Sessions[0].Role != store.RoleApprover ||
		sessions.Sessions[0].Source != "oidc:"+op.issuer {
		t.Fatalf("sessions: %+v", sessions)
	}

	// Mallory authenticates at the provider, but no group of hers maps
	// to a role: no session.
	m := newWebClient(t, s)
	code, _, page = m.signInWithOIDC(op, "mallory", "mallory's password", "/")
	if code != http.StatusForbidden || m.cookie("socle_session") != "" {
		t.Fatalf("mallory: %d, session %q\n%s", code, m.cookie("socle_session"), page)
	}
	// A wrong password stays at the provider.
	w := newWebClient(t, s)
	if _, where, _ := w.signInWithOIDC(op, "alice", "guess", "/"); !strings.HasPrefix(where, "/login/username") || w.cookie("socle_session") != "" {
		t.Fatalf("a wrong password ended at %s", where)
	}
	// A callback socle did not start (no state cookie, or a state of its
	// own) is refused before any code is exchanged.
	x := newWebClient(t, s)
	if code, _, _ := x.get("/auth/callback?code=stolen&state=whatever"); code != http.StatusBadRequest || x.cookie("socle_session") != "" {
		t.Fatalf("a forged callback: %d", code)
	}

	evs, _ := s.st.AuditEvents(t.Context(), 0, 1000)
	var signins []string
	for _, e := range evs {
		if e.Action == "auth.signin" {
			signins = append(signins, e.Subject)
		}
	}
	if fmt.Sprint(signins) != "[alice@test.invalid]" {
		t.Fatalf("audited sign-ins: %v", signins)
	}
}
