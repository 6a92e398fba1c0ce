package state

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// batch is a record batch header as the broker sends it (the records
// themselves do not matter to scanBatches).
func batch(first int64, lastDelta int32, attrs int16, producer int64, records int32) []byte {
	b := kmsg.RecordBatch{FirstOffset: first, LastOffsetDelta: lastDelta, Attributes: attrs, ProducerID: producer,
		NumRecords: records, Magic: 2, Records: make([]byte, 4)}
	b.Length = int32(49 + len(b.Records))
	return b.AppendTo(nil)
}

func TestScanBatches(t *testing.T) {
	type aborted = kmsg.FetchResponseTopicPartitionAbortedTransaction
	cat := func(bs ...[]byte) (out []byte) {
		for _, b := range bs {
			out = append(out, b...)
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		batches     []byte
		aborted     []aborted
		pos, end    int64
		next        int64
		deliverable bool
	}{
		{"emptied by compaction", cat(batch(10, 4, 0, -1, 0), batch(15, 4, 0, -1, 0)), nil, 10, 20, 20, false},
		{"a record in the tail", cat(batch(10, 4, 0, -1, 0), batch(15, 4, 0, -1, 3)), nil, 10, 20, 20, true},
		{"records before pos are passed over", cat(batch(0, 9, 0, -1, 10), batch(10, 0, batchControl, 7, 1)), nil, 10, 11, 11, false},
		{"a marker only", batch(10, 0, batchTransactional|batchControl, 7, 1), nil, 10, 11, 11, false},
		{"an aborted transaction and its marker", cat(batch(10, 4, batchTransactional, 7, 5), batch(15, 0, batchTransactional|batchControl, 7, 1)),
			[]aborted{{ProducerID: 7, FirstOffset: 10}}, 10, 16, 16, false},
		{"a committed transaction", cat(batch(10, 4, batchTransactional, 8, 5), batch(15, 0, batchTransactional|batchControl, 8, 1)),
			[]aborted{{ProducerID: 7, FirstOffset: 10}}, 10, 16, 15, true},
		{"after the abort marker the producer's next transaction counts", cat(batch(10, 1, batchTransactional, 7, 2), batch(12, 0, batchTransactional|batchControl, 7, 1), batch(13, 1, batchTransactional, 7, 2)),
			[]aborted{{ProducerID: 7, FirstOffset: 10}}, 10, 15, 15, true},
		{"batches from end on do not count", cat(batch(10, 0, 0, -1, 0), batch(11, 3, 0, -1, 4)), nil, 10, 11, 11, false},
		{"a batch cut short is not read", cat(batch(10, 4, 0, -1, 0), batch(15, 4, 0, -1, 3)[:30]), nil, 10, 20, 15, false},
		{"nothing", nil, nil, 10, 20, 10, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, deliverable := scanBatches(tc.batches, tc.aborted, tc.pos, tc.end)
			if next != tc.next || deliverable != tc.deliverable {
				t.Errorf("scanBatches = %d, %v; want %d, %v", next, deliverable, tc.next, tc.deliverable)
			}
		})
	}
}

// emptyTail asks the real broker: an aborted transaction and the markers at
// the end of a changelog are an empty tail, committed records are not.
func TestEmptyTailOnTheBroker(t *testing.T) {
	topic := ChangelogTopic(testApp, "s")
	_, kopts := newCluster(t, 1, topic)
	ctx := testCtx(t)
	prod := txnProducer(t, kopts, "tail-test")
	produceTxn(t, ctx, prod, true, rec(topic, 0, "k1", "a"), rec(topic, 0, "k2", "b"))  // offsets 0, 1, marker 2
	produceTxn(t, ctx, prod, false, rec(topic, 0, "k3", "x"), rec(topic, 0, "k4", "y")) // 3, 4, marker 5
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, tc := range []struct {
		pos  int64
		want bool
	}{{0, false}, {1, false}, {2, true}, {3, true}} {
		empty, err := emptyTail(ctx, cl, topic, 0, tc.pos, 6)
		if err != nil || empty != tc.want {
			t.Errorf("emptyTail from %d to 6 = %v, %v; want %v", tc.pos, empty, err, tc.want)
		}
	}
}
