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

	"github.com/veltrix/veltrix/pkg/state"
)

// Stores is the query side of the state stores (the engine implements it).
type Stores interface {
	HasStore(name string) bool
	// Lookup returns the committed value of key, or the HTTP address of
	// the instance that owns it.
	Lookup(ctx context.Context, store string, key []byte) (value []byte, found bool, owner string, err error)
	// Scan returns this instance's entries with the prefix, in key order.
	Scan(store string, prefix []byte, limit int) ([]state.KV, error)
	// Members are the advertised addresses of every instance of the group.
	Members(ctx context.Context) ([]string, error)
	// Advertised is this instance's own address.
	Advertised() string
}

// defaultLimit and maxLimit bound prefix queries.
const (
	defaultLimit = 100
	maxLimit     = 10_000
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
	stores Stores
	client *http.Client
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
	value, found, owner, err := h.stores.Lookup(r.Context(), store, []byte(key))
	switch {
	case err != nil:
		jsonError(w, http.StatusServiceUnavailable, "%v", err)
	case owner != "" && r.URL.Query().Get("local") != "":
		jsonError(w, http.StatusMisdirectedRequest, "key %q is owned by %s", key, owner)
	case owner != "":
		h.forward(w, r, "http://"+owner+"/v1/stores/"+url.PathEscape(store)+"/"+url.PathEscape(key)+"?local=1")
	case !found:
		jsonError(w, http.StatusNotFound, "no key %q in store %q", key, store)
	default:
		writeJSON(w, toEntry([]byte(key), value))
	}
}

func (h *storeHandler) forward(w http.ResponseWriter, r *http.Request, target string) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
	if err != nil {
		jsonError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	resp, err := h.client.Do(req)
	if err != nil {
		jsonError(w, http.StatusBadGateway, "owner %s: %v", req.URL.Host, err)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.Header().Set("X-Veltrix-Served-By", req.URL.Host)
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
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
	kvs, err := h.stores.Scan(store, []byte(prefix), limit)
	if err != nil {
		jsonError(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	items := make([]entry, 0, len(kvs))
	for _, kv := range kvs {
		items = append(items, toEntry(kv.Key, kv.Value))
	}
	var failed []string
	if q.Get("local") == "" {
		more, f := h.fanOut(r.Context(), store, prefix, limit)
		items, failed = append(items, more...), f
		slices.SortFunc(items, func(a, b entry) int { return strings.Compare(a.Key, b.Key) })
		if len(items) > limit {
			items = items[:limit]
		}
	}
	writeJSON(w, map[string]any{"store": store, "items": items, "unreachable": failed})
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
				failed = append(failed, m+": "+err.Error())
				return
			}
			out = append(out, items...)
		}()
	}
	wg.Wait()
	return out, failed
}

func (h *storeHandler) remoteScan(ctx context.Context, addr, store, prefix string, limit int) ([]entry, error) {
	u := "http://" + addr + "/v1/stores/" + url.PathEscape(store) + "?local=1&limit=" + strconv.Itoa(limit) + "&prefix=" + url.QueryEscape(prefix)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	var body struct {
		Items []entry `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	return body.Items, nil
}

func newStoreHandler(s Stores) *storeHandler {
	return &storeHandler{stores: s, client: &http.Client{Timeout: 5 * time.Second}}
}
