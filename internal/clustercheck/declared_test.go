package clustercheck_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/internal/clustercheck"
	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/testbroker"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/processors"
)

// emitSpec is a custom step kind with no Describe method: it copies each
// event to the topic it names, declared through the Builder.
func emitSpec() *processors.Spec {
	return &processors.Spec{
		Kind: "emit",
		Build: func(b processors.Builder, n *yaml.Node, path string) processors.Step {
			topic := b.Output(n, path)
			if topic == "" {
				return nil
			}
			return emitStep(topic)
		},
	}
}

type emitStep string

func (s emitStep) Process(t processors.ProcessorContext, ev *processors.Event) (bool, error) {
	t.Emit(processors.Output{Topic: string(s), Key: ev.Key, Value: ev.Raw})
	return true, nil
}

// TestPrepareCreatesDeclaredOutputs checks that the topics a step declares
// with Builder.Output are created, whether or not the step describes itself.
func TestPrepareCreatesDeclaredOutputs(t *testing.T) {
	c := testbroker.New(t, testbroker.WithTopics(3, "orders"))
	adm := admin(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var steps yaml.Node
	if err := yaml.Unmarshal([]byte("- emit: orders.copy\n- to: orders.out\n"), &steps); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{File: "veltrix.yaml", App: config.App{ID: "app"}}
	cfg.Rules = []*config.Rule{{Name: "r", From: []string{"orders"}, Steps: steps.Content[0].Content, OnError: config.OnErrorSkip}}
	topo, err := topology.Build(cfg, topology.WithSpecs(append(processors.Specs(), emitSpec())))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := topo.Rules[0].Outputs, []string{"orders.copy", "orders.out"}; !slices.Equal(got, want) {
		t.Fatalf("rule outputs %v, want %v", got, want)
	}
	res := clustercheck.Check(ctx, adm, cfg, topo)
	if slices.Sort(res.MissingOutput); len(res.Problems) > 0 || !slices.Equal(res.MissingOutput, []string{"orders.copy", "orders.out"}) {
		t.Fatalf("Check = problems %v, missing %v; want orders.copy and orders.out missing", res.Problems, res.MissingOutput)
	}
	if _, err := clustercheck.Prepare(ctx, adm, cfg, topo); err != nil {
		t.Fatal(err)
	}
	if res := clustercheck.Check(ctx, admin(t, c), cfg, topo); len(res.MissingOutput) != 0 {
		t.Fatalf("after Prepare still missing %v", res.MissingOutput)
	}
}
