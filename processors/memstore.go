package processors

import (
	"bytes"
	"slices"
	"strings"
)

// MemStore is an in-memory Store, for the rule test driver and step tests. It
// is not safe for concurrent use.
type MemStore struct {
	m map[string][]byte
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{m: map[string][]byte{}} }

// Get implements Store.
func (s *MemStore) Get(key []byte) ([]byte, bool, error) {
	v, ok := s.m[string(key)]
	return v, ok, nil
}

// Put implements Store; the value is copied.
func (s *MemStore) Put(key, value []byte) error {
	s.m[string(key)] = bytes.Clone(value)
	return nil
}

// Delete implements Store.
func (s *MemStore) Delete(key []byte) error {
	delete(s.m, string(key))
	return nil
}

// Scan implements Store, in key order.
func (s *MemStore) Scan(prefix []byte, fn func(key, value []byte) bool) error {
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		if strings.HasPrefix(k, string(prefix)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !fn([]byte(k), s.m[k]) {
			break
		}
	}
	return nil
}

// Len is the number of keys.
func (s *MemStore) Len() int { return len(s.m) }
