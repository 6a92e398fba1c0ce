package httpapi_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/dlq"
	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/httpapi"
	"github.com/veltrix/veltrix/internal/metrics"
	"github.com/veltrix/veltrix/internal/topology"
)

// consoleConfig is a configuration with a stateful rule, a DLQ and values
// from a file, the environment and defaults.
const consoleConfig = `app:
  id: shop
  state_dir: %DIR%
kafka:
  brokers: [localhost:9092]
  sasl: {mechanism: PLAIN, username: u, password: hunter2-file}
http:
  listen: 127.0.0.1:0
rules:
  - name: big-orders
    from: orders
    steps:
      - filter: event.total > 100
      - to: orders.big
  - name: revenue
    from: orders
    steps:
      - aggregate: {store: revenue, key: event.customer_id, sum: event.total}
      - to: revenue-out
`

func loadConsoleConfig(t *testing.T) (*config.Config, *topology.Topology) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "veltrix.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(consoleConfig, "%DIR%", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VELTRIX_PROCESSING_COMMIT_INTERVAL": "250ms", "VELTRIX_HTTP_AUTH_TOKEN": ""}
	cfg, err := config.Load(path, config.WithEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, topo
}

// consoleSource is a fake instance: readiness, tasks and the query side.
type consoleSource struct {
	stores
	tasks []engine.TaskView
}

func (s *consoleSource) HasStore(name string) bool { return name == "revenue" }
func (s *consoleSource) Tasks() []engine.TaskView  { return s.tasks }
func (s *consoleSource) TaskOwner(_ context.Context, p int32) (string, error) {
	if p == 2 {
		return "", errors.New("rebalancing")
	}
	return "10.0.0.2:8080", nil
}

// fakeDLQ serves fixed records and records replays.
type fakeDLQ struct {
	recs     []dlq.Record
	mu       sync.Mutex
	replayed []dlq.Ref
	audit    dlq.Audit
}

func (f *fakeDLQ) Latest(context.Context, []string, int) ([]dlq.Record, bool, error) {
	return f.recs, false, nil
}

func (f *fakeDLQ) Replay(_ context.Context, refs []dlq.Ref, allowed func(string) bool, a dlq.Audit) ([]dlq.Replayed, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []dlq.Replayed
	for _, r := range refs {
		if !allowed("orders") || allowed("elsewhere") {
			return nil, errors.New("allowed is not the topology's inputs")
		}
		f.replayed = append(f.replayed, r)
		out = append(out, dlq.Replayed{Ref: r, To: "orders/1/99"})
	}
	f.audit = a
	return out, nil
}

type consoleEnv struct {
	srv *httptest.Server
	reg *prometheus.Registry
	m   *metrics.Metrics
	dlq *fakeDLQ
	src *consoleSource
}

func newConsole(t *testing.T, token string) *consoleEnv {
	t.Helper()
	cfg, topo := loadConsoleConfig(t)
	cfg.HTTP.AuthToken = token
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	now := time.Now()
	src := &consoleSource{
		stores: stores{local: map[string]string{"c-1": `{"key":"c-1","count":2,"sum":30}`, "c-2": `{"key":"c-2","count":1,"sum":5}`}, owner: "", self: "127.0.0.1:1"},
		tasks: []engine.TaskView{
			{Partition: 0, Owned: true, StreamTime: now.Add(-time.Minute), Restores: []engine.RestoreView{
				{Store: "revenue", Total: 1000, Remaining: 250, Started: now.Add(-30 * time.Second), Updated: now}}},
			{Partition: 1},
			{Partition: 2},
		},
	}
	m.Lag("orders", 0, 42)
	m.StateStoreKeys.WithLabelValues("revenue").Set(17)
	m.RuleRecords.WithLabelValues("big-orders", "matched").Add(5)
	m.RuleRecords.WithLabelValues("big-orders", "dlq").Add(2)
	fd := &fakeDLQ{recs: []dlq.Record{
		{Topic: "shop.dlq", Partition: 0, Offset: 7, Timestamp: now, Code: "VX5001", Message: "value is not a JSON object", Rule: "big-orders",
			SourceTopic: "orders", SourcePartition: 1, SourceOffset: 41, Key: []byte("o-1"), Value: []byte(`<script>alert(1)</script>` + strings.Repeat("x", 400))},
		{Topic: "shop.dlq", Partition: 1, Offset: 3, Timestamp: now.Add(-time.Second), Code: "VX5003", Message: "no such key: total", Rule: "revenue",
			SourceTopic: "orders", SourcePartition: 0, SourceOffset: 9, Key: []byte("o-2"), Value: []byte(`{"id":"o-2"}`)},
	}}
	opts := []httpapi.Option{httpapi.WithConfig(cfg), httpapi.WithDLQ(fd), httpapi.WithConfigVersion(func() string { return "v7" }),
		httpapi.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
	if token != "" {
		opts = append(opts, httpapi.WithAuthToken(token))
	}
	srv := httptest.NewServer(httpapi.Handler(reg, topo, src, opts...))
	t.Cleanup(srv.Close)
	return &consoleEnv{srv: srv, reg: reg, m: m, dlq: fd, src: src}
}

func mustContain(t *testing.T, page, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s: missing %q", page, w)
		}
	}
}

