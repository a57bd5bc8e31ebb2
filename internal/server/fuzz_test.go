package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzAPIRequests sends arbitrary paths, queries and bodies to the API
// with a valid token: no panic, and no 500 for a malformed request.
func FuzzAPIRequests(f *testing.F) {
	f.Add("GET", "/api/v1/affected?advisory=CVE-2021-3450", "")
	f.Add("GET", "/api/v1/images?limit=-5&offset=abc", "")
	f.Add("GET", "/api/v1/images/sha256:zz/findings", "")
	f.Add("POST", "/api/v1/scans", `{"reference": "../../x"}`)
	f.Add("POST", "/api/v1/deployments", `{"environment":"p","repository":"r","digest":"sha256:1"}`)
	f.Add("GET", "/api/v1/tags/history?repository=a", "")
	f.Add("GET", "/cves/%00", "")
	f.Add("GET", "/search?q=sha256:"+strings.Repeat("a", 64), "")
	f.Add("POST", "/api/v1/promotions", `{"image":"::","to":"dev"}`)
	f.Add("POST", "/api/v1/promotions", `{"image":"127.0.0.1:1/x@sha256:`+strings.Repeat("a", 64)+`","to":"prod"}`)
	f.Add("POST", "/api/v1/promotions/7/approve", "")
	f.Add("POST", "/api/v1/rollback", `{"image":"a/b","environment":"dev"}`)
	f.Add("GET", "/api/v1/promotions?state=done&limit=x", "")
	s := newStack(f, withEnvironments(f))
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") {
			return
		}
		req, err := http.NewRequest(method, "http://socle"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+s.tokens["developer"])
		rec := httptest.NewRecorder()
		s.handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body.String())
		}
	})
}
