package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/testbroker"
)

// A record the broker refuses (here MESSAGE_TOO_LARGE, an error that keeps
// the producer id, so franz-go does not abort by itself) fails the whole
// transaction: its offsets are not committed and nothing of it is visible.
// The refused record is a changelog record, the last thing a transaction
// produces before it ends: the check of the produce results must come after
// the flush, or End commits over the lost record.
func TestRefusedRecordIsNeverCommittedOver(t *testing.T) {
	b := testbroker.New(t, testbroker.WithTopics(1, "orders"),
		testbroker.WithTopicConfig("test-app.last.changelog", 1, map[string]string{"cleanup.policy": "compact", "max.message.bytes": "2000"}),
		testbroker.WithFake(kfake.GroupMinSessionTimeout(100*time.Millisecond)))
	addr := b.Addr()
	// Random padding: a compressed batch of it still exceeds the limit.
	pad := make([]byte, 6000)
	_, _ = rand.Read(pad)
	produce(t, addr, []*kgo.Record{
		{Topic: "orders", Key: []byte("k"), Value: []byte(`{"pad":"small"}`)},
		{Topic: "orders", Key: []byte("k"), Value: []byte(`{"pad":"` + base64.StdEncoding.EncodeToString(pad) + `"}`)},
	})
	cfg, topo := loadTopology(t, addr, "exactly_once", `rules:
  - name: keep
    from: orders
    steps:
      - aggregate: {store: last, latest: event.pad}
`)
	r := start(engine.New(cfg, topo))
	var err error
	select {
	case err = <-r.done:
		r.done <- err
	case <-time.After(time.Minute):
		_ = r.stop()
		t.Fatal("the engine went on over a refused record")
	}
	if !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("run ended with %v, want MESSAGE_TOO_LARGE", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	offs, ferr := b.Admin().FetchOffsets(ctx, cfg.App.ID)
	if ferr != nil && !errors.Is(ferr, kerr.GroupIDNotFound) {
		t.Fatal(ferr)
	}
	if o, ok := offs.Lookup("orders", 0); ok && o.At > 1 {
		t.Errorf("committed offset %d is past the record whose changelog write was refused (offset 1)", o.At)
	}
}