func TestConsoleTopology(t *testing.T) {
	env := newConsole(t, "")
	code, body := get(t, env.srv, "/")
	if code != 200 {
		t.Fatalf("GET / = %d", code)
	}
	mustContain(t, "/", body,
		`<svg id="topology"`, `class="node rule"`, ">big-orders</text>", ">revenue</text>",
		">orders</text>", ">orders.big</text>", ">shop.dlq</text>", "store revenue</text>",
		"aggregate · 17 keys", "filter → to", `class="edge dlq"`,
		`<td class="name">big-orders</td>`, `<td class="n">7</td>`, // total in: 5 matched + 2 dlq
		"config v7", `href="/assets/console.css"`)
	for _, p := range []string{"/assets/console.css", "/assets/console.js", "/assets/favicon.svg"} {
		if code, _ := get(t, env.srv, p); code != 200 {
			t.Errorf("GET %s = %d", p, code)
		}
	}
	// No page loads anything from elsewhere.
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(body) {
		t.Errorf("/ refers to another host")
	}
}

func TestConsolePartitions(t *testing.T) {
	env := newConsole(t, "")
	_, body := get(t, env.srv, "/partitions")
	mustContain(t, "/partitions", body,
		"<b>this instance</b>", "orders: <b>42</b>",
		`<progress max="1000" value="750">`, "250 of 1000 left, ETA 10s",
		`<a href="http://10.0.0.2:8080/partitions">10.0.0.2:8080</a>`,
		`title="rebalancing">unknown</span>`)
}

func TestConsoleDLQ(t *testing.T) {
	env := newConsole(t, "")
	_, body := get(t, env.srv, "/dlq")
	mustContain(t, "/dlq", body,
		`<a href="/errors#vx5001" class="code">VX5001</a>`, "value is not a JSON object",
		"orders/1/41", `value="shop.dlq/0/7"`, "&lt;script&gt;alert(1)&lt;/script&gt;xxx", "…</code>",
		"2 of the 2 newest", `<option value="VX5003" >VX5003</option>`)
	if strings.Contains(body, "<script>alert") || strings.Contains(body, strings.Repeat("x", 300)) {
		t.Error("/dlq shows a value unescaped or not shortened")
	}
	_, body = get(t, env.srv, "/dlq?code=VX5003")
	mustContain(t, "/dlq?code=VX5003", body, "1 of the 2 newest", "no such key: total")
	if strings.Contains(body, "value is not a JSON object") {
		t.Error("code filter kept a VX5001 record")
	}
	_, body = get(t, env.srv, "/dlq?rule=big-orders")
	if !strings.Contains(body, "1 of the 2 newest") || strings.Contains(body, "no such key") {
		t.Error("rule filter did not keep only big-orders' records")
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no CSRF field on the page")
	}
	return m[1]
}

