package engine

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/topology"
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
	return partitioner{manual: changelogTopics(topo), def: kgo.StickyKeyPartitioner(nil)}
}

// changelogTopics is the set of the topology's changelog topics.
func changelogTopics(topo *topology.Topology) map[string]bool {
	set := map[string]bool{}
	for _, s := range topo.Stores() {
		set[s.Changelog] = true
	}
	return set
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if p.manual[topic] {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.def.ForTopic(topic)
}
