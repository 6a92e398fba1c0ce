package engine

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/state"
	"github.com/veltrix/veltrix/topology"
)

// partitioner sends changelog records to the partition they name (the task's)
// and every other record where franz-go's default partitioner would: by the
// murmur2 hash of the key like the Java client, so repartitioned keys land on
// the task that state.PartitionFor expects.
type partitioner struct {
	manual map[string]bool
	def    kgo.Partitioner
}

func newPartitioner(topo *topology.Topology) kgo.Partitioner {
	p := partitioner{manual: map[string]bool{}, def: kgo.StickyKeyPartitioner(nil)}
	for _, s := range storeNames(topo) {
		p.manual[state.ChangelogTopic(topo.AppID, s)] = true
	}
	return p
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.def.ForTopic(topic)
}
