package httpapi

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/dlq"
	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// The console is the operator's view of an instance at /: the topology with
// live rule rates, the tasks, the DLQ (with replay), store look-ups and the
// effective configuration (with a validate box). Pages are rendered on the
// server with html/template (everything escaped); the assets are embedded,
// so it works offline. When http.auth_token is set every page asks for the
// token once (a login form that sets an HttpOnly, SameSite=Strict cookie),
// and the POST actions (replay, validate) carry a CSRF token and must come
// from the console's own origin.

//go:embed console
var consoleFS embed.FS

// Tasks is what the partitions page shows (the engine implements it).
type Tasks interface {
	Tasks() []engine.TaskView
	TaskOwner(ctx context.Context, p int32) (string, error)
}

// DLQ reads and replays dead-letter records (internal/dlq's Client).
type DLQ interface {
	Latest(ctx context.Context, topics []string, perPartition int) ([]dlq.Record, bool, error)
	Replay(ctx context.Context, refs []dlq.Ref, allowed func(topic string) bool, a dlq.Audit) ([]dlq.Replayed, error)
}

// WithConfig gives the console the running configuration: its settings
// page and the validate box (default: those pages say it is not known).
func WithConfig(cfg *config.Config) Option { return func(o *options) { o.cfg = cfg } }

// WithDLQ gives the console its DLQ reader (default: none, the DLQ page
// says so).
func WithDLQ(d DLQ) Option { return func(o *options) { o.dlq = d } }

// WithConfigVersion reports the version of the configuration running, shown
// on every page and in /v1/status (default: none shown).
func WithConfigVersion(f func() string) Option { return func(o *options) { o.version = f } }

// WithLogger sets the logger of the console's actions (default
// slog.Default()); a replay is logged with its audit.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Console bounds.
const (
	dlqDefaultPerPartition = 20
	dlqReadTimeout         = 5 * time.Second
	dlqMaxReplay           = 100 // records one replay may send
	valueShown             = 160 // bytes of a DLQ value shown in the list
	maxPasted              = 256 << 10
	ownerTimeout           = 2 * time.Second
)

type console struct {
	o       options
	gather  prometheus.Gatherer
	src     Source
	api     http.Handler // the /v1 API, for store look-ups
	key     []byte       // signs the session cookie and CSRF tokens
	pages   map[string]*template.Template
	rates   *rates
	errDocs []errorDoc
}

func newConsole(o options, g prometheus.Gatherer, src Source, api http.Handler) *console {
	c := &console{o: o, gather: g, src: src, api: api, key: make([]byte, 32), rates: newRates(g, time.Now)}
	if _, err := rand.Read(c.key); err != nil {
		panic(fmt.Sprintf("httpapi: console key: %v", err)) // crypto/rand never fails on supported systems
	}
	if c.o.log == nil {
		c.o.log = slog.Default()
	}
	c.pages = parsePages()
	c.errDocs = parseErrorDocs()
	return c
}

var pageFuncs = template.FuncMap{
	"rate": func(v float64) string {
		switch {
		case v == 0:
			return "0"
		case v < 10:
			return strconv.FormatFloat(v, 'f', 2, 64)
		}
		return strconv.FormatFloat(v, 'f', 0, 64)
	},
	"num": func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) },
	"sub": func(a, b int64) int64 { return a - b },
	// lineY is the baseline of a graph node's line i, below its title.
	"lineY": func(i int) int { return 36 + i*lineH },
	"lower": strings.ToLower,
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return time.Since(t).Round(time.Second).String() + " ago"
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05.000Z")
	},
}

func parsePages() map[string]*template.Template {
	layout := template.Must(template.New("layout.html").Funcs(pageFuncs).ParseFS(consoleFS, "console/layout.html"))
	pages := map[string]*template.Template{}
	names, err := fs.Glob(consoleFS, "console/page_*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "console/page_"), ".html")
		pages[name] = template.Must(template.Must(layout.Clone()).ParseFS(consoleFS, n))
	}
	return pages
}

