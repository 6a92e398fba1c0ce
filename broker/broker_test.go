package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestBrokerAutoCreatesAndPersists(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := Start(WithListen("127.0.0.1:0"), WithDataDir(dir), WithPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Key: []byte{byte(i)}, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	b.Close()

	// Restart on the same data dir (and port): the records are still there.
	b, err = Start(WithListen(addr), WithDataDir(dir), WithPartitions(3))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cl, err = kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("auto"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, parts := 0, map[int32]bool{}
	for got < 10 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read back %d of 10 records: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) { got++; parts[r.Partition] = true })
	}
	if got != 10 {
		t.Fatalf("read %d records, want 10", got)
	}
	for p := range parts {
		if p < 0 || p > 2 {
			t.Fatalf("record in partition %d of a 3-partition topic", p)
		}
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	for _, opts := range [][]Option{
		{WithListen("nonsense")},
		{WithListen("127.0.0.1:99999")},
		{WithPartitions(0)},
	} {
		if b, err := Start(opts...); err == nil {
			b.Close()
			t.Errorf("Start(%d options) succeeded, want an error", len(opts))
		}
	}
}
