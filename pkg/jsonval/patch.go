package jsonval

// Edit is one change to a top-level field of an object: Value is the new
// value's JSON encoding, or nil to remove the field.
type Edit struct {
	Key   string
	Value []byte
}

// AppendPatched appends the object with the edits applied in order (the last
// edit of a key wins). A replaced field keeps its place (of a repeated key,
// the first place; the repeats are left out), a removed field is left out,
// and new fields follow the original ones in the order they were first set.
// Every other field is copied byte for byte. When the edits only add new
// fields, the original bytes are kept whole (but for whitespace around it) and the new fields appended; otherwise whitespace between
// top-level fields is not kept. Edit values are written as given: they must be valid
// JSON.
func (o *Object) AppendPatched(dst []byte, edits []Edit) []byte {
	o.index()
	if o.onlyAdds(edits) {
		// The common case (set of new fields): the original bytes up to
		// the closing brace, then the new fields.
		end := len(o.raw) - 1
		for o.raw[end] != '}' {
			end--
		}
		dst = append(dst, o.raw[skipSpace(o.raw, 0):end]...)
		first := len(o.fields) == 0
		for j := range edits {
			if first {
				first = false
			} else {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, edits[j].Key)
			dst = append(dst, ':')
			dst = append(dst, edits[j].Value...)
		}
		return append(dst, '}')
	}
	dst = append(dst, '{')
	first := true
	sep := func() {
		if !first {
			dst = append(dst, ',')
		}
		first = false
	}
	for i := range o.fields {
		f := &o.fields[i]
		if e := o.lastEdit(edits, i); e >= 0 {
			if o.repeats(i) || edits[e].Value == nil {
				continue
			}
			sep()
			dst = append(dst, o.raw[f.ks-1:f.ke+1]...)
			dst = append(dst, ':')
			dst = append(dst, edits[e].Value...)
			continue
		}
		sep()
		dst = append(dst, o.raw[f.ks-1:f.ke+1]...)
		dst = append(dst, ':')
		dst = append(dst, o.raw[f.vs:f.ve]...)
	}
	for j := range edits {
		k := edits[j].Key
		if earlierEdit(edits, j) {
			continue
		}
		if _, ok := o.Get(k); ok {
			continue
		}
		v := edits[j].Value
		for _, e := range edits[j+1:] {
			if e.Key == k {
				v = e.Value
			}
		}
		if v == nil {
			continue
		}
		sep()
		dst = AppendString(dst, k)
		dst = append(dst, ':')
		dst = append(dst, v...)
	}
	return append(dst, '}')
}

// PatchedLen is an upper bound of the length AppendPatched writes, to size
// the destination once.
func (o *Object) PatchedLen(edits []Edit) int {
	n := len(o.raw) + 2
	for _, e := range edits {
		n += 6*len(e.Key) + len(e.Value) + 4
	}
	return n
}

// onlyAdds reports whether every edit sets a key that neither the object
// nor another edit has.
func (o *Object) onlyAdds(edits []Edit) bool {
	for j := range edits {
		if edits[j].Value == nil || earlierEdit(edits, j) {
			return false
		}
		if _, ok := o.Get(edits[j].Key); ok {
			return false
		}
	}
	return true
}

// lastEdit returns the index of the last edit of the i-th field's key, or -1.
func (o *Object) lastEdit(edits []Edit, i int) int {
	for j := len(edits) - 1; j >= 0; j-- {
		if o.is(i, edits[j].Key) {
			return j
		}
	}
	return -1
}

// repeats reports whether a field before the i-th has the same key.
func (o *Object) repeats(i int) bool {
	name := o.name(i)
	for j := 0; j < i; j++ {
		if o.is(j, name) {
			return true
		}
	}
	return false
}

func earlierEdit(edits []Edit, j int) bool {
	for _, e := range edits[:j] {
		if e.Key == edits[j].Key {
			return true
		}
	}
	return false
}
