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
	b.WriteString("| kind | does |\n|---|---|\n")
	for _, s := range specs {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s |\n", s.Kind, s.Kind, s.Summary)
	}
	fmt.Fprintf(&b, "| [`%s`](#%s) | Run the steps of another template in place. |\n", UseKind, UseKind)
	for _, s := range specs {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n%s\n", s.Kind, s.Summary, s.Doc)
		if len(s.Fields) > 0 {
			b.WriteString("\n| key | type | required | meaning |\n|---|---|---|---|\n")
			for _, f := range s.Fields {
				req := "no"
				if f.Required {
					req = "yes"
				}
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Name, f.Type, req, f.Doc)
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
