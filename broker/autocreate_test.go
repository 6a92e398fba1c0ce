package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAutoCreatedTopicSurvivesKill creates a topic by producing to it, kills
// the broker with SIGKILL and restarts it: the topic and its records are
// still there.
func TestAutoCreatedTopicSurvivesKill(t *testing.T) {
	ctx, dir := brokerProcessTest(t, time.Minute)

	b := startChild(t, dir)
	pr, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for range n {
		if err := pr.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	pr.Close()
	b.kill()

	b = startChild(t, dir)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumeTopics("auto"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := 0
	for got < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of the %d records after the kill: %v", got, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		got += fs.NumRecords()
	}
	if got != n {
		t.Fatalf("read %d records, want %d", got, n)
	}
}
