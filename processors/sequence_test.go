package processors_test

import (
	"slices"
	"testing"
)

func TestSequence(t *testing.T) {
	const rules = `
rules:
  - name: r
    from: [orders, payments]
    steps:
      - sequence:
          store: order-payments
          key: event.order_id
          repartition: false
          first: event.type == "order.created"
          then: event.type == "payment.captured"
          within: 30m
      - to: anomalies`
	runStateCases(t, []stateCase{
		{
			name:   "a payment for an order never created",
			config: rules,
			inputs: []input{
				{topic: "orders", key: "o1", value: `{"type":"order.created","order_id":"o1"}`, at: "10:00"},
				{topic: "payments", key: "o1", value: `{"type":"payment.captured","order_id":"o1"}`, at: "10:05"},
				{topic: "payments", key: "o9", value: `{"type":"payment.captured","order_id":"o9"}`, at: "10:06"},
				{topic: "payments", key: "o9", value: `{"type":"payment.authorized","order_id":"o9"}`, at: "10:07"},
				{advance: "12:00"},
			},
			want: []string{`anomalies|o9|{"type":"payment.captured","order_id":"o9","violation":"missing_first"}`},
		},
		{
			name:   "an order whose payment did not come in time",
			config: rules,
			inputs: []input{
				{topic: "orders", key: "o1", value: `{"type":"order.created","order_id":"o1","total":5}`, at: "10:00"},
				{topic: "orders", key: "o2", value: `{"type":"order.created","order_id":"o2"}`, at: "10:10"},
				{topic: "payments", key: "o2", value: `{"type":"payment.captured","order_id":"o2"}`, at: "10:20"},
				{advance: "10:29"},
				{advance: "10:30"}, // o1's deadline
				{topic: "payments", key: "o1", value: `{"type":"payment.captured","order_id":"o1"}`, at: "10:45"}, // too late, no second violation
				{advance: "11:00"},
			},
			want: []string{`anomalies|o1|{"type":"order.created","order_id":"o1","total":5,"violation":"missing_then","deadline":"2024-05-01T10:30:00Z"}`},
			keys: map[string][]string{"order-payments": {"o1", "o2"}},
		},
		{
			name: "emit all flags violations only; sequences expire after ttl",
			config: `
rules:
  - name: r
    from: in
    steps:
      - sequence: {store: s, first: event.t == "a", then: event.t == "b", ttl: 1h, emit: all}
      - to: out`,
			inputs: []input{
				{key: "k", value: `{"t":"a"}`, at: "10:00"},
				{key: "k", value: `{"t":"b"}`, at: "10:10"},
				{key: "k", value: `{"t":"c"}`, at: "10:20"},
				{advance: "11:00"},
				{key: "k", value: `{"t":"b"}`, at: "11:01"},
			},
			want: []string{
				`out|k|{"t":"a"}`,
				`out|k|{"t":"b"}`,
				`out|k|{"t":"c"}`,
				`out|k|{"t":"b","violation":"missing_first"}`,
			},
			keys: map[string][]string{"s": nil},
		},
	})
	top, err := buildConfig(t, rules)
	if err != nil {
		t.Fatal(err)
	}
	if got := top.CoPartitioned(); len(got) != 1 || !slices.Equal(got[0], []string{"orders", "payments"}) {
		t.Errorf("CoPartitioned() = %q, want [[orders payments]]", got)
	}
}