func post(t *testing.T, cl *http.Client, u string, form url.Values, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestConsoleReplay(t *testing.T) {
	env := newConsole(t, "")
	_, page := get(t, env.srv, "/dlq")
	csrf := csrfOf(t, page)
	cl := env.srv.Client()
	u := env.srv.URL + "/dlq/replay"
	for _, tc := range []struct {
		name   string
		form   url.Values
		header map[string]string
		code   int
		want   string
	}{
		{"no CSRF token", url.Values{"r": {"shop.dlq/0/7"}}, nil, 403, "CSRF"},
		{"wrong CSRF token", url.Values{"r": {"shop.dlq/0/7"}, "csrf": {"00"}}, nil, 403, "CSRF"},
		{"other origin", url.Values{"r": {"shop.dlq/0/7"}, "csrf": {csrf}}, map[string]string{"Origin": "http://evil.example"}, 403, "CSRF"},
		{"cross-site fetch", url.Values{"r": {"shop.dlq/0/7"}, "csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "CSRF"},
		{"not a DLQ topic", url.Values{"r": {"orders/0/1"}, "csrf": {csrf}}, nil, 200, "is not a DLQ topic of this topology"},
		{"nothing chosen", url.Values{"csrf": {csrf}}, nil, 200, "choose the records"},
		{"replayed", url.Values{"r": {"shop.dlq/0/7", "shop.dlq/1/3"}, "csrf": {csrf}}, map[string]string{"Origin": env.srv.URL}, 200, "orders/1/99"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, cl, u, tc.form, tc.header)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("POST = %d %.300q, want %d with %q", code, body, tc.code, tc.want)
			}
		})
	}
	if got := len(env.dlq.replayed); got != 2 {
		t.Fatalf("replayed %d records, want 2 (only the accepted POST)", got)
	}
	if env.dlq.replayed[0] != (dlq.Ref{Topic: "shop.dlq", Partition: 0, Offset: 7}) || !strings.HasPrefix(env.dlq.audit.By, "console ") {
		t.Errorf("replayed %v by %q", env.dlq.replayed, env.dlq.audit.By)
	}
	// A GET cannot replay.
	if code, _ := get(t, env.srv, "/dlq/replay?r=shop.dlq/0/7"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /dlq/replay = %d, want 405", code)
	}
}

func TestConsoleStores(t *testing.T) {
	env := newConsole(t, "")
	_, body := get(t, env.srv, "/stores")
	mustContain(t, "/stores", body, `<option selected>revenue</option>`)
	_, body = get(t, env.srv, "/stores?store=revenue&key=c-1")
	mustContain(t, "key", body, "<code>c-1</code>", "&#34;sum&#34;: 30")
	_, body = get(t, env.srv, "/stores?store=revenue&prefix=c-&limit=10")
	mustContain(t, "prefix", body, "<code>c-1</code>", "<code>c-2</code>")
	_, body = get(t, env.srv, "/stores?store=revenue&key=nope")
	mustContain(t, "missing key", body, `no key &#34;nope&#34; in store &#34;revenue&#34; (HTTP 404)`)
	_, body = get(t, env.srv, "/stores?store=other&key=x")
	mustContain(t, "unknown store", body, `no store &#34;other&#34;`)
}

