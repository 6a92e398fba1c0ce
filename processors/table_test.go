package processors_test

import "testing"

func TestTable(t *testing.T) {
	runStateCases(t, []stateCase{
		{
			name: "latest value per key, tombstones delete",
			config: `
rules:
  - name: r
    from: in
    steps:
      - table: {store: customers}`,
			inputs: []input{
				{key: "c1", value: `{"tier":"silver"}`, at: "10:00"},
				{key: "c2", value: `{"tier":"gold"}`, at: "10:00"},
				{key: "c1", value: `{"tier":"gold"}`, at: "10:01"},
				{key: "c2", value: `<nil>`, at: "10:02"},
				{key: "c3", value: `{"tier":"bronze"}`, at: "10:03"},
				{key: "c3", value: `null`, at: "10:04"},
				{key: "c4", value: `not json`, at: "10:05"},
			},
			want: []string{`app.dlq|c4|VX5001`},
			keys: map[string][]string{"customers": {"c1"}},
		},
	})
}
