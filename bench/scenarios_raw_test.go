package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactEndsNoEmptyTransaction: the raw loops end no transaction
// that polled nothing (see transact: franz-go takes 500 ms to end one, and
// an idle loop ending one every interval held up the first records after a
// pause, which the raw latency baseline measured as its own), and every
// record polled is in an ended transaction.
func TestTransactEndsNoEmptyTransaction(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a := childArgs{brokers: c.ListenAddrs()[0], in: "in", out: "out", group: "g"}
	s, err := newRawSession(a, a.in)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var (
		mu     sync.Mutex
		ends   []int // records polled in each ended transaction
		polled int   // the loop's goroutine only
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var errs produceErrors
	go func() {
		done <- transact(ctx, s, &errs, txnLoop{
			each: func(r *kgo.Record) error {
				polled++
				s.Produce(ctx, &kgo.Record{Topic: a.out, Key: r.Key, Value: r.Value}, errs.promise)
				return nil
			},
			ended: func(bool) error {
				mu.Lock()
				ends = append(ends, polled)
				mu.Unlock()
				polled = 0
				return nil
			},
		})
	}()
	ended := func() (n, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range ends {
			total += e
		}
		return len(ends), total
	}

	// Idle for five commit intervals: nothing to end.
	time.Sleep(5 * commitInterval)
	if n, _ := ended(); n != 0 {
		t.Errorf("%d transactions ended with nothing polled", n)
	}

	prod, err := kgo.NewClient(kgo.SeedBrokers(a.brokers), kgo.DefaultProduceTopic(a.in))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	const records = 10
	for i := range records {
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, total := ended(); total < records && time.Now().Before(deadline); _, total = ended() {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, total := ended(); total != records {
		t.Errorf("transactions ended over %d records, want %d (ends: %v)", total, records, ends)
	}
	for i, e := range ends { // the loop has returned: ends is the test's now
		if e == 0 {
			t.Errorf("transaction %d ended with nothing polled (ends: %v)", i, ends)
		}
	}
}
