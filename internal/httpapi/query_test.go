package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/veltrix/veltrix/internal/httpapi"
	"github.com/veltrix/veltrix/internal/state"
)

// stores is a fake query side: keys held locally, an owner for the others,
// the peers' addresses, and hooks to block a query.
type stores struct {
	source
	local     map[string]string
	owner     string // address Lookup returns for keys not held
	members   []string
	self      string
	lastLimit atomic.Int64
	entered   chan struct{} // when set, a query signals it started...
	release   chan struct{} // ...and waits for this (or its context)
}

func (s *stores) HasStore(name string) bool { return name == "s" }

func (s *stores) wait(ctx context.Context) error {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.release == nil {
		return nil
	}
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *stores) Lookup(ctx context.Context, _ string, key []byte) ([]byte, bool, string, error) {
	if err := s.wait(ctx); err != nil {
		return nil, false, "", err
	}
	if v, ok := s.local[string(key)]; ok {
		return []byte(v), true, "", nil
	}
	return nil, false, s.owner, nil
}

func (s *stores) Scan(ctx context.Context, _ string, prefix []byte, limit int) ([]state.KV, error) {
	s.lastLimit.Store(int64(limit))
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	var out []state.KV
	for _, k := range sortedKeys(s.local) {
		if strings.HasPrefix(k, string(prefix)) && len(out) < limit {
			out = append(out, state.KV{Key: []byte(k), Value: []byte(s.local[k])})
		}
	}
	return out, nil
}

func (s *stores) Members(context.Context) ([]string, error) { return s.members, nil }
func (s *stores) Advertised() string                        { return s.self }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := range keys {
		for j := i + 1; j < len(keys); j++ {
			if keys[j] < keys[i] {
				keys[i], keys[j] = keys[j], keys[i]
			}
		}
	}
	return keys
}

func serve(t *testing.T, st *stores, opts ...httpapi.Option) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(httpapi.Handler(prometheus.NewRegistry(), testTopology(t), st, opts...))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAuthToken(t *testing.T) {
	const token = "s3cret-token"
	srv := serve(t, &stores{local: map[string]string{"k": `1`}}, httpapi.WithAuthToken(token))
	for _, tc := range []struct {
		path, token string
		code        int
	}{
		{"/healthz", "", 200},
		{"/readyz", "", 503},
		{"/metrics", "", 200},
		{"/", "", 200},
		{"/v1/rules", "", 401},
		{"/v1/rules", "wrong", 401},
		{"/v1/rules", token + "x", 401},
		{"/v1/rules", token, 200},
		{"/v1/topology", "", 401},
		{"/v1/status", token, 200},
		{"/v1/stores/s/k", "", 401},
		{"/v1/stores/s/k", token, 200},
		{"/v1/stores/s", "", 401},
		{"/v1/stores/s", token, 200},
		{"/v1/nope", "", 401}, // no hint of what exists without the token
	} {
		code, body := do(t, srv.URL+tc.path, tc.token)
		if code != tc.code {
			t.Errorf("GET %s with token %q = %d %s, want %d", tc.path, tc.token, code, body, tc.code)
		}
		if strings.Contains(body, token) {
			t.Errorf("GET %s: the answer shows the token: %s", tc.path, body)
		}
	}
}

func TestScanLimit(t *testing.T) {
	local := map[string]string{}
	for i := range 1500 {
		local[fmt.Sprintf("k%04d", i)] = `1`
	}
	st := &stores{local: local}
	srv := serve(t, st)
	for _, tc := range []struct {
		query     string
		code      int
		wantLimit int64 // pushed down to the store's scan
		items     int
	}{
		{"", 200, 100, 100},
		{"?limit=7", 200, 7, 7},
		{"?limit=1000", 200, 1000, 1000},
		{"?limit=1001", 400, 0, 0},
		{"?limit=0", 400, 0, 0},
		{"?limit=-1", 400, 0, 0},
		{"?limit=x", 400, 0, 0},
		{"?prefix=k14&limit=1000", 200, 1000, 100},
	} {
		st.lastLimit.Store(0)
		code, body := do(t, srv.URL+"/v1/stores/s"+tc.query, "")
		if code != tc.code {
			t.Errorf("%s: %d %.200s, want %d", tc.query, code, body, tc.code)
			continue
		}
		if got := st.lastLimit.Load(); got != tc.wantLimit {
			t.Errorf("%s: store scanned with limit %d, want %d", tc.query, got, tc.wantLimit)
		}
		if code != 200 {
			if !strings.Contains(body, `"error"`) {
				t.Errorf("%s: %s, want a JSON error", tc.query, body)
			}
			continue
		}
		var ans struct {
			Items []struct{ Key string } `json:"items"`
		}
		if err := json.Unmarshal([]byte(body), &ans); err != nil || len(ans.Items) != tc.items {
			t.Errorf("%s: %d items (%v), want %d", tc.query, len(ans.Items), err, tc.items)
		}
	}
}

func TestScanResponseBytes(t *testing.T) {
	big := `"` + strings.Repeat("x", 1<<20) + `"`
	local := map[string]string{}
	for i := range 10 {
		local[fmt.Sprintf("k%d", i)] = big
	}
	srv := serve(t, &stores{local: local})
	code, body := do(t, srv.URL+"/v1/stores/s", "")
	var ans struct {
		Items     []json.RawMessage `json:"items"`
		Truncated bool              `json:"truncated"`
	}
	if err := json.Unmarshal([]byte(body), &ans); code != 200 || err != nil {
		t.Fatalf("%d %v", code, err)
	}
	if !ans.Truncated || len(ans.Items) == 0 || len(ans.Items) >= 10 || len(body) > 5<<20 {
		t.Errorf("10 values of 1 MiB: %d items, truncated %v, %d bytes; want a truncated answer under 5 MiB", len(ans.Items), ans.Truncated, len(body))
	}
}

