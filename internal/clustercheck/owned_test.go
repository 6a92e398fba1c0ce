package clustercheck_test

import (
	"context"
	"testing"
	"time"

	"github.com/veltrix/veltrix/internal/clustercheck"
	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/testbroker"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// A transaction timeout above the brokers' transaction.max.timeout.ms (15
// minutes on both brokers) is VX4006 at check time, not an
// INVALID_TRANSACTION_TIMEOUT at the first transaction.
func TestTransactionTimeoutAgainstBrokerMax(t *testing.T) {
	b := testbroker.New(t, testbroker.WithTopics(3, "orders"))
	adm := admin(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		guarantee string
		timeout   time.Duration
		want      bool
	}{
		{config.ExactlyOnce, 10 * time.Second, false},
		{config.ExactlyOnce, 15 * time.Minute, false},
		{config.ExactlyOnce, 16 * time.Minute, true},
		{config.AtLeastOnce, 16 * time.Minute, false}, // no transactions
	} {
		cfg, topo := build(t, [3]string{"r", "orders", "- to: orders.out\n"})
		cfg.Processing.Guarantee, cfg.Processing.TransactionTimeout = tc.guarantee, tc.timeout
		res := clustercheck.Check(ctx, adm, cfg, topo)
		got := false
		for _, p := range res.Problems {
			if p.Code == diag.TxnTimeoutTooLarge && p.Path == "processing.transaction_timeout" {
				got = true
			}
		}
		if got != tc.want || (!tc.want && len(res.Problems) > 0) {
			t.Errorf("%s, transaction_timeout %s: problems %v, want VX4006: %v", tc.guarantee, tc.timeout, res.Problems, tc.want)
		}
		if tc.guarantee == config.ExactlyOnce && res.MaxTxnTimeout != 15*time.Minute {
			t.Errorf("MaxTxnTimeout = %s, want the brokers' 15m", res.MaxTxnTimeout)
		}
	}
}

// The topics Veltrix owns are created with explicit configs: a repartition
// topic keeps its records until they are consumed (the engine deletes them
// after commits), a DLQ deletes by time; an output gets the cluster's
// defaults.
func TestPrepareCreatesOwnedTopicsWithTheirConfigs(t *testing.T) {
	b := testbroker.New(t, testbroker.WithTopics(3, "orders"))
	adm := admin(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, _ := build(t, [3]string{"r", "orders", "- rekey: event.customer_id\n- to: orders.out\n"})
	cfg.Rules[0].OnError = config.OnErrorDLQ
	cfg.Rules[0].DLQ = "app.dlq"
	topo, err := topology.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := clustercheck.Prepare(ctx, adm, cfg, topo)
	if err != nil {
		t.Fatalf("prepare: %v (%v)", err, res.Problems)
	}
	repartition := topology.RepartitionTopic("app", "r")
	if res.Partitions[repartition] != 3 {
		t.Errorf("repartition topic has %d partitions, want its input's 3", res.Partitions[repartition])
	}
	want := map[string]map[string]string{
		repartition: clustercheck.RepartitionConfigs,
		"app.dlq":   clustercheck.DLQConfigs,
	}
	for topic, configs := range want {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := rcs.On(topic, nil)
		if err != nil || rc.Err != nil {
			t.Fatalf("%s: %v %v", topic, err, rc.Err)
		}
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		for k, v := range configs {
			if got[k] != v {
				t.Errorf("%s: %s=%q, want %q", topic, k, got[k], v)
			}
		}
	}
	if _, ok := res.Partitions["orders.out"]; !ok {
		t.Errorf("output topic orders.out was not created: %v", res.Partitions)
	}
}
