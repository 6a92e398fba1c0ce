package processors_test

import "testing"

func TestDedupe(t *testing.T) {
	runStateCases(t, []stateCase{
		{
			name: "repeats within the ttl are dropped, expired ids purged",
			config: `
rules:
  - name: r
    from: in
    steps:
      - dedupe: {store: seen, id: event.payment_id, ttl: 1h, repartition: false}
      - to: out`,
			inputs: []input{
				{key: "o1", value: `{"payment_id":"p1"}`, at: "10:00"},
				{key: "o1", value: `{"payment_id":"p1","retry":1}`, at: "10:30"},
				{key: "o2", value: `{"payment_id":"p2"}`, at: "10:45"},
				{key: "o1", value: `{"payment_id":"p1","retry":2}`, at: "11:00"}, // exactly ttl later: new again
				{key: "o1", value: `{"payment_id":"p1","retry":3}`, at: "11:59"},
				{advance: "11:50"},
			},
			want: []string{
				`out|o1|{"payment_id":"p1"}`,
				`out|o2|{"payment_id":"p2"}`,
				`out|o1|{"payment_id":"p1","retry":2}`,
			},
			// p2 expired at 11:45 and was purged; p1 (seen again at 11:00) lives until 12:00.
			keys: map[string][]string{"seen": {"p1"}},
		},
		{
			name: "purge leaves nothing once every ttl passed",
			config: `
rules:
  - name: r
    from: in
    steps:
      - dedupe: {store: seen, id: event.id, ttl: 10m, time: event.at, repartition: false}
      - to: out`,
			inputs: []input{
				{key: "a", value: `{"id":1,"at":"2024-05-01T10:00:00Z"}`, at: "10:00"},
				{key: "a", value: `{"id":1,"at":"2024-05-01T10:05:00Z"}`, at: "10:05"},
				{key: "b", value: `{"id":2,"at":"2024-05-01T10:20:00Z"}`, at: "10:20"},
				{key: "b", value: `{"id":2,"at":"2024-05-01T10:40:00Z"}`, at: "10:40"},
			},
			want: []string{
				`out|a|{"id":1,"at":"2024-05-01T10:00:00Z"}`,
				`out|b|{"id":2,"at":"2024-05-01T10:20:00Z"}`,
				`out|b|{"id":2,"at":"2024-05-01T10:40:00Z"}`,
			},
			keys: map[string][]string{"seen": {"2"}},
		},
	})
}
