package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthAddr(t *testing.T) {
	for _, tc := range []struct{ listen, want string }{
		{"", "127.0.0.1:8080"},
		{"0.0.0.0:8080", "127.0.0.1:8080"},
		{":9000", "127.0.0.1:9000"},
		{"[::]:8080", "[::1]:8080"},
		{"10.0.0.5:8080", "10.0.0.5:8080"},
	} {
		if got := healthAddr(tc.listen); got != tc.want {
			t.Errorf("healthAddr(%q) = %q, want %q", tc.listen, got, tc.want)
		}
	}
}

// veltrix health exits 0 when the endpoint answers 200 and 1 otherwise
// (503, a redirect, nothing listening), without following redirects.
func TestHealthCommand(t *testing.T) {
	ready := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			if !ready {
				http.Error(w, "not ready: joining the group or restoring state", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte("ready\n"))
		case "/livez":
			w.Write([]byte("live\n"))
		case "/moved":
			http.Redirect(w, r, "/livez", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	_, stderr, code, _ := execute(t, "health", "--addr", addr)
	if code != 1 || !strings.Contains(stderr, "503 not ready") {
		t.Errorf("not ready: exit %d, stderr %q; want 1 and the 503", code, stderr)
	}
	ready = true
	if stdout, stderr, code, _ := execute(t, "health", "--addr", addr); code != 0 || strings.TrimSpace(stdout) != "ready" {
		t.Errorf("ready: exit %d, stdout %q, stderr %q; want 0 and ready", code, stdout, stderr)
	}
	if _, _, code, _ := execute(t, "health", "--addr", addr, "--path", "/livez"); code != 0 {
		t.Errorf("/livez: exit %d, want 0", code)
	}
	if _, _, code, _ := execute(t, "health", "--addr", addr, "--path", "/moved"); code != 1 {
		t.Errorf("a redirect: exit %d, want 1 (not followed)", code)
	}
	t.Setenv("VELTRIX_HTTP_LISTEN", addr)
	if _, _, code, _ := execute(t, "health"); code != 0 {
		t.Errorf("address from VELTRIX_HTTP_LISTEN: exit %d, want 0", code)
	}
	srv.Close()
	if _, _, code, _ := execute(t, "health", "--addr", addr, "--timeout", "1s"); code != 1 {
		t.Errorf("nothing listening: exit %d, want 1", code)
	}
}
