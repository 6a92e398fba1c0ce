package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/group"
	"github.com/veltrix/veltrix/internal/kafkaconn"
	"github.com/veltrix/veltrix/internal/state"
	"github.com/veltrix/veltrix/processors"
)

// ErrNotRunning is returned by queries before the engine has started (or
// after it stopped).
var ErrNotRunning = errors.New("engine not running")

// HasStore reports whether the topology has a store of that name.
func (e *Engine) HasStore(name string) bool {
	return slices.Contains(e.topo.StoreNames(), name)
}

// Lookup reads the committed value of key in store. When another instance
// owns the key's task, it returns that instance's advertised HTTP address
// as owner instead (found is false).
func (e *Engine) Lookup(ctx context.Context, store string, key []byte) (value []byte, found bool, owner string, err error) {
	ts := e.tasks.Load()
	n := e.ntasks.Load()
	if ts == nil || ts.db == nil || n == 0 {
		return nil, false, "", ErrNotRunning
	}
	if processors.IsInternalKey(key) {
		return nil, false, "", nil
	}
	p := state.PartitionFor(key, n)
	if !ts.Owns(p) {
		owner, err := e.ownerOf(ctx, p)
		return nil, false, owner, err
	}
	err = ts.read(func(db *state.DB) error {
		value, found, err = db.Get(store, p, key)
		return err
	})
	return value, found, "", err
}

// Scan returns up to limit committed entries of store whose keys start with
// prefix, from the tasks this instance owns, in key order. The limit is
// pushed into each partition's scan and the sorted results are merged
// keeping at most limit, so memory is bounded by limit whatever the store
// holds; limit must be positive. ctx is checked between partitions.
func (e *Engine) Scan(ctx context.Context, store string, prefix []byte, limit int) ([]state.KV, error) {
	ts := e.tasks.Load()
	if ts == nil || ts.db == nil {
		return nil, ErrNotRunning
	}
	if limit <= 0 {
		return nil, fmt.Errorf("scan %s: limit %d: want a positive limit", store, limit)
	}
	if processors.IsInternalKey(prefix) {
		return nil, nil // only internal keys start with 0x00
	}
	var from []byte
	if len(prefix) == 0 {
		from = []byte{0x01} // skip the internal keys, which sort first
	}
	var out []state.KV
	for p := range e.ntasks.Load() {
		if !ts.Owns(p) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("scan %s: %w", store, err)
		}
		err := ts.read(func(db *state.DB) error {
			kvs, err := db.ScanFrom(store, p, prefix, from, limit)
			out = mergeKVs(out, kvs, limit)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mergeKVs merges two key-sorted lists, keeping the first limit entries.
func mergeKVs(a, b []state.KV, limit int) []state.KV {
	out := make([]state.KV, 0, min(len(a)+len(b), limit))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && bytes.Compare(a[0].Key, b[0].Key) <= 0) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

// countKeys sets the state_store_keys gauge of every store from the tasks
// this instance owns.
func (e *Engine) countKeys() {
	ts := e.tasks.Load()
	if ts == nil {
		return
	}
	for _, store := range e.topo.StoreNames() {
		var total int64
		for p := range e.ntasks.Load() {
			if !ts.Owns(p) {
				continue
			}
			_ = ts.read(func(db *state.DB) error {
				n, err := db.Count(store, p, processors.IsInternalKey)
				total += n
				return err
			})
		}
		e.metrics.StateStoreKeys.WithLabelValues(store).Set(float64(total))
	}
}

// Members returns the advertised HTTP addresses of every instance of the
// group (this one included).
func (e *Engine) Members(ctx context.Context) ([]string, error) {
	o, err := e.owners()
	if err != nil {
		return nil, err
	}
	return o.Members(ctx)
}

// Advertised is this instance's advertised HTTP address.
func (e *Engine) Advertised() string { return e.advertise }

func (e *Engine) ownerOf(ctx context.Context, p int32) (string, error) {
	o, err := e.owners()
	if err != nil {
		return "", err
	}
	var lastErr error
	for _, topic := range e.topo.InputTopics() {
		addr, err := o.Owner(ctx, topic, p)
		if err == nil && addr != "" {
			return addr, nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("owner of task %d: %w", p, lastErr)
}

// owners returns the group owners lookup, creating its admin client on first
// use.
func (e *Engine) owners() (*group.Owners, error) {
	e.ownersMu.Lock()
	defer e.ownersMu.Unlock()
	if e.ownersLookup != nil {
		return e.ownersLookup, nil
	}
	opts, err := kafkaconn.Options(e.cfg.Kafka)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, e.extra...)...)
	if err != nil {
		return nil, err
	}
	e.ownersClient = cl
	e.ownersLookup = group.NewOwners(kadm.NewClient(cl), e.cfg.App.ID, 2*time.Second)
	return e.ownersLookup, nil
}

// closeOwners releases the owners lookup's client.
func (e *Engine) closeOwners() {
	e.ownersMu.Lock()
	defer e.ownersMu.Unlock()
	if e.ownersClient != nil {
		e.ownersClient.Close()
		e.ownersClient, e.ownersLookup = nil, nil
	}
}
