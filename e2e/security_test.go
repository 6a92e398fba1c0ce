package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// With http.auth_token set (here through its environment variable), /v1
// needs the bearer token, instances send it to each other when they forward
// a query to a key's owner, the open endpoints stay open, and the token is
// never logged.
func TestAuthTokenAcrossInstances(t *testing.T) {
	const token = "e2e-token-5b0f3c"
	t.Setenv("VELTRIX_HTTP_AUTH_TOKEN", token) // inherited by both instances
	n, keys := 4000, 200
	brokers := startBroker(t, "payments")
	recs, want := payments(n, keys)
	out := followOutputs(t, brokers, "totals")
	produceGo(t, brokers, recs[:n/2])
	a := start(t, "run", "-c", aggConfig(t, brokers, filepath.Join(t.TempDir(), "a")))
	out.waitFor(t, "progress of instance a", 2*time.Minute, func() bool { return out.total() > 0 })
	b := start(t, "run", "-c", aggConfig(t, brokers, filepath.Join(t.TempDir(), "b")))
	produceGo(t, brokers, recs[n/2:])
	out.waitFor(t, "every key's final aggregate", 3*time.Minute, func() bool { return out.complete(want) })
	waitLog(t, b, "partitions assigned", 1, time.Minute)

	client := &http.Client{Timeout: 10 * time.Second}
	get := func(url, bearer string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	// Every key, asked of either instance with the token, is answered
	// (keys the other instance owns through a forwarded call).
	for name, p := range map[string]*proc{"a": a, "b": b} {
		addr := p.httpAddr(t)
		deadline := time.Now().Add(time.Minute)
		for {
			var wrong []string
			for k, w := range want {
				code, body := get("http://"+addr+"/v1/stores/totals/"+k, token)
				var v struct {
					Value struct {
						Count int64   `json:"count"`
						Sum   float64 `json:"sum"`
					} `json:"value"`
				}
				if err := json.Unmarshal([]byte(body), &v); code != 200 || err != nil || (truth{v.Value.Count, v.Value.Sum}) != w {
					wrong = append(wrong, fmt.Sprintf("%s: %d %.200s", k, code, body))
				}
			}
			if len(wrong) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("instance %s: %d keys answered wrong, e.g. %v", name, len(wrong), wrong[:min(5, len(wrong))])
			}
			time.Sleep(500 * time.Millisecond) // the group may still be settling
		}
		for _, tc := range []struct {
			path, bearer string
			code         int
		}{
			{"/v1/stores/totals/c-1", "", 401},
			{"/v1/stores/totals?prefix=c-", "wrong", 401},
			{"/v1/rules", "", 401},
			{"/v1/rules", token, 200},
			{"/healthz", "", 200},
			{"/readyz", "", 200},
			{"/metrics", "", 200},
		} {
			code, body := get("http://"+addr+tc.path, tc.bearer)
			if code != tc.code {
				t.Errorf("instance %s: GET %s (token %q) = %d %.200s, want %d", name, tc.path, tc.bearer, code, body, tc.code)
			}
			if strings.Contains(body, token) {
				t.Errorf("instance %s: GET %s shows the token", name, tc.path)
			}
		}
	}
	a.stop(t)
	b.stop(t)
	for name, p := range map[string]*proc{"a": a, "b": b} {
		if strings.Contains(p.stderr.String(), token) {
			t.Errorf("instance %s logged the token", name)
		}
	}
}
