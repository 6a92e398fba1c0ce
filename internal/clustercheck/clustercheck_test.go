package clustercheck_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/clustercheck"
	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/testbroker"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
)

// build compiles one rule per (name, from, steps) with positions for from.
func build(t *testing.T, rules ...[3]string) (*config.Config, *topology.Topology) {
	t.Helper()
	cfg := &config.Config{File: "veltrix.yaml", App: config.App{ID: "app"}}
	for i, r := range rules {
		var steps yaml.Node
		if err := yaml.Unmarshal([]byte(r[2]), &steps); err != nil {
			t.Fatal(err)
		}
		cfg.Rules = append(cfg.Rules, &config.Rule{
			Name: r[0], From: []string{r[1]}, Steps: steps.Content[0].Content, OnError: config.OnErrorSkip,
			FromPos: []diag.Pos{{File: "rules.yaml", Line: 10 * (i + 1), Column: 11, Path: "rules[0].from"}},
		})
	}
	topo, err := topology.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, topo
}

func admin(t *testing.T, b *testbroker.Broker) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func TestCheck(t *testing.T) {
	c := testbroker.New(t, testbroker.WithTopics(6, "orders"), testbroker.WithTopics(3, "customers"))
	adm := admin(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("valid; missing outputs are creatable and then created", func(t *testing.T) {
		cfg, topo := build(t, [3]string{"r", "orders", "- to: orders.out\n"})
		res := clustercheck.Check(ctx, adm, cfg, topo)
		if len(res.Problems) > 0 || len(res.MissingOutput) != 1 || res.Partitions["orders"] != 6 {
			t.Fatalf("Check = %+v, want no problem, orders.out missing, orders with 6 partitions", res)
		}
		if _, err := clustercheck.Prepare(ctx, adm, cfg, topo); err != nil {
			t.Fatal(err)
		}
		// A new client: the first one's metadata cache may predate the topic.
		if res := clustercheck.Check(ctx, admin(t, c), cfg, topo); len(res.MissingOutput) != 0 {
			t.Fatalf("after Prepare still missing %v", res.MissingOutput)
		}
	})

	t.Run("missing input topic", func(t *testing.T) {
		cfg, topo := build(t, [3]string{"r", "ordrs", "- to: out2\n"})
		res := clustercheck.Check(ctx, adm, cfg, topo)
		if len(res.Problems) != 1 || res.Problems[0].Code != diag.TopicMissing || res.Problems[0].Line != 10 || res.Problems[0].File != "rules.yaml" {
			t.Fatalf("problems %v, want one VX4001 at rules.yaml:10", res.Problems)
		}
		if _, err := clustercheck.Prepare(ctx, adm, cfg, topo); !errors.Is(err, &diag.Error{Code: diag.TopicMissing}) {
			t.Fatalf("Prepare = %v, want VX4001", err)
		}
	})

	t.Run("join of topics with different partition counts", func(t *testing.T) {
		cfg, topo := build(t,
			[3]string{"customers", "customers", "- table: customers\n"},
			[3]string{"enrich", "orders", "- join: {table: customers, as: customer}\n- to: orders.enriched\n"},
		)
		res := clustercheck.Check(ctx, adm, cfg, topo)
		var got []diag.Code
		for _, p := range res.Problems {
			got = append(got, p.Code)
		}
		if len(got) != 1 || got[0] != diag.CoPartition {
			t.Fatalf("problems %v, want one VX4002 (orders has 6 partitions, customers 3)", res.Problems)
		}
	})
}

func TestUnreachableCluster(t *testing.T) {
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.RetryTimeout(time.Second), kgo.DialTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cfg, topo := build(t, [3]string{"r", "orders", "- to: out\n"})
	res := clustercheck.Check(ctx, kadm.NewClient(cl), cfg, topo)
	if len(res.Problems) != 1 || res.Problems[0].Code != diag.ClusterUnreachable {
		t.Fatalf("problems %v, want one VX4005", res.Problems)
	}
}
