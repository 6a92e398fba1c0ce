package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/veltrix/veltrix/internal/group"
	"github.com/veltrix/veltrix/internal/state"
)

// Stores is the query side of the state stores (the engine implements it).
type Stores interface {
	HasStore(name string) bool
	// Lookup returns the committed value of key, or the HTTP address of
	// the instance that owns it.
	Lookup(ctx context.Context, store string, key []byte) (value []byte, found bool, owner string, err error)
	// Scan returns up to limit (> 0) of this instance's entries with the
	// prefix, in key order.
	Scan(ctx context.Context, store string, prefix []byte, limit int) ([]state.KV, error)
	// Members are the advertised addresses of every instance of the group.
	Members(ctx context.Context) ([]string, error)
	// Advertised is this instance's own address.
	Advertised() string
}

// Bounds of the interactive queries.
const (
	defaultLimit = 100  // entries of a prefix query without ?limit=
	maxLimit     = 1000 // entries a prefix query may ask for
	// maxResponseBytes bounds the keys and values of one prefix query's
	// answer; entries past it are left out and "truncated" is set.
	maxResponseBytes = 4 << 20
	// maxPeerBody bounds what is read from another instance.
	maxPeerBody = 2*maxResponseBytes + 64<<10
)

// entry is one store entry as the API returns it: the value as JSON when
// it is JSON (aggregate results and table rows are), else as a string.
type entry struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

func toEntry(key, value []byte) entry {
	if json.Valid(value) {
		return entry{Key: string(key), Value: value}
	}
	v, _ := json.Marshal(string(value))
	return entry{Key: string(key), Value: v}
}

type storeHandler struct {
	stores  Stores
	client  *http.Client // to other instances: no redirects, no proxy
	token   string       // sent to other instances when set
	sem     chan struct{}
	timeout time.Duration
}

// begin admits a query under the concurrency bound and its deadline; it
// answers 503 and returns ok false over the bound.
func (h *storeHandler) begin(w http.ResponseWriter, r *http.Request) (ctx context.Context, done func(), ok bool) {
	select {
	case h.sem <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "1")
		jsonError(w, http.StatusServiceUnavailable, "too many queries in flight (at most %d); retry later", cap(h.sem))
		return nil, nil, false
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	return ctx, func() { cancel(); <-h.sem }, true
}

// queryError answers a failed query: 504 past the deadline, else 503.
func queryError(w http.ResponseWriter, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		jsonError(w, http.StatusGatewayTimeout, "query timed out: %v", err)
		return
	}
	jsonError(w, http.StatusServiceUnavailable, "%v", err)
}

