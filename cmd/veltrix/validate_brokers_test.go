package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veltrix/veltrix/internal/testbroker"
	"github.com/veltrix/veltrix/pkg/diag"
)

// TestValidateBrokers runs veltrix validate --brokers on the bundled example
// against a cluster (Apache Kafka with VELTRIX_TEST_KAFKA, else kfake):
// missing inputs and inputs that must be co-partitioned but are not are
// listed with exit 2; a cluster with the inputs passes; the check creates
// nothing.
func TestValidateBrokers(t *testing.T) {
	const example = "../../examples/ecommerce/veltrix.yaml"
	_, topo, err := load(example)
	if err != nil {
		t.Fatal(err)
	}
	// orders and payments are joined, so co-partitioned; the repartition
	// topics among the inputs are Veltrix's own.
	inputs := []string{"customers", "inventory", "orders", "payments"}
	validate := func(t *testing.T, b *testbroker.Broker) (codes []string, messages string, code int) {
		t.Helper()
		stdout, stderr, code, _ := execute(t, "validate", "--format", "json", "--brokers="+b.Addr(), "-c", example)
		var got []diag.Error
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("stdout is not a JSON array of problems: %v\n%s\nstderr:\n%s", err, stdout, stderr)
		}
		for _, p := range got {
			codes = append(codes, string(p.Code))
			messages += p.Message + "\n"
		}
		return codes, messages, code
	}

	t.Run("inputs missing", func(t *testing.T) {
		b := testbroker.New(t)
		codes, messages, code := validate(t, b)
		if code != 2 || !slices.Equal(codes, []string{"VX4001", "VX4001", "VX4001", "VX4001"}) {
			t.Fatalf("exit %d, problems %v, want exit 2 and VX4001 for each of %v:\n%s", code, codes, inputs, messages)
		}
		for _, in := range inputs {
			if !strings.Contains(messages, `"`+in+`"`) {
				t.Errorf("no problem names input %q:\n%s", in, messages)
			}
		}
	})

	t.Run("joined inputs not co-partitioned", func(t *testing.T) {
		b := testbroker.New(t, testbroker.WithTopics(6, "customers", "inventory", "orders"), testbroker.WithTopics(3, "payments"))
		codes, messages, code := validate(t, b)
		if code != 2 || !slices.Equal(codes, []string{"VX4002"}) || !strings.Contains(messages, "orders=6, payments=3") {
			t.Fatalf("exit %d, problems %v, want exit 2 and one VX4002 for orders=6, payments=3:\n%s", code, codes, messages)
		}
	})

	t.Run("valid", func(t *testing.T) {
		b := testbroker.New(t, testbroker.WithTopics(6, inputs...))
		codes, messages, code := validate(t, b)
		if code != 0 || len(codes) != 0 {
			t.Fatalf("exit %d, problems %v, want exit 0 and none:\n%s", code, codes, messages)
		}
		// Read-only: the outputs (and repartition topics) it found missing
		// are still missing.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		details, err := b.Admin().ListTopics(ctx, topo.OutputTopics()...)
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range topo.OutputTopics() {
			if d, ok := details[out]; ok && d.Err == nil {
				t.Errorf("validate --brokers created %s", out)
			}
		}
	})

	// An output topic whose max.message.bytes is below
	// kafka.max_record_bytes (1000000): a warning, exit 0.
	t.Run("output topic limit below max_record_bytes", func(t *testing.T) {
		small := topo.OutputTopics()[0]
		b := testbroker.New(t, testbroker.WithTopics(6, inputs...),
			testbroker.WithTopicConfig(small, 6, map[string]string{"max.message.bytes": "500000"}))
		stdout, stderr, code, _ := execute(t, "validate", "--format", "json", "--brokers="+b.Addr(), "-c", example)
		var got []diag.Error
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("stdout is not a JSON array: %v\n%s\n%s", err, stdout, stderr)
		}
		if code != 0 || len(got) != 1 || got[0].Code != diag.RecordLimitAboveTopic || got[0].Severity != diag.SeverityWarning ||
			!strings.Contains(got[0].Message, `"`+small+`"`) {
			t.Fatalf("exit %d, %+v; want exit 0 and one VX4007 warning naming %s", code, got, small)
		}
		_, stderr, code, _ = execute(t, "validate", "--brokers="+b.Addr(), "-c", example)
		if code != 0 || !strings.Contains(stderr, "warning VX4007 kafka.max_record_bytes") || !strings.Contains(stderr, "1 warning(s)") {
			t.Errorf("text: exit %d, stderr:\n%s\nwant exit 0 with the warning", code, stderr)
		}
	})
}
