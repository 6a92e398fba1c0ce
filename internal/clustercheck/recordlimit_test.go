package clustercheck_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veltrix/veltrix/internal/clustercheck"
	"github.com/veltrix/veltrix/internal/testbroker"
	"github.com/veltrix/veltrix/pkg/diag"
)

// kafka.max_record_bytes above the max.message.bytes of a topic Veltrix
// writes to is a warning (VX4007), never a problem: an existing topic is
// compared with its own setting, a topic run would create with the brokers'
// message.max.bytes (1048588 by default on both brokers).
func TestRecordLimitAboveTopicLimit(t *testing.T) {
	b := testbroker.New(t, testbroker.WithTopics(3, "orders"),
		testbroker.WithTopicConfig("small.out", 3, map[string]string{"max.message.bytes": "500000"}),
		testbroker.WithTopicConfig("big.out", 3, map[string]string{"max.message.bytes": "2000000"}))
	adm := admin(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const steps = "- route:\n  - when: event.small\n    steps: [{to: small.out}]\n  - when: event.big\n    steps: [{to: big.out}]\n  - default: [{to: new.out}]\n"
	for _, tc := range []struct {
		limit int
		want  []string // topics warned about, sorted
	}{
		{400000, nil},
		{500000, nil},
		{500001, []string{"small.out"}},
		{1000000, []string{"small.out"}},
		{1100000, []string{"new.out", "small.out"}},
		{3000000, []string{"big.out", "new.out", "small.out"}},
	} {
		cfg, topo := build(t, [3]string{"r", "orders", steps})
		cfg.Kafka.MaxRecordBytes = tc.limit
		res := clustercheck.Check(ctx, adm, cfg, topo)
		if len(res.Problems) > 0 {
			t.Fatalf("limit %d: problems %v, want none (warnings only)", tc.limit, res.Problems)
		}
		var got []string
		for _, w := range res.Warnings {
			if w.Code != diag.RecordLimitAboveTopic || !w.IsWarning() || w.Path != "kafka.max_record_bytes" || w.Hint == "" {
				t.Errorf("limit %d: unexpected warning %v", tc.limit, w)
				continue
			}
			for _, topic := range []string{"small.out", "big.out", "new.out"} {
				if strings.Contains(w.Message, `"`+topic+`"`) {
					got = append(got, topic)
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("limit %d: warned about %v, want %v:\n%v", tc.limit, got, tc.want, res.Warnings)
		}
	}
}
