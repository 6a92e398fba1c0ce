package dlq_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/dlq"
	"github.com/veltrix/veltrix/internal/testbroker"
	"github.com/veltrix/veltrix/internal/topology"
)

// dlqRecord is a DLQ record as the engine writes it.
func dlqRecord(i int, part int32) *kgo.Record {
	h := func(k, v string) kgo.RecordHeader { return kgo.RecordHeader{Key: k, Value: []byte(v)} }
	return &kgo.Record{Topic: "app.dlq", Partition: part, Key: []byte(fmt.Sprintf("k-%d", i)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i)),
		Headers: []kgo.RecordHeader{
			h("trace", "t-1"), // an original header: kept by a replay
			h(topology.HeaderErrorCode, "VX5003"), h(topology.HeaderErrorMessage, "no such key: total"),
			h(topology.HeaderRule, "big-orders"), h(topology.HeaderSourceTopic, "orders"),
			h(topology.HeaderSourcePartition, strconv.Itoa(int(part))), h(topology.HeaderSourceOffset, strconv.Itoa(100+i)),
		}}
}

func TestLatestAndReplay(t *testing.T) {
	b := testbroker.New(t, testbroker.WithTopics(2, "app.dlq", "orders"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Committed records in a transaction, as the engine writes them, then
	// an aborted one that a read_committed reader never sees.
	tx, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.TransactionalID("dlq-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	for _, commit := range []bool{true, false} {
		if err := tx.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		n := 10
		if !commit {
			n = 1
		}
		for i := range n {
			r := dlqRecord(i, int32(i%2))
			if !commit {
				r.Value = []byte("aborted")
			}
			if err := tx.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}

	c := dlq.New(kgo.SeedBrokers(b.Addr()))
	recs, partial, err := c.Latest(ctx, []string{"app.dlq"}, 3)
	if err != nil || partial {
		t.Fatalf("Latest: %v (partial %v)", err, partial)
	}
	if len(recs) != 6 {
		t.Fatalf("Latest(3 per partition) = %d records, want 6", len(recs))
	}
	perPart := map[int32]int{}
	for i, r := range recs {
		perPart[r.Partition]++
		if string(r.Value) == "aborted" {
			t.Errorf("Latest returned an aborted record")
		}
		if r.Code != "VX5003" || r.Rule != "big-orders" || r.SourceTopic != "orders" || r.SourcePartition != r.Partition || r.SourceOffset < 100 {
			t.Errorf("record %d headers decoded as %+v", i, r)
		}
		if i > 0 && r.Timestamp.After(recs[i-1].Timestamp) {
			t.Errorf("records not newest first at %d", i)
		}
	}
	if perPart[0] != 3 || perPart[1] != 3 {
		t.Errorf("per partition %v, want 3 each (the newest)", perPart)
	}

	// Replay one record: re-read from the DLQ, sent to its source
	// partition with its original headers and the audit header only.
	pick := recs[0]
	at := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	res, err := c.Replay(ctx, []dlq.Ref{pick.Ref(), {Topic: "app.dlq", Partition: 0, Offset: 999}},
		func(topic string) bool { return topic == "orders" }, dlq.Audit{By: "test", At: at})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].Err != nil || !errors.Is(res[1].Err, dlq.ErrNotFound) {
		t.Fatalf("Replay = %+v, want the first replayed and the missing one failed", res)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"orders": {pick.SourcePartition: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got *kgo.Record
	for got == nil && ctx.Err() == nil {
		rd.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = r })
	}
	if got == nil || string(got.Key) != string(pick.Key) || string(got.Value) != string(pick.Value) {
		t.Fatalf("replayed record = %+v, want key %s value %s", got, pick.Key, pick.Value)
	}
	var keys []string
	var audit map[string]any
	for _, h := range got.Headers {
		keys = append(keys, h.Key)
		if h.Key == dlq.HeaderReplay {
			if err := json.Unmarshal(h.Value, &audit); err != nil {
				t.Fatal(err)
			}
		}
	}
	if fmt.Sprint(keys) != "[trace veltrix.replay]" {
		t.Errorf("replayed headers %v, want the original one and the audit", keys)
	}
	if audit["dlq_topic"] != "app.dlq" || audit["dlq_offset"] != float64(pick.Offset) || audit["by"] != "test" ||
		audit["code"] != "VX5003" || audit["at"] != "2026-05-04T10:00:00Z" {
		t.Errorf("audit header %v", audit)
	}

	// A source topic the topology does not read is refused.
	res, _ = c.Replay(ctx, []dlq.Ref{pick.Ref()}, func(string) bool { return false }, dlq.Audit{At: at})
	if len(res) != 1 || res[0].Err == nil {
		t.Errorf("replay to a topic not allowed: %+v", res)
	}
}

func TestReplayRecordRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  dlq.Record
	}{
		{"shortened in the DLQ", dlq.Record{Topic: "d", SourceTopic: "orders", SourcePartition: 0, Truncated: true}},
		{"no source headers", dlq.Record{Topic: "d", SourcePartition: -1}},
	} {
		if _, err := dlq.ReplayRecord(tc.rec, dlq.Audit{}); err == nil {
			t.Errorf("%s: replayed", tc.name)
		}
	}
	for _, s := range []string{"a/1", "a/x/1", "/1/2", "a/-1/2", "a/1/2/3"} {
		if _, err := dlq.ParseRef(s); err == nil {
			t.Errorf("ParseRef(%q) accepted", s)
		}
	}
	if r, err := dlq.ParseRef("app.dlq/3/42"); err != nil || r != (dlq.Ref{Topic: "app.dlq", Partition: 3, Offset: 42}) || r.String() != "app.dlq/3/42" {
		t.Errorf("ParseRef = %+v %v", r, err)
	}
}
