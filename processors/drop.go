package processors

import (
	"strings"

	"gopkg.in/yaml.v3"
)

func dropSpec() *Spec {
	return &Spec{
		Kind:    "drop",
		Summary: "Remove fields from the event.",
		Doc: "The value is a list of field names (or one name). A dotted name such as `customer.email` " +
			"removes a nested field. A field the event does not have is ignored.",
		Example: `- drop: [internal_notes, customer.email]`,
		Fields:  dropFields,
		Build: func(b Builder, n *yaml.Node, path string) Step {
			v, ok := DecodeFields(b, n, path, "drop", dropFields)
			if !ok {
				return nil
			}
			s := &dropStep{flat: true}
			s.paths, s.names = v.FieldNames(WholeValue)
			for _, p := range s.paths {
				s.flat = s.flat && len(p) == 1
			}
			return s
		},
	}
}

var dropFields = []Field{{Name: WholeValue, Type: FieldNames, Required: true, Doc: "the fields to remove"}}

type dropStep struct {
	names []string
	paths [][]string
	flat  bool // every name is top-level
}

func (s *dropStep) Process(_ ProcessorContext, ev *Event) (bool, error) {
	if ev.Value == nil && s.flat && ev.obj.Raw() != nil {
		// Removals of top-level fields are edits spliced out of Raw.
		for _, name := range s.names {
			if ev.has(name) {
				ev.edit(name, nil, nil)
			}
		}
		return true, nil
	}
	m := ev.Map()
	for _, p := range s.paths {
		if deletePath(m, p) {
			ev.Touch()
		}
	}
	return true, nil
}

// deletePath removes the field at path and reports whether it was there.
func deletePath(m map[string]any, path []string) bool {
	for _, p := range path[:len(path)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			return false
		}
		m = sub
	}
	last := path[len(path)-1]
	if _, ok := m[last]; !ok {
		return false
	}
	delete(m, last)
	return true
}

func (s *dropStep) Describe() Info { return Info{Kind: "drop", Arg: strings.Join(s.names, ", ")} }

// KeyEffect implements KeyEffecter: the fields dropped are gone.
func (s *dropStep) KeyEffect() KeyEffect {
	e := KeyEffect{}
	for _, p := range s.paths {
		e.Fields = append(e.Fields, p[0])
	}
	return e
}