// peerRequest is a GET of path on the instance at addr, which must be a
// plain host:port (it comes from the group's member metadata).
func (h *storeHandler) peerRequest(ctx context.Context, addr, pathQuery string) (*http.Request, error) {
	if err := group.CheckAddr(addr); err != nil {
		return nil, fmt.Errorf("instance advertises an unusable address: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+pathQuery, nil)
	if err != nil {
		return nil, err
	}
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	return req, nil
}

// readPeer reads a peer's answer, at most maxPeerBody bytes; a redirect is
// an error (never followed).
func readPeer(resp *http.Response) ([]byte, error) {
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, fmt.Errorf("answered %s: redirects are not followed", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPeerBody {
		return nil, fmt.Errorf("answer longer than %d bytes", maxPeerBody)
	}
	return b, nil
}

func jsonError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": fmt.Sprintf(format, args...)})
}

// get serves GET /v1/stores/{store}/{key}: from this instance when it owns
// the key's task, else from the owner (one hop: ?local=1 stops forwarding).
func (h *storeHandler) get(w http.ResponseWriter, r *http.Request) {
	store, key := r.PathValue("store"), r.PathValue("key")
	if !h.stores.HasStore(store) {
		jsonError(w, http.StatusNotFound, "no store %q", store)
		return
	}
	ctx, done, ok := h.begin(w, r)
	if !ok {
		return
	}
	defer done()
	value, found, owner, err := h.stores.Lookup(ctx, store, []byte(key))
	switch {
	case err != nil:
		queryError(w, err)
	case owner != "" && r.URL.Query().Get("local") != "":
		jsonError(w, http.StatusMisdirectedRequest, "key %q is owned by another instance", key)
	case owner != "":
		h.forward(ctx, w, owner, "/v1/stores/"+url.PathEscape(store)+"/"+url.PathEscape(key)+"?local=1")
	case !found:
		jsonError(w, http.StatusNotFound, "no key %q in store %q", key, store)
	default:
		writeJSON(w, toEntry([]byte(key), value))
	}
}

// forward answers with the owner's answer to pathQuery.
func (h *storeHandler) forward(ctx context.Context, w http.ResponseWriter, owner, pathQuery string) {
	req, err := h.peerRequest(ctx, owner, pathQuery)
	if err != nil {
		jsonError(w, http.StatusBadGateway, "owner: %v", err)
		return
	}
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			jsonError(w, http.StatusGatewayTimeout, "owner %s: %v", owner, err)
			return
		}
		jsonError(w, http.StatusBadGateway, "owner %s: %v", owner, err)
		return
	}
	defer resp.Body.Close()
	body, err := readPeer(resp)
	if err != nil {
		jsonError(w, http.StatusBadGateway, "owner %s: %v", owner, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Veltrix-Served-By", owner)
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// scan serves GET /v1/stores/{store}?prefix=&limit=: this instance's entries
// merged with every other instance's (unless ?local=1), in key order.
func (h *storeHandler) scan(w http.ResponseWriter, r *http.Request) {
	store := r.PathValue("store")
	if !h.stores.HasStore(store) {
		jsonError(w, http.StatusNotFound, "no store %q", store)
		return
	}
	q := r.URL.Query()
	limit := defaultLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxLimit {
			jsonError(w, http.StatusBadRequest, "limit must be 1..%d", maxLimit)
			return
		}
		limit = n
	}
	prefix := q.Get("prefix")
	ctx, done, ok := h.begin(w, r)
	if !ok {
		return
	}
	defer done()
	kvs, err := h.stores.Scan(ctx, store, []byte(prefix), limit)
	if err != nil {
		queryError(w, err)
		return
	}
	items := make([]entry, 0, len(kvs))
	for _, kv := range kvs {
		items = append(items, toEntry(kv.Key, kv.Value))
	}
	var failed []string
	if q.Get("local") == "" {
		more, f := h.fanOut(ctx, store, prefix, limit)
		items, failed = append(items, more...), f
		slices.SortFunc(items, func(a, b entry) int { return strings.Compare(a.Key, b.Key) })
		if len(items) > limit {
			items = items[:limit]
		}
	}
	items, truncated := capBytes(items, maxResponseBytes)
	writeJSON(w, map[string]any{"store": store, "items": items, "unreachable": failed, "truncated": truncated})
}

// capBytes keeps the leading items whose keys and values fit in max bytes.
func capBytes(items []entry, max int) ([]entry, bool) {
	n := 0
	for i, it := range items {
		n += len(it.Key) + len(it.Value) + 32
		if n > max {
			return items[:i], true
		}
	}
	return items, false
}

// fanOut asks every other instance for its entries.
func (h *storeHandler) fanOut(ctx context.Context, store, prefix string, limit int) ([]entry, []string) {
	members, err := h.stores.Members(ctx)
	if err != nil {
		return nil, []string{"group: " + err.Error()}
	}
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		out    []entry
		failed []string
	)
	self := h.stores.Advertised()
	for _, m := range members {
		if m == self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			items, err := h.remoteScan(ctx, m, store, prefix, limit)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, fmt.Sprintf("%q: %v", m, err))
				return
			}
			out = append(out, items...)
		}()
	}
	wg.Wait()
	return out, failed
}

func (h *storeHandler) remoteScan(ctx context.Context, addr, store, prefix string, limit int) ([]entry, error) {
	req, err := h.peerRequest(ctx, addr, "/v1/stores/"+url.PathEscape(store)+"?local=1&limit="+strconv.Itoa(limit)+"&prefix="+url.QueryEscape(prefix))
	if err != nil {
		return nil, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := readPeer(resp)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	var answer struct {
		Items []entry `json:"items"`
	}
	if err := json.Unmarshal(body, &answer); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	if len(answer.Items) > limit {
		answer.Items = answer.Items[:limit]
	}
	return answer.Items, nil
}

// peerClient calls other instances: it follows no redirect, ignores proxy
// settings (peers are reached directly; the token must not go elsewhere) and
// gives up after timeout.
func peerClient(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxResponseHeaderBytes = 64 << 10
	return &http.Client{
		Timeout:       timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func newStoreHandler(s Stores, o options) *storeHandler {
	client := o.peer
	if client == nil {
		client = peerClient(o.queryTimeout)
	}
	return &storeHandler{stores: s, client: client, token: o.token, sem: make(chan struct{}, max(o.maxQueries, 1)), timeout: o.queryTimeout}
}
