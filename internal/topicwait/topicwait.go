// Package topicwait waits for topics to be usable after they were created.
//
// Apache Kafka answers CreateTopics once its controller has the topic; the
// brokers learn of it and elect the partitions' leaders a moment later, and
// until then a produce, fetch or ListOffsets finds no partition. (The dev
// broker has every topic at once, so only the real broker shows this.)
package topicwait

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// Led polls the brokers' metadata until every topic in names is listed with
// a leader for each of its partitions, for at most timeout, and returns the
// topics' partition counts. It asks the brokers each time: kadm bypasses the
// client's metadata cache (which may hold a topic as missing for up to 5 s)
// when authorized operations are requested.
func Led(ctx context.Context, adm *kadm.Client, timeout time.Duration, names ...string) (map[string]int32, error) {
	parts := make(map[string]int32, len(names))
	if len(names) == 0 {
		return parts, nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		details, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), names...)
		var missing []string
		for _, name := range names {
			if d, ok := details[name]; err == nil && ok && d.Err == nil && led(d) {
				parts[name] = int32(len(d.Partitions))
			} else {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			return parts, nil
		}
		select {
		case <-ctx.Done():
			return parts, fmt.Errorf("topics %v exist but have no leaders in the metadata: %w", missing, errors.Join(err, ctx.Err()))
		case <-tick.C:
		}
	}
}

// led reports whether every partition of a topic has a leader.
func led(d kadm.TopicDetail) bool {
	for _, p := range d.Partitions {
		if p.Err != nil || p.Leader < 0 {
			return false
		}
	}
	return len(d.Partitions) > 0
}
