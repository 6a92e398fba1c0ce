package processors

import (
	"encoding/json"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

var joinFields = []Field{
	{Name: "table", Type: ReadStoreOf("table"), Required: true, Doc: "the store of a `table` step (in this or another rule); `${params.x}` is substituted"},
	{Name: "key", Type: KeyExpr, Doc: "the key to look up; default: the event's key"},
	{Name: "type", Type: EnumOf("inner", "left"), Doc: "`inner` (default) drops an event without a row; `left` keeps it with `null`"},
	{Name: "as", Type: FieldName, Required: true, Doc: "the field that receives the row (a dotted name sets a nested field)"},
	repartitionField,
}

func joinSpec() *Spec {
	return &Spec{
		Kind:    "join",
		Summary: "Enrich the event with the row of a table.",
		Doc: "The step looks up `key` in the table's store and sets the row (its JSON value) as the field " +
			"`as`. A table is a key range per task, so the rule of the join and the rule of the table must " +
			"read co-partitioned topics (the same partition count, keyed alike): `validate --brokers` and " +
			"the engine check it (VX4002). When `key` is not what the input is partitioned by, the topology " +
			"adds a repartition by `key` before the join (see \"Keys and repartitioning\"; the events then " +
			"go on keyed by the looked-up key), its topic created with the table topic's partition count. A join on a store that no `table` step declares is VX3004.",
		Fields: joinFields,
		Key:    "`key` (default: the record key): the key looked up in the table, whose rows are held per task by their record key",
		Example: "# rule customers-table, from: customers (keyed by customer id)\n" +
			"- table: customers\n" +
			"# rule orders-enriched, from: orders (keyed by order id)\n" +
			"- join: {table: customers, key: event.customer_id, type: left, as: customer}",
		Build: func(b Builder, n *yaml.Node, path string) Step {
			v, ok := DecodeFields(b, n, path, "join", joinFields)
			if !ok {
				return nil
			}
			s := &joinStep{
				table:  v.String("table", ""),
				key:    v.Expr("key"),
				left:   v.String("type", "inner") == "left",
				repart: v.Bool("repartition", true),
			}
			s.as, s.asName = v.FieldName("as")
			return s
		},
	}
}

type joinStep struct {
	table  string
	key    *expr.Program // nil: the event key
	left   bool
	as     []string
	asName string
	repart bool
}

// GroupKey implements Grouper: the table is a key range per task.
func (s *joinStep) GroupKey() (*expr.Program, bool) { return s.key, s.repart }

// KeyEffect implements KeyEffecter: the row is set as the field as.
func (s *joinStep) KeyEffect() KeyEffect { return KeyEffect{Fields: s.as[:1]} }

func (s *joinStep) Process(t ProcessorContext, ev *Event) (bool, error) {
	st, err := storeOf(t, s.table)
	if err != nil {
		return false, err
	}
	k := string(ev.Key)
	if s.key != nil {
		if k, err = s.key.String(ev); err != nil {
			return false, err
		}
	}
	var row any
	v, found, err := st.Get([]byte(k))
	if err != nil {
		return false, stateError(s.table, err)
	}
	if found && k != "" && !IsInternalKey([]byte(k)) {
		if err := json.Unmarshal(v, &row); err != nil {
			return false, stateError(s.table, err)
		}
	} else if !s.left {
		return false, nil
	}
	if ev.Value == nil {
		ev.Value = map[string]any{}
	}
	if err := setPath(ev.Value, s.as, row); err != nil {
		return false, &diag.Error{Code: diag.ResultType, Message: "join " + s.table + ": set " + s.asName + ": " + err.Error()}
	}
	ev.Touch()
	return true, nil
}

func (s *joinStep) Describe() Info {
	arg := "table " + s.table
	if s.key != nil {
		arg += ", key = " + s.key.Source()
	}
	typ := "inner"
	if s.left {
		typ = "left"
	}
	return Info{Kind: "join", Arg: arg + ", " + typ + ", as " + s.asName}
}