// register adds the console's routes to mux.
func (c *console) register(mux *http.ServeMux) {
	assets, _ := fs.Sub(consoleFS, "console/assets")
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /{$}", c.page("topology", c.topology))
	mux.HandleFunc("GET /partitions", c.page("partitions", c.partitions))
	mux.HandleFunc("GET /dlq", c.page("dlq", c.dlqList))
	mux.HandleFunc("POST /dlq/replay", c.action("dlq", c.dlqReplay))
	mux.HandleFunc("GET /stores", c.page("stores", c.stores))
	mux.HandleFunc("GET /config", c.page("config", c.config))
	mux.HandleFunc("POST /config/validate", c.action("config", c.validate))
	mux.HandleFunc("GET /errors", c.page("errors", c.errors))
	mux.HandleFunc("GET /login", c.loginForm)
	mux.HandleFunc("POST /login", c.login)
}

// pageData is what every page's layout shows.
type pageData struct {
	Page    string
	App     string
	Ready   bool
	Version string
	CSRF    string
	Auth    bool // a token guards the console
	Refresh int  // seconds between reloads (0: none)
	Now     time.Time
	Body    any
	Error   string
}

// page serves a console page: fill returns the page's body data, or an
// error shown on the page.
func (c *console) page(name string, fill func(r *http.Request, d *pageData) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.authed(r) {
			c.toLogin(w, r)
			return
		}
		d := c.data(name)
		if err := fill(r, &d); err != nil {
			d.Error = err.Error()
		}
		c.render(w, name, http.StatusOK, d)
	}
}

// action serves a POST of the console: the token (when set) and the CSRF
// checks first.
func (c *console) action(name string, fill func(r *http.Request, d *pageData) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.authed(r) {
			securityHeaders(w)
			http.Error(w, "the console needs the API token (http.auth_token): log in at /login", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxPasted+64<<10)
		if err := r.ParseForm(); err != nil {
			securityHeaders(w)
			http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
			return
		}
		if !c.sameOrigin(r) || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(c.csrf())) {
			securityHeaders(w)
			http.Error(w, "refused: the form did not come from this console (CSRF check); reload the page and try again", http.StatusForbidden)
			return
		}
		d := c.data(name)
		if err := fill(r, &d); err != nil {
			d.Error = err.Error()
		}
		c.render(w, name, http.StatusOK, d)
	}
}

func (c *console) data(name string) pageData {
	d := pageData{Page: name, App: c.o.rules().AppID, Ready: c.src.Ready(), CSRF: c.csrf(), Auth: c.o.token != "", Now: time.Now()}
	if c.o.version != nil {
		d.Version = c.o.version()
	}
	return d
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (c *console) render(w http.ResponseWriter, name string, status int, d pageData) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout.html", d); err != nil {
		c.o.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "console: render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// Authentication: a session cookie holding an HMAC of the token under the
// process's random key (so the cookie is not the token, and a restart
// logs everyone out).

const sessionCookie = "veltrix_console"

func (c *console) sign(what string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(what))
	return hex.EncodeToString(m.Sum(nil))
}

func (c *console) session() string { return c.sign("session\x00" + c.o.token) }
func (c *console) csrf() string    { return c.sign("csrf\x00" + c.o.token) }

func (c *console) authed(r *http.Request) bool {
	if c.o.token == "" {
		return true
	}
	if got := r.Header.Get("Authorization"); got != "" {
		return subtle.ConstantTimeCompare([]byte(got), []byte("Bearer "+c.o.token)) == 1
	}
	ck, err := r.Cookie(sessionCookie)
	return err == nil && hmac.Equal([]byte(ck.Value), []byte(c.session()))
}

// sameOrigin rejects a cross-site POST: by the browser's Sec-Fetch-Site,
// else by the Origin header, when the browser sends them.
func (c *console) sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

// localPath returns next when it is a path of this server, else "/".
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/"
	}
	return next
}