// peer is another instance: it answers path with body, records what it got.
func peer(t *testing.T, handler http.HandlerFunc) (addr string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		handler(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), hits
}

func TestForwardToOwner(t *testing.T) {
	const token = "peer-token"
	target, targetHits := peer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"stolen":true}`)
	})
	good, _ := peer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token || r.URL.Query().Get("local") != "1" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"key":"k","value":2}`)
	})
	redirect, _ := peer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+target+"/", http.StatusFound)
	})
	huge, _ := peer(t, func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 1<<20))
		for range 20 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	for _, tc := range []struct {
		name, owner string
		code        int
		want        string
	}{
		{"owner", good, 200, `"value":2`},
		{"redirect not followed", redirect, 502, "redirects are not followed"},
		{"bounded body", huge, 502, "answer longer than"},
		{"scheme", "http://" + good, 502, "unusable address"},
		{"path", good + "/x", 502, "unusable address"},
		{"userinfo", "u@" + good, 502, "unusable address"},
		{"query in host", target + "/?x=:1", 502, "unusable address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, &stores{owner: tc.owner}, httpapi.WithAuthToken(token))
			code, body := do(t, srv.URL+"/v1/stores/s/k", token)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("owner %q: %d %.300s, want %d containing %q", tc.owner, code, body, tc.code, tc.want)
			}
			if strings.Contains(body, token) {
				t.Errorf("the answer shows the token: %s", body)
			}
		})
	}
	if n := targetHits.Load(); n != 0 {
		t.Errorf("the redirect target was called %d times, want never", n)
	}
}

func TestFanOut(t *testing.T) {
	const token = "peer-token"
	answer := func(keys ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			if r.URL.Query().Get("local") != "1" || r.URL.Query().Get("limit") != "3" {
				http.Error(w, "want local=1&limit=3, got "+r.URL.RawQuery, 400)
				return
			}
			items := []map[string]any{}
			for _, k := range keys {
				items = append(items, map[string]any{"key": k, "value": 1})
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"items": items})
		}
	}
	p1, _ := peer(t, answer("a2", "a5", "a6"))
	p2, _ := peer(t, answer("a1", "a4", "a7", "a8", "a9")) // more than asked: cut
	redirect, _ := peer(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+p1+"/", http.StatusFound)
	})
	st := &stores{
		local:   map[string]string{"a3": `1`, "b1": `1`},
		self:    "self:1",
		members: []string{"self:1", p1, p2, redirect, "evil/x:1"},
	}
	srv := serve(t, st, httpapi.WithAuthToken(token))
	code, body := do(t, srv.URL+"/v1/stores/s?prefix=a&limit=3", token)
	var ans struct {
		Items []struct {
			Key string `json:"key"`
		} `json:"items"`
		Unreachable []string `json:"unreachable"`
	}
	if err := json.Unmarshal([]byte(body), &ans); code != 200 || err != nil {
		t.Fatalf("%d %s (%v)", code, body, err)
	}
	var keys []string
	for _, it := range ans.Items {
		keys = append(keys, it.Key)
	}
	if got := strings.Join(keys, " "); got != "a1 a2 a3" {
		t.Errorf("items %q, want a1 a2 a3", got)
	}
	if len(ans.Unreachable) != 2 || !strings.Contains(body, "redirects are not followed") || !strings.Contains(body, "unusable address") {
		t.Errorf("unreachable = %q, want the redirecting peer and the bad address", ans.Unreachable)
	}
	if strings.Contains(body, token) {
		t.Errorf("the answer shows the token: %s", body)
	}
}

func TestQueryBounds(t *testing.T) {
	t.Run("concurrency", func(t *testing.T) {
		st := &stores{local: map[string]string{"k": `1`}, entered: make(chan struct{}, 1), release: make(chan struct{})}
		srv := serve(t, st, httpapi.WithMaxQueries(1))
		first := make(chan int, 1)
		go func() {
			resp, err := http.Get(srv.URL + "/v1/stores/s/k")
			if err != nil {
				first <- 0
				return
			}
			resp.Body.Close()
			first <- resp.StatusCode
		}()
		<-st.entered // the first query holds the only slot
		for _, path := range []string{"/v1/stores/s/k", "/v1/stores/s"} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "too many queries") {
				t.Errorf("GET %s over the bound = %d %s (Retry-After %q), want 503 with a JSON error", path, resp.StatusCode, b, resp.Header.Get("Retry-After"))
			}
		}
		close(st.release)
		if code := <-first; code != 200 {
			t.Errorf("first query = %d, want 200", code)
		}
		st.entered = nil // the slot is free again
		if code, body := do(t, srv.URL+"/v1/stores/s/k", ""); code != 200 {
			t.Errorf("after the first query = %d %s, want 200", code, body)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		st := &stores{release: make(chan struct{})} // never released
		srv := serve(t, st, httpapi.WithQueryTimeout(50*time.Millisecond))
		for _, path := range []string{"/v1/stores/s/k", "/v1/stores/s"} {
			code, body := do(t, srv.URL+path, "")
			if code != 504 || !strings.Contains(body, "timed out") {
				t.Errorf("GET %s = %d %s, want 504 timed out", path, code, body)
			}
		}
	})
}