func TestConsoleConfig(t *testing.T) {
	env := newConsole(t, "")
	_, body := get(t, env.srv, "/config")
	for _, want := range []string{
		`<code>kafka.brokers</code></td><td><code>\[localhost:9092\]</code></td><td>\S*veltrix.yaml:5:12</td>`,
		`<code>processing.commit_interval</code></td><td><code>250ms</code></td><td>env VELTRIX_PROCESSING_COMMIT_INTERVAL</td>`,
		`<tr class="default"><td><code>processing.guarantee</code></td><td><code>exactly_once</code></td><td>default</td>`,
		`<code>kafka.sasl.password</code></td><td><i>\(redacted\)</i>`,
		`<code>http.auth_token</code></td><td><i>\(not set\)</i>`,
		`<td>rule</td><td>revenue</td><td>\S*veltrix.yaml:15:5</td>`,
	} {
		if !regexp.MustCompile(want).MatchString(body) {
			t.Errorf("/config: no match for %s", want)
		}
	}
	if strings.Contains(body, "hunter2") {
		t.Error("/config shows the SASL password")
	}
	csrf := csrfOf(t, body)
	cl := env.srv.Client()
	for _, tc := range []struct {
		name, yaml string
		want       []string
		not        string
	}{
		{"valid rule", "name: big-orders\nfrom: orders\nsteps:\n  - filter: event.total > 5000\n  - to: orders.big\n",
			[]string{"valid against the running configuration"}, "problem"},
		{"type error", "name: new\nfrom: orders\nsteps:\n  - filter: event.total + \"x\"\n  - to: out\n",
			[]string{"1 problem(s)", "pasted:4:", `<a href="/errors#vx3002">VX3002</a>`}, ""},
		{"unknown template", "rules:\n  - name: t\n    from: orders\n    template: nope\n",
			[]string{"1 problem(s)", "pasted:4:", "VX2001", `unknown template &#34;nope&#34;`}, ""},
		{"problems of the loader and of the steps, each once", "rules:\n  - name: t\n    from: orders\n    on_error: maybe\n    steps:\n      - filtr: event.total > 1\n      - use: nope\n",
			[]string{"3 problem(s)", "VX1", "VX3003", "VX2001"}, ""},
		{"escaped", "name: x\nfrom: orders\nsteps:\n  - <script>: 1\n",
			[]string{"&lt;script&gt;"}, "<script>:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, cl, env.srv.URL+"/config/validate", url.Values{"yaml": {tc.yaml}, "csrf": {csrf}}, nil)
			if code != 200 {
				t.Fatalf("POST = %d", code)
			}
			mustContain(t, tc.name, body, tc.want...)
			if tc.not != "" && strings.Contains(body, tc.not) {
				t.Errorf("%s: has %q", tc.name, tc.not)
			}
		})
	}
}

func TestConsoleErrors(t *testing.T) {
	env := newConsole(t, "")
	_, body := get(t, env.srv, "/errors")
	mustContain(t, "/errors", body, `<section id="vx5001" class="errdoc"><h2>VX5001: Malformed event</h2>`, `<a href="#vx3002">VX3002</a>`)
}

func TestConsoleToken(t *testing.T) {
	env := newConsole(t, "s3cret")
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/", "/partitions", "/dlq", "/stores?store=revenue&key=c-1", "/config", "/errors"} {
		resp, err := noFollow.Get(env.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=") {
			t.Errorf("GET %s without the token = %d %s, want a redirect to /login", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if code, _ := post(t, noFollow, env.srv.URL+"/dlq/replay", url.Values{"r": {"shop.dlq/0/7"}}, nil); code != http.StatusUnauthorized {
		t.Errorf("replay without the token = %d, want 401", code)
	}
	if code, body := post(t, cl, env.srv.URL+"/login", url.Values{"token": {"wrong"}, "next": {"/dlq"}}, nil); code != 401 || !strings.Contains(body, "wrong token") {
		t.Errorf("login with a wrong token = %d", code)
	}
	// An off-site next is not followed.
	resp, err := noFollow.PostForm(env.srv.URL+"/login", url.Values{"token": {"s3cret"}, "next": {"//evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("login next //evil.example/ redirected to %q, want /", loc)
	}
	ck := resp.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || strings.Contains(ck[0].Value, "s3cret") {
		t.Fatalf("session cookie %+v: want one HttpOnly SameSite=Strict cookie not holding the token", ck)
	}
	code, body := post(t, cl, env.srv.URL+"/login", url.Values{"token": {"s3cret"}, "next": {"/dlq"}}, nil)
	if code != 200 || !strings.Contains(body, "VX5001") {
		t.Fatalf("after login, /dlq = %d", code)
	}
	code, body = post(t, cl, env.srv.URL+"/dlq/replay", url.Values{"r": {"shop.dlq/0/7"}, "csrf": {csrfOf(t, body)}}, nil)
	if code != 200 || !strings.Contains(body, "orders/1/99") {
		t.Errorf("replay with the session = %d %.200q", code, body)
	}
	// The store page goes through /v1 with the token.
	resp, err = cl.Get(env.srv.URL + "/stores?store=revenue&key=c-1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	mustContain(t, "stores with the session", string(b), "&#34;sum&#34;: 30")
	// /v1 still needs the bearer token, not the cookie.
	if resp, err := cl.Get(env.srv.URL + "/v1/rules"); err != nil || resp.StatusCode != 401 {
		t.Errorf("/v1/rules with the console cookie: %v %v, want 401", resp.StatusCode, err)
	}
}