func (c *console) toLogin(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

func (c *console) loginForm(w http.ResponseWriter, r *http.Request) {
	d := c.data("login")
	d.Body = map[string]string{"Next": localPath(r.URL.Query().Get("next"))}
	c.render(w, "login", http.StatusOK, d)
}

func (c *console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil || !c.sameOrigin(r) {
		securityHeaders(w)
		http.Error(w, "bad login form", http.StatusBadRequest)
		return
	}
	next := localPath(r.PostForm.Get("next"))
	if c.o.token == "" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(c.o.token)) != 1 {
		d := c.data("login")
		d.Body = map[string]string{"Next": next}
		d.Error = "wrong token"
		c.render(w, "login", http.StatusUnauthorized, d)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: c.session(), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	securityHeaders(w)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// ---- topology

type topologyBody struct {
	Graph  graph
	Rules  []ruleRow
	Stores []storeRow
	Window time.Duration
}

type ruleRow struct {
	Name, From, Outputs, OnError, DLQ string
	Rates                             outcomeRates
	Totals                            outcomeRates
}

type storeRow struct {
	Name, Rule, Kind, Changelog string
	Keys, Restoring             float64
}

func (c *console) topology(r *http.Request, d *pageData) error {
	d.Refresh = refreshOf(r, 5)
	snap, window := c.rates.current()
	body := topologyBody{Window: window.Round(time.Second)}
	for _, ru := range c.o.rules().Description().Rules {
		body.Rules = append(body.Rules, ruleRow{Name: ru.Name, From: strings.Join(ru.From, ", "), Outputs: strings.Join(ru.Outputs, ", "),
			OnError: ru.OnError, DLQ: ru.DLQ, Rates: snap.rates[ru.Name], Totals: snap.totals[ru.Name]})
	}
	for _, s := range c.o.rules().Stores() {
		body.Stores = append(body.Stores, storeRow{Name: s.Name, Rule: s.Rule, Kind: s.Kind, Changelog: s.Changelog,
			Keys: snap.storeKeys[s.Name], Restoring: snap.restoring[s.Name]})
	}
	body.Graph = layoutGraph(c.o.rules(), snap)
	d.Body = body
	return nil
}

// refreshOf is the page's reload period: ?refresh=N seconds (0 stops it).
func refreshOf(r *http.Request, def int) int {
	if v := r.URL.Query().Get("refresh"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 && n <= 3600 {
			return n
		}
	}
	return def
}

// ---- partitions

type partitionsBody struct {
	Known bool
	Self  string
	Tasks []taskRow
}

type taskRow struct {
	Partition  int32
	Owner      string // advertised address
	OwnerErr   string
	Owned      bool
	Lag        []topicLag
	StreamTime time.Time
	Restores   []restoreRow
}

type topicLag struct {
	Topic string
	Lag   float64
}

type restoreRow struct {
	Store            string
	Total, Remaining int64
	Done             bool
	ETA              string
}

func (c *console) partitions(r *http.Request, d *pageData) error {
	d.Refresh = refreshOf(r, 5)
	body := partitionsBody{}
	d.Body = &body
	ts, ok := c.src.(Tasks)
	if !ok {
		return nil
	}
	body.Known = true
	if st, ok := c.src.(Stores); ok {
		body.Self = st.Advertised()
	}
	lags := c.rates.lags()
	ctx, cancel := context.WithTimeout(r.Context(), ownerTimeout)
	defer cancel()
	for _, t := range ts.Tasks() {
		row := taskRow{Partition: t.Partition, Owned: t.Owned, StreamTime: t.StreamTime}
		if t.Owned {
			row.Owner = body.Self
			for _, topic := range c.o.rules().InputTopics() {
				if v, ok := lags[lagKey{topic, t.Partition}]; ok {
					row.Lag = append(row.Lag, topicLag{Topic: topic, Lag: v})
				}
			}
		} else if ctx.Err() == nil {
			owner, err := ts.TaskOwner(ctx, t.Partition)
			if err != nil {
				row.OwnerErr = err.Error()
			}
			row.Owner = owner
		}
		for _, rs := range t.Restores {
			rr := restoreRow{Store: rs.Store, Total: rs.Total, Remaining: rs.Remaining, Done: rs.Remaining == 0}
			if eta, ok := rs.ETA(); ok {
				rr.ETA = eta.Round(time.Second).String()
			}
			row.Restores = append(row.Restores, rr)
		}
		body.Tasks = append(body.Tasks, row)
	}
	return nil
}

// ---- DLQ

type dlqBody struct {
	Enabled      bool
	Topics       []string
	Code, Rule   string
	PerPartition int
	Codes, Rules []string
	Records      []dlqRow
	Shown, Read  int
	Partial      bool
	Replayed     []replayRow
}

type dlqRow struct {
	Ref, Time, Code, Message, Rule, Source, Key, Value string
	Shortened, Truncated                               bool
}

type replayRow struct {
	Ref, To, Err string
}

func (c *console) dlqTopics() []string {
	var out []string
	for _, r := range c.o.rules().Rules {
		if r.DLQ != "" {
			out = append(out, r.DLQ)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (c *console) dlqList(r *http.Request, d *pageData) error {
	q := r.URL.Query()
	body := &dlqBody{Topics: c.dlqTopics(), Code: q.Get("code"), Rule: q.Get("rule"), PerPartition: dlqDefaultPerPartition, Enabled: c.o.dlq != nil}
	d.Body = body
	if n, err := strconv.Atoi(q.Get("n")); err == nil && n > 0 {
		body.PerPartition = min(n, dlq.MaxPerPartition)
	}
	for _, ru := range c.o.rules().Rules {
		if ru.DLQ != "" {
			body.Rules = append(body.Rules, ru.Name)
		}
	}
	if c.o.dlq == nil || len(body.Topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), dlqReadTimeout)
	defer cancel()
	recs, partial, err := c.o.dlq.Latest(ctx, body.Topics, body.PerPartition)
	if err != nil {
		return err
	}
	body.Partial, body.Read = partial, len(recs)
	codes := map[string]bool{}
	for _, rec := range recs {
		codes[rec.Code] = true
		if (body.Code != "" && rec.Code != body.Code) || (body.Rule != "" && rec.Rule != body.Rule) {
			continue
		}
		body.Records = append(body.Records, toDLQRow(rec))
	}
	for code := range codes {
		if code != "" {
			body.Codes = append(body.Codes, code)
		}
	}
	slices.Sort(body.Codes)
	body.Shown = len(body.Records)
	return nil
}

func toDLQRow(rec dlq.Record) dlqRow {
	row := dlqRow{Ref: rec.Ref().String(), Time: rec.Timestamp.UTC().Format("2006-01-02 15:04:05.000Z"), Code: rec.Code,
		Message: rec.Message, Rule: rec.Rule, Key: shorten(rec.Key, 64), Truncated: rec.Truncated}
	if rec.SourceTopic != "" {
		row.Source = fmt.Sprintf("%s/%d/%d", rec.SourceTopic, rec.SourcePartition, rec.SourceOffset)
	}
	row.Value = shorten(rec.Value, valueShown)
	row.Shortened = len(rec.Value) > valueShown
	return row
}

// shorten returns up to n bytes of b as text (invalid UTF-8 shown as
// U+FFFD), with "…" when cut.
func shorten(b []byte, n int) string {
	s := strings.ToValidUTF8(string(b[:min(len(b), n)]), "\uFFFD")
	if len(b) > n {
		s += "…"
	}
	return s
}

func (c *console) dlqReplay(r *http.Request, d *pageData) error {
	body := &dlqBody{Topics: c.dlqTopics(), PerPartition: dlqDefaultPerPartition, Enabled: c.o.dlq != nil}
	d.Body = body
	if c.o.dlq == nil {
		return fmt.Errorf("no DLQ reader")
	}
	picked := r.PostForm["r"]
	if len(picked) == 0 {
		return fmt.Errorf("choose the records to replay")
	}
	if len(picked) > dlqMaxReplay {
		return fmt.Errorf("%d records chosen: replay at most %d at once", len(picked), dlqMaxReplay)
	}
	var refs []dlq.Ref
	for _, p := range picked {
		ref, err := dlq.ParseRef(p)
		if err != nil {
			return err
		}
		if !slices.Contains(body.Topics, ref.Topic) {
			return fmt.Errorf("%s: %q is not a DLQ topic of this topology", p, ref.Topic)
		}
		refs = append(refs, ref)
	}
	inputs := c.o.rules().InputTopics()
	audit := dlq.Audit{By: "console " + r.RemoteAddr, At: time.Now()}
	ctx, cancel := context.WithTimeout(r.Context(), 2*dlqReadTimeout)
	defer cancel()
	res, err := c.o.dlq.Replay(ctx, refs, func(t string) bool { return slices.Contains(inputs, t) }, audit)
	if err != nil {
		return err
	}
	for _, x := range res {
		row := replayRow{Ref: x.Ref.String(), To: x.To}
		if x.Err != nil {
			row.Err = x.Err.Error()
		}
		c.o.log.Info("dlq record replayed", "dlq", row.Ref, "to", row.To, "err", row.Err, "code", x.Record.Code, "rule", x.Record.Rule, "by", audit.By)
		body.Replayed = append(body.Replayed, row)
	}
	return nil
}

// ---- stores

type storesBody struct {
	Stores      []string
	Store       string
	Key, Prefix string
	Limit       int
	Asked       bool
	Status      int
	Items       []storeItem
	Truncated   bool
	Unreachable []string
}

type storeItem struct{ Key, Value string }

// stores looks keys up through the /v1/stores API itself, in process: the
// same bounds, owner forwarding and fan-out as for any client.
func (c *console) stores(r *http.Request, d *pageData) error {
	q := r.URL.Query()
	body := &storesBody{Stores: c.o.rules().StoreNames(), Store: q.Get("store"), Key: q.Get("key"), Prefix: q.Get("prefix"), Limit: 50}
	d.Body = body
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		body.Limit = min(n, maxLimit)
	}
	if body.Store == "" {
		if len(body.Stores) > 0 {
			body.Store = body.Stores[0]
		}
		return nil
	}
	if !slices.Contains(body.Stores, body.Store) {
		return fmt.Errorf("no store %q", body.Store)
	}
	var path string
	switch {
	case q.Has("key"):
		if body.Key == "" {
			return fmt.Errorf("write a key, or look up a prefix")
		}
		path = "/v1/stores/" + url.PathEscape(body.Store) + "/" + url.PathEscape(body.Key)
	case q.Has("prefix"):
		path = "/v1/stores/" + url.PathEscape(body.Store) + "?" + url.Values{"prefix": {body.Prefix}, "limit": {strconv.Itoa(body.Limit)}}.Encode()
	default:
		return nil
	}
	body.Asked = true
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if c.o.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.o.token)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	c.api.ServeHTTP(rec, req)
	body.Status = rec.status
	var ans struct {
		Error       string            `json:"error"`
		Key         string            `json:"key"`
		Value       json.RawMessage   `json:"value"`
		Items       []json.RawMessage `json:"items"`
		Truncated   bool              `json:"truncated"`
		Unreachable []string          `json:"unreachable"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &ans); err != nil {
		return fmt.Errorf("query answered %d: %s", rec.status, shorten(rec.body.Bytes(), 200))
	}
	if ans.Error != "" {
		return fmt.Errorf("%s (HTTP %d)", ans.Error, rec.status)
	}
	if q.Has("key") {
		body.Items = []storeItem{{Key: ans.Key, Value: pretty(ans.Value)}}
		return nil
	}
	for _, it := range ans.Items {
		var e struct {
			Key   string          `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if json.Unmarshal(it, &e) == nil {
			body.Items = append(body.Items, storeItem{Key: e.Key, Value: pretty(e.Value)})
		}
	}
	body.Truncated, body.Unreachable = ans.Truncated, ans.Unreachable
	return nil
}

func pretty(v json.RawMessage) string {
	var b bytes.Buffer
	if json.Indent(&b, v, "", "  ") == nil {
		return b.String()
	}
	return string(v)
}

// recorder is an in-memory http.ResponseWriter.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.status = code }

// ---- configuration

type configBody struct {
	CSRF     string
	Known    bool
	File     string
	Settings []settingRow
	Rules    []originRow
	Pasted   string
	Checked  bool
	Problems []problemRow
	Summary  string
}

type settingRow struct {
	Key, Value, Origin, Env string
	Default, Secret         bool
}

type originRow struct{ Kind, Name, Origin string }

type problemRow struct {
	Code, Place, Path, Message, Hint string
	Warning                          bool
}

func (c *console) config(_ *http.Request, d *pageData) error {
	body := &configBody{CSRF: d.CSRF}
	d.Body = body
	cfg := c.o.cfg
	if cfg == nil {
		return nil
	}
	body.Known, body.File = true, cfg.File
	for _, s := range config.Settings() {
		row := settingRow{Key: s.Key, Env: s.Env, Secret: s.Secret()}
		v := cfg.Value(s)
		switch {
		case row.Secret && !isZero(v):
			row.Value = "(redacted)"
		case row.Secret:
			row.Value = "(not set)"
		default:
			row.Value = formatValue(v)
		}
		if at, ok := cfg.Origin(s.Key); ok {
			row.Origin = place(at)
		} else {
			row.Default, row.Origin = true, "default"
		}
		body.Settings = append(body.Settings, row)
	}
	for _, t := range cfg.Templates {
		body.Rules = append(body.Rules, originRow{Kind: "template", Name: t.Name, Origin: place(t.Pos)})
	}
	for _, r := range cfg.Rules {
		body.Rules = append(body.Rules, originRow{Kind: "rule", Name: r.Name, Origin: place(r.Pos)})
	}
	return nil
}

func isZero(v any) bool {
	s, ok := v.(string)
	return ok && s == ""
}

func formatValue(v any) string {
	switch v := v.(type) {
	case []string:
		return "[" + strings.Join(v, ", ") + "]"
	case time.Duration:
		return v.String()
	}
	return fmt.Sprint(v)
}

// place formats a position as file:line:col, or the environment variable.
func place(at diag.Pos) string {
	if at.Line == 0 {
		return at.File
	}
	if at.Column == 0 {
		return fmt.Sprintf("%s:%d", at.File, at.Line)
	}
	return fmt.Sprintf("%s:%d:%d", at.File, at.Line, at.Column)
}

// validate checks a pasted rule or template against the running
// configuration, as veltrix validate would with it added: nothing is
// deployed, nothing is written.
func (c *console) validate(r *http.Request, d *pageData) error {
	if err := c.config(r, d); err != nil {
		return err
	}
	body := d.Body.(*configBody)
	body.Pasted = r.PostForm.Get("yaml")
	if c.o.cfg == nil {
		return fmt.Errorf("the running configuration is not known here")
	}
	if strings.TrimSpace(body.Pasted) == "" {
		return fmt.Errorf("paste a rule (a mapping with name:) or templates: and rules: as in an included file")
	}
	if len(body.Pasted) > maxPasted {
		return fmt.Errorf("pasted text longer than %d bytes", maxPasted)
	}
	body.Checked = true
	problems := checkFragment(c.o.cfg, []byte(body.Pasted))
	for _, e := range problems {
		body.Problems = append(body.Problems, problemRow{Code: string(e.Code), Place: place(diag.Pos{File: e.File, Line: e.Line, Column: e.Column}),
			Path: e.Path, Message: e.Message, Hint: e.Hint, Warning: e.IsWarning()})
	}
	errs := 0
	for _, p := range body.Problems {
		if !p.Warning {
			errs++
		}
	}
	if errs == 0 {
		body.Summary = "valid against the running configuration"
	} else {
		body.Summary = fmt.Sprintf("%d problem(s)", errs)
	}
	return nil
}

// pastedFile names the validate box's text in positions.
const pastedFile = "pasted"

// checkFragment compiles the fragment over cfg (topology.CompileFragment)
// and returns its problems, in order of place.
func checkFragment(cfg *config.Config, data []byte) diag.List {
	_, _, err := topology.CompileFragment(cfg, pastedFile, data)
	problems := diag.AsList(err)
	if err != nil && problems == nil {
		problems = diag.List{diag.Pos{File: pastedFile}.At(diag.Internal, "%v", err)}
	}
	return problems
}
