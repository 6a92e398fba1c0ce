package topology

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

func header(o processors.Output, key string) string {
	for _, h := range o.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return "<missing>"
}

func TestProcessOnError(t *testing.T) {
	const rules = `
rules:
  - name: flag
    from: orders
    on_error: %s
    dlq: orders.dlq
    steps:
      - filter: event.total > 100
      - to: flagged
`
	inputs := []struct {
		name  string
		value string
		code  diag.Code
		msg   string
	}{
		{"malformed JSON", `{"total": 5`, diag.MalformedEvent, "not a JSON object"},
		{"not an object", `[1, 2]`, diag.MalformedEvent, "not a JSON object"},
		{"missing field", `{"amount": 5}`, diag.MissingField, "no such key"},
		{"evaluation error", `{"total": "many"}`, diag.EvalError, "no such overload"},
	}
	for _, policy := range []string{"skip", "dlq", "fail"} {
		for _, in := range inputs {
			t.Run(policy+"/"+in.name, func(t *testing.T) {
				top, err := Build(parseConfig(t, "veltrix.yaml", strings.Replace(rules, "%s", policy, 1)))
				if err != nil {
					t.Fatal(err)
				}
				tk := &task{}
				var obs observed
				rec := record("orders", "o-1", in.value)
				err = top.Process(tk, rec, &obs)
				switch policy {
				case "skip":
					if err != nil || len(tk.out) != 0 || !slices.Equal(obs.got, []string{"flag error " + string(in.code)}) {
						t.Errorf("err %v, outputs %v, outcomes %v", err, tk.out, obs.got)
					}
				case "dlq":
					if err != nil || !slices.Equal(obs.got, []string{"flag dlq " + string(in.code)}) || len(tk.out) != 1 {
						t.Fatalf("err %v, outputs %v, outcomes %v", err, tk.out, obs.got)
					}
					o := tk.out[0]
					if o.Topic != "orders.dlq" || string(o.Key) != "o-1" || string(o.Value) != in.value {
						t.Errorf("DLQ record %s %s %s", o.Topic, o.Key, o.Value)
					}
					wantHeaders := map[string]string{
						"trace":               "t-1",
						HeaderErrorCode:       string(in.code),
						HeaderRule:            "flag",
						HeaderSourceTopic:     "orders",
						HeaderSourcePartition: "2",
						HeaderSourceOffset:    "41",
					}
					for k, v := range wantHeaders {
						if got := header(o, k); got != v {
							t.Errorf("header %s = %q, want %q", k, got, v)
						}
					}
					if msg := header(o, HeaderErrorMessage); !strings.Contains(msg, in.msg) {
						t.Errorf("header %s = %q, want it to contain %q", HeaderErrorMessage, msg, in.msg)
					}
				case "fail":
					var re *RuleError
					if !errors.As(err, &re) || re.Rule != "flag" || re.Offset != 41 || re.Partition != 2 || re.Topic != "orders" {
						t.Fatalf("err %v, want a *RuleError", err)
					}
					if !errors.Is(err, &diag.Error{Code: in.code}) {
						t.Errorf("err %v does not carry %s", err, in.code)
					}
					if !strings.Contains(err.Error(), `rule "flag"`) || !strings.Contains(err.Error(), "orders[2]@41") {
						t.Errorf("err %q does not name the rule and record", err)
					}
					if len(tk.out) != 0 || !slices.Equal(obs.got, []string{"flag error " + string(in.code)}) {
						t.Errorf("outputs %v, outcomes %v", tk.out, obs.got)
					}
				}
			})
		}
	}
}

// TestProcessSeveralRules: each rule reading a topic sees the event as
// decoded, whatever the others change; outcomes are per rule.
func TestProcessSeveralRules(t *testing.T) {
	top, err := Build(parseConfig(t, "veltrix.yaml", `
rules:
  - name: a
    from: orders
    steps: [{set: {customer.tier: '"gold"'}}, {drop: [total]}, {to: out-a}]
  - name: b
    from: [orders, payments]
    steps: [{filter: 'event.total > 1'}, {to: out-b}]
  - name: c
    from: payments
    on_error: skip
    steps: [{to: out-c}]
`))
	if err != nil {
		t.Fatal(err)
	}
	tk := &task{}
	var obs observed
	const value = `{"total": 5, "customer": {"id": "c"}}`
	if err := top.Process(tk, record("orders", "k", value), &obs); err != nil {
		t.Fatal(err)
	}
	if len(tk.out) != 2 || tk.out[0].Topic != "out-a" || tk.out[1].Topic != "out-b" {
		t.Fatalf("outputs %v", tk.out)
	}
	if got := string(tk.out[0].Value); got != `{"customer":{"id":"c","tier":"gold"}}` {
		t.Errorf("out-a = %s", got)
	}
	if got := string(tk.out[1].Value); got != value {
		t.Errorf("out-b = %s, want the original bytes", got)
	}
	if !slices.Equal(obs.got, []string{"a matched", "b matched"}) {
		t.Errorf("outcomes %v", obs.got)
	}
	// A topic no rule reads is ignored.
	if err := top.Process(tk, record("other", "k", "garbage"), &obs); err != nil || len(tk.out) != 2 {
		t.Errorf("other topic: %v, %v", err, tk.out)
	}
	// A nil observer is fine.
	if err := top.Process(tk, record("payments", "k", `{"total": 0}`), nil); err != nil || len(tk.out) != 3 {
		t.Errorf("payments: %v, %v", err, tk.out)
	}
}

func BenchmarkProcessFilterSet(b *testing.B) {
	benchProcess(b, `
      - filter: event.type == "order.created" && event.total >= 10.0
      - set: {flag: '"high_value"', score: event.total * 2.0}
      - to: orders.flagged`,
		`{"id":"o-123456","type":"order.created","customer_id":"c-4242","total":129.5,"currency":"EUR","items":[{"sku":"sku-1","qty":2,"price":40.25},{"sku":"sku-9","qty":1,"price":49}],"created_at":"2026-01-02T03:04:05Z"}`)
}

// BenchmarkProcessBenchRule is the rule of the bench program's stateless
// scenarios (bench/): a filter every order passes, a constant set, to.
func BenchmarkProcessBenchRule(b *testing.B) {
	benchProcess(b, `
      - filter: event.type == "order.created"
      - set: {bench: '"yes"'}
      - to: orders.out`,
		`{"order_id":"o-0000042","type":"order.created","customer_id":"c-004242","total":129.5,"currency":"EUR","items":3,"channel":"web","country":"FR","created_at":"2026-01-02T03:04:05.000Z","note":"bench order with some padding text"}`)
}

// benchProcess runs one record of the orders topic through a rule with
// steps, per iteration.
func benchProcess(b *testing.B, steps, value string) {
	top, err := Build(parseConfig(b, "veltrix.yaml", `
rules:
  - name: bench
    from: orders
    steps:`+steps+"\n"))
	if err != nil {
		b.Fatal(err)
	}
	rec := record("orders", "o-1", value)
	tk := &discard{}
	b.ReportAllocs()
	b.SetBytes(int64(len(rec.Value)))
	for b.Loop() {
		if err := top.Process(tk, rec, nil); err != nil {
			b.Fatal(err)
		}
	}
	if tk.n == 0 {
		b.Fatal("no output")
	}
}

// discard is a task that counts outputs.
type discard struct {
	task
	n int
}

func (d *discard) Emit(processors.Output) { d.n++ }
