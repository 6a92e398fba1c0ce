package processors

import (
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
)

var tableFields = []Field{
	{Name: "store", Type: StoreType, Required: true, Doc: "the store holding the table; `${params.x}` is substituted"},
}

func tableSpec() *Spec {
	return &Spec{
		Kind:    "table",
		Summary: "Materialise the topic as a table: record key to latest value.",
		Key:     "the record key (no expression): the row of each key is held by the task of its partition",
		Doc: "The step stores the event (as JSON, after the steps before it) under the record key; a " +
			"record with a null value (a tombstone) or the JSON value `null` deletes the key. The event " +
			"then continues, but a table rule usually ends here. Read the rule's topic as a compacted " +
			"topic keyed by the table's key. `join` steps read the table, the query API serves it " +
			"(`GET /v1/stores/<store>/<key>` returns the row). The value may also be given as a bare " +
			"store name: `- table: customers`.",
		Fields:  tableFields,
		Example: "- table: {store: customers}\n- table: products",
		Build: func(b Builder, n *yaml.Node, path string) Step {
			if n.Kind != yaml.MappingNode {
				x, ok := DecodeField(b, n, path, "table", tableFields[0])
				if !ok {
					return nil
				}
				return &tableStep{store: x.(string)}
			}
			v, ok := DecodeFields(b, n, path, "table", tableFields)
			if !ok {
				return nil
			}
			return &tableStep{store: v.String("store", "")}
		},
	}
}

type tableStep struct{ store string }

// TombstoneAccepter is a step that handles records with a null value (a
// tombstone) or the JSON value null: when a rule's first step is one, the
// topology passes such records to the rule with Event.Value nil instead of
// failing them as malformed (VX5001).
type TombstoneAccepter interface {
	AcceptsTombstones() bool
}

// AcceptsTombstones implements TombstoneAccepter.
func (s *tableStep) AcceptsTombstones() bool { return true }

func (s *tableStep) Process(t ProcessorContext, ev *Event) (bool, error) {
	st, err := storeOf(t, s.store)
	if err != nil {
		return false, err
	}
	if err := userKey(string(ev.Key), "the record key"); err != nil {
		return false, err
	}
	if ev.Value == nil {
		if err := st.Delete(ev.Key); err != nil {
			return false, stateError(s.store, err)
		}
		return false, nil
	}
	v, err := ev.Encode()
	if err != nil {
		return false, &diag.Error{Code: diag.ResultType, Message: "table " + s.store + ": value cannot be encoded as JSON: " + err.Error()}
	}
	if err := st.Put(ev.Key, v); err != nil {
		return false, stateError(s.store, err)
	}
	return true, nil
}

func (s *tableStep) Describe() Info {
	return Info{Kind: "table", Arg: "store " + s.store}
}

// KeyEffect implements KeyEffecter: the event goes on unchanged.
func (s *tableStep) KeyEffect() KeyEffect { return KeyEffect{} }
