package processors

// Store is one named store of one task, as steps see it. Reads see the writes
// of the open transaction; writes become durable when it commits. A value
// returned by Get may be the store's own copy: the caller must not modify it,
// and it stays valid and unchanged after later writes (a write replaces a
// value, never changes it in place). Put copies its value. An empty value is
// stored as such (only a Delete is a tombstone). A Store is used by its
// task's goroutine only.
type Store interface {
	Get(key []byte) (value []byte, ok bool, err error)
	Put(key, value []byte) error
	Delete(key []byte) error
	// Scan calls fn for each key with the prefix, in key order, until fn
	// returns false. key and value are valid only during the call.
	Scan(prefix []byte, fn func(key, value []byte) bool) error
}

// OwnedPutter is a Store that can keep a value as it is, without Put's
// copy: PutOwned is Put of a value the caller gives up. The caller must
// never change the value afterwards (it may keep reading it) and should
// pass a slice that holds no more memory than the value needs, since the
// store may keep all of it. A nil value is stored as an empty one, as with
// Put.
type OwnedPutter interface {
	PutOwned(key, value []byte) error
}

// PutOwned writes a value the caller gives up (see OwnedPutter) to st,
// without a copy when st can keep it.
func PutOwned(st Store, key, value []byte) error {
	if o, ok := st.(OwnedPutter); ok {
		return o.PutOwned(key, value)
	}
	return st.Put(key, value)
}
