package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/group"
	"github.com/veltrix/veltrix/pkg/kafkaconn"
	"github.com/veltrix/veltrix/pkg/state"
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
// prefix, from the tasks this instance owns, in key order.
func (e *Engine) Scan(store string, prefix []byte, limit int) ([]state.KV, error) {
	ts := e.tasks.Load()
	if ts == nil || ts.db == nil {
		return nil, ErrNotRunning
	}
	var out []state.KV
	for p := range e.ntasks.Load() {
		if !ts.Owns(p) {
			continue
		}
		err := ts.read(func(db *state.DB) error {
			kvs, err := db.Scan(store, p, prefix, 0)
			for _, kv := range kvs {
				if !processors.IsInternalKey(kv.Key) {
					out = append(out, kv)
				}
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b state.KV) int { return slices.Compare(a.Key, b.Key) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
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
