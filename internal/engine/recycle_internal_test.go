package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFetchPoolClasses(t *testing.T) {
	for _, tc := range []struct{ n, class int }{
		{0, 0}, {1, 0}, {2, 1}, {3, 2}, {4, 2}, {5, 3}, {4096, 12}, {4097, 13}, {1 << 20, 20},
	} {
		if got := classFor(tc.n); got != tc.class {
			t.Errorf("classFor(%d) = %d, want %d", tc.n, got, tc.class)
		}
	}
	for _, tc := range []struct{ c, class int }{
		{0, -1}, {1, 0}, {2, 1}, {3, 1}, {4095, 11}, {4096, 12}, {1 << 31, 31}, {1 << 32, -1},
	} {
		if got := classOf(tc.c); got != tc.class {
			t.Errorf("classOf(%d) = %d, want %d", tc.c, got, tc.class)
		}
	}
	// Whatever was given back, a get holds what it asked for.
	var p fetchPools
	for _, c := range []int{100, 130, 255, 256, 1000, 5000} {
		p.PutDecompressBytes(make([]byte, 0, c))
		p.PutRecords(make([]kgo.Record, 0, c))
	}
	for _, n := range []int{1, 100, 129, 256, 257, 999, 4096, 6000} {
		if got := p.GetRecords(n); cap(got) < n || len(got) != 0 {
			t.Errorf("GetRecords(%d): len %d cap %d", n, len(got), cap(got))
		}
		compressed := make([]byte, n) // guessed at 4n decompressed
		if got := p.GetDecompressBytes(compressed, kgo.CodecLz4); cap(got) < 4*n {
			t.Errorf("GetDecompressBytes(%d bytes of lz4): cap %d", n, cap(got))
		}
	}
}

// countingPools counts what the client gives back.
type countingPools struct {
	*fetchPools
	bytes, records atomic.Int64
}

func (c *countingPools) PutDecompressBytes(b []byte) { c.bytes.Add(1); c.fetchPools.PutDecompressBytes(b) }
func (c *countingPools) PutRecords(rs []kgo.Record) {
	c.records.Add(1)
	c.fetchPools.PutRecords(rs)
}

// TestBatchRecycledAfterItsOutputs: a batch's records keep their bytes while
// it is processed and while any output produced from it is unacknowledged;
// the last release gives their memory back to the pools.
func TestBatchRecycledAfterItsOutputs(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prod, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const n = 300
	for i := range n {
		prod.Produce(ctx, &kgo.Record{Topic: "in", Value: fmt.Appendf(nil, `{"n":%d,"pad":"some text that compresses well, well, well"}`, i)}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	pools := &countingPools{fetchPools: &fetchPools{}}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("in"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.WithPools(pools))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var parts []kgo.FetchTopicPartition
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("polled %d of %d records: %v", got, n, err)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			parts = append(parts, p)
			got += len(p.Records)
		})
	}
	intact := func() bool {
		i := 0
		for _, p := range parts {
			for _, r := range p.Records {
				if string(r.Value) != fmt.Sprintf(`{"n":%d,"pad":"some text that compresses well, well, well"}`, i) {
					return false
				}
				i++
			}
		}
		return true
	}
	if !intact() {
		t.Fatal("records polled wrong")
	}

	b := newBatchRef(parts)
	b.hold() // two outputs of the batch, produced and not yet acknowledged
	b.hold()
	b.release() // the batch is processed
	b.release() // one output acknowledged
	if !intact() || pools.bytes.Load() != 0 || pools.records.Load() != 0 {
		t.Fatalf("recycled with an output unacknowledged: intact %v, buffers back %d, record slices back %d",
			intact(), pools.bytes.Load(), pools.records.Load())
	}
	b.release() // the last output acknowledged
	if pools.bytes.Load() == 0 || pools.records.Load() == 0 {
		t.Fatalf("not recycled after the last release: buffers back %d, record slices back %d", pools.bytes.Load(), pools.records.Load())
	}
	if parts[0].Records[0].Value != nil {
		t.Fatal("a recycled record still has its value")
	}
}
