package processors

import (
	"fmt"
	"io"
	"strings"
)

// WriteDocs writes the Markdown reference of the step kinds (docs/steps.md)
// from their specs.
func WriteDocs(w io.Writer, specs []*Spec) error {
	var b strings.Builder
	b.WriteString("# Step kinds\n\n")
	b.WriteString("<!-- Generated from the step specs in processors/ by " +
		"`go test ./processors -run TestDocs -update`; do not edit by hand. -->\n\n")
	b.WriteString("A rule's `steps:` (and a template's) is a list; each item is a mapping with one key, " +
		"the step kind. Steps run in order; a step may stop the event (it is then `filtered`) or fail " +
		"it (the rule's `on_error` decides what happens). Expressions are CEL over `event`, `key`, " +
		"`headers`, `timestamp`, `params` and `now()`, type-checked when the configuration is loaded.\n\n")
	b.WriteString("In the tables of keys, a type `expr (bool)`, `expr (number)`, `expr (key)` or " +
		"`expr (time)` is an expression whose result type `validate` checks (VX3002: a bool; an int, " +
		"uint or double; a string or a number; a timestamp, an RFC 3339 string or epoch milliseconds); " +
		"`expr` may return anything. A `duration` is written `30s`, `5m`, `1h` or `7d`; a `store` names " +
		"a state store (its changelog is `<app.id>.<store>.changelog`); a `topic` is an output topic; " +
		"a `field` is an event field, a dotted name for a nested one (`customer.tier`); a `map of field to expr` " +
		"maps such field names to expressions; values separated by `|` are the ones allowed. A key shown as " +
		"(the value) is the step's whole value rather than a key of it.\n\n")
	b.WriteString("| kind | does |\n|---|---|\n")
	for _, s := range specs {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", s.Kind, s.Kind, s.Summary)
	}
	fmt.Fprintf(&b, "| [`%s`](#%s) | Run the steps of another template in place. |\n", UseKind, UseKind)
	b.WriteString(keysSection(specs))
	for _, s := range specs {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n%s\n", s.Kind, s.Summary, s.Doc)
		if len(s.Fields) > 0 {
			b.WriteString("\n| key | type | required | meaning |\n|---|---|---|---|\n")
			for _, f := range s.Fields {
				req := "no"
				if f.Required {
					req = "yes"
				}
				key := "`" + f.Name + "`"
				if f.Name == WholeValue {
					key = "(the value)"
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", key, f.Type, req, f.Doc)
			}
		}
		fmt.Fprintf(&b, "\n```yaml\n%s\n```\n", s.Example)
	}
	fmt.Fprintf(&b, "\n## %s\n\nRun the steps of another template in place.\n\n"+
		"`- use: <template>` with an optional `with: {param: value}` instantiates the template with its "+
		"parameters checked as for a rule's `with:`; inside a template a value may be `${params.x}` to pass "+
		"one of the outer template's parameters on. Templates that use each other in a cycle are VX2006.\n\n"+
		"```yaml\n- use: flag_high_value\n  with: {threshold: 5000, out: \"${params.out}\"}\n```\n", UseKind)
	_, err := io.WriteString(w, b.String())
	return err
}

// keysSection documents what each stateful step groups or looks up by, and
// when the topology repartitions before it.
func keysSection(specs []*Spec) string {
	var b strings.Builder
	b.WriteString("\n## Keys and repartitioning\n\n" +
		"State is held per task (an input partition). A step that groups or looks up by a key sees " +
		"every event of that key only when the events reach it partitioned by that key; the steps " +
		"that do, and their key:\n\n| kind | key |\n|---|---|\n")
	for _, s := range specs {
		if s.Key != "" {
			fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", s.Kind, s.Kind, s.Key)
		}
	}
	b.WriteString("\nThe events of a rule are known to be partitioned by:\n\n" +
		"- their record key: a step with no key, or the key expression `key`, needs nothing;\n" +
		"- the key their topics declare in the top-level `topics:` section " +
		"(`topics: {orders: {key: event.order_id}}`; a rule reading several topics: the key they all declare);\n" +
		"- after a `rekey`, its key; after a repartition the topology added, that key; after an " +
		"`aggregate` with a `key`, its group key (the results are keyed by it, and hold it as `event.key`).\n\n" +
		"A step that sets or drops a field forgets the keys that read it (`set`, `drop`, `join`'s `as`); " +
		"`map` and `aggregate` replace the event, so only the record key is known after them. " +
		"Expressions are compared as written, white space aside (`event.customer_id` is not " +
		"`string(event.customer_id)`).\n\n" +
		"When a step's key is none of these, the topology **adds a repartition** before it: the " +
		"rekey mechanism, writing the event keyed by the step's key to an internal topic " +
		"`<app.id>.<rule>.repartition` (a rule's later ones `<app.id>.<rule>.repartition.2`, `.3`, ...) in " +
		"the same transaction, and the rest of the rule reads that topic. The events after it are keyed " +
		"by the step's key (as after a `rekey`). `veltrix describe` shows each added repartition as a " +
		"step `repartition` and among the internal topics; `veltrix validate` lists them (VX3008). " +
		"A repartition can only be added at a rule's top level: a step nested in a `route` branch or a " +
		"used template that would need one is VX3004.\n\n" +
		"`repartition: false` on the step keeps grouping per input partition on purpose (for example a " +
		"dedupe by payment id where the copies of one payment always share its order id, the record key).\n")
	return b.String()
}
