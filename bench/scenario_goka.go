package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
)

// gokaScenario counts orders per customer with Goka: the Go peer, at-least-once
// by design. Each input record yields one output record (customer id -> running
// count), checked against the expected per-customer counts.
func gokaScenario(ctx context.Context, h *harness) result {
	chk := newCountChecker(h.custCount, nil, h.cfg.records, true)
	r := h.runThroughput(ctx, "goka-count", h.startSelf("goka-count"), chk)
	if r.Status == statusOK {
		r.Note = "input re-keyed by customer through the group's loop topic; LevelDB table"
	}
	return r
}

// gokaCount is the Goka processor: the input (keyed by order id) is sent
// through the group's loop topic keyed by customer id (Goka's own
// repartitioning), where the count in the group table is incremented and
// emitted. Storage is Goka's default, LevelDB, in a temp dir; the Sarama
// config is Goka's default except that streams are read from the oldest
// offset and topics are created with replication 1.
func gokaCount(ctx context.Context, a childArgs) error {
	cfg := goka.DefaultConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = 1
	tmc.Stream.Replication = 1
	out := goka.Stream(a.out)

	byCustomer := func(c goka.Context, msg any) {
		var ev struct {
			CustomerID string `json:"customer_id"`
		}
		if err := json.Unmarshal(msg.([]byte), &ev); err != nil {
			c.Fail(fmt.Errorf("decode order: %w", err))
		}
		c.Loopback(ev.CustomerID, msg)
	}
	count := func(c goka.Context, _ any) {
		var n int64
		if v := c.Value(); v != nil {
			n = v.(int64)
		}
		n++
		c.SetValue(n)
		c.Emit(out, c.Key(), n)
	}
	g := goka.DefineGroup(goka.Group(a.group),
		goka.Input(goka.Stream(a.in), new(codec.Bytes), byCustomer),
		goka.Loop(new(codec.Bytes), count),
		goka.Persist(new(codec.Int64)),
		goka.Output(out, new(codec.Int64)),
	)
	p, err := goka.NewProcessor([]string{a.brokers}, g,
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(cfg)),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(cfg)),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(cfg)),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(cfg, tmc)),
		goka.WithStorageBuilder(storage.DefaultBuilder(filepath.Join(a.dir, "goka-"+a.group))),
	)
	if err != nil {
		return fmt.Errorf("goka processor: %w", err)
	}
	if err := p.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("goka run: %w", err)
	}
	return nil
}
