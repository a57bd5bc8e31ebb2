package testenv

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// FreeAddr returns a loopback address (127.0.0.1:port) with a port no
// one listens on now, for a server the caller starts.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// WaitOK asks url (GET, plain HTTP) until it answers 200, and fails t
// with what (a server that did not start) and the last error after
// timeout.
func WaitOK(t testing.TB, url, what string, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
