package broker

import (
	"errors"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// saveAutoCreatedTopics makes the topics that clients create by asking for
// them (a metadata request that allows auto-creation) survive a kill -9.
//
// kfake creates such a topic in memory and saves the list of topics only when
// it stops cleanly, so after a kill -9 the topic is unknown and its records
// are lost. A topic created with CreateTopic is saved at once. So before kfake
// answers a metadata request that may auto-create, this creates each topic it
// names that was not seen before with CreateTopic (default partitions and
// configs, as kfake's auto-creation would), then lets kfake answer as usual:
// the topic exists by then. (kfake runs a control function in a goroutine of
// its own and serves CreateTopic while it waits for it.) The control is added
// right after the cluster starts to listen: a request in between still gets
// kfake's own auto-creation.
func saveAutoCreatedTopics(c *kfake.Cluster) {
	var mu sync.Mutex
	known := map[string]bool{} // topics that exist (or existed: see DeleteTopics below)
	c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mr, ok := req.(*kmsg.MetadataRequest)
		if !ok || !mr.AllowAutoTopicCreation {
			return nil, nil, false
		}
		var create []string
		mu.Lock()
		for _, t := range mr.Topics {
			if t.Topic != nil && *t.Topic != "" && !known[*t.Topic] {
				create = append(create, *t.Topic)
			}
		}
		mu.Unlock()
		if len(create) == 0 {
			return nil, nil, false
		}
		for _, name := range create {
			// An invalid name fails here and again in kfake's answer,
			// which reports it to the client.
			if err := c.CreateTopic(name, -1, nil); err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
				mu.Lock()
				known[name] = true
				mu.Unlock()
			}
		}
		return nil, nil, false // kfake answers
	})
	// A deleted topic may be auto-created again: forget what is known.
	c.ControlKey(int16(kmsg.DeleteTopics), func(kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		clear(known)
		mu.Unlock()
		return nil, nil, false
	})
}
