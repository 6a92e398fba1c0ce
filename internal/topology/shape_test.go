package topology

import (
	"strings"
	"testing"
)

func TestShapeDiff(t *testing.T) {
	const base = `rules:
  - name: big
    from: orders
    steps:
      - filter: event.total > 100
      - aggregate: {store: totals, key: event.customer_id, sum: event.total}
      - to: big-totals
`
	for _, tc := range []struct {
		name, rules string
		want        []string // substrings of the differences, in order; none: same shape
	}{
		{name: "same", rules: base},
		{name: "threshold", rules: strings.Replace(base, "> 100", "> 250", 1)},
		{name: "output", rules: strings.Replace(base, "to: big-totals", "to: other-totals", 1)},
		{name: "stateless rule added", rules: base + `  - name: echo
    from: orders
    steps:
      - to: orders-copy
`},
		{name: "aggregation", rules: strings.Replace(base, "sum: event.total", "sum: event.tax", 1),
			want: []string{"store totals: its step changed"}},
		{name: "key", rules: strings.Replace(base, "key: event.customer_id", "key: event.region", 1),
			want: []string{"repartition shop.big.repartition by event.customer_id removed", "repartition shop.big.repartition by event.region added", "store totals: its step changed"}},
		{name: "rekey", rules: strings.Replace(base, "      - aggregate: {store: totals, key: event.customer_id, sum: event.total}", "      - rekey: event.region\n      - aggregate: {store: totals, sum: event.total}", 1),
			want: []string{"by event.customer_id removed", "by event.region added", "store totals: its step changed"}},
		{name: "source", rules: strings.Replace(base, "from: orders", "from: payments", 1),
			want: []string{"source topic orders removed", "source topic payments added"}},
		{name: "store renamed", rules: strings.Replace(base, "store: totals", "store: sums", 1),
			want: []string{"store totals removed", "store sums added"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, err := Build(parseConfig(t, "a.yaml", base))
			if err != nil {
				t.Fatal(err)
			}
			next, err := Build(parseConfig(t, "a.yaml", tc.rules))
			if err != nil {
				t.Fatal(err)
			}
			got := old.Shape().Diff(next.Shape())
			if len(got) != len(tc.want) {
				t.Fatalf("diff = %q, want %d differences like %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("difference %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
