package httpapi

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/topology"
)

// A repartition topic is drawn once, as a repartition (read back by its
// rule), not also as an output topic.
func TestGraphDrawsARepartitionOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "veltrix.yaml")
	if err := os.WriteFile(path, []byte(`app: {id: shop}
kafka: {brokers: [127.0.0.1:9092]}
rules:
  - name: revenue
    from: orders
    steps:
      - aggregate: {store: revenue, key: event.customer_id, sum: event.total}
      - to: revenue-out
`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, topo, err := topology.Compile(path, topology.WithLoadOptions(config.WithEnv(func(string) (string, bool) { return "", false })))
	if err != nil {
		t.Fatal(err)
	}
	reps := topo.Repartitions()
	if len(reps) == 0 {
		t.Fatal("the aggregate by customer got no repartition")
	}
	g := layoutGraph(topo, snapshot{})
	for _, rep := range reps {
		var kinds []string
		for _, n := range g.Nodes {
			if n.Title == rep {
				kinds = append(kinds, n.Kind)
			}
		}
		if len(kinds) != 1 || kinds[0] != "repartition" {
			t.Errorf("%s drawn as %v, want once as a repartition", rep, kinds)
		}
	}
}
