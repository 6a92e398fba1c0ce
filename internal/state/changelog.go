package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/veltrix/veltrix/internal/topicwait"
	"github.com/veltrix/veltrix/pkg/diag"
)

// EnsureChangelogs makes sure every changelog topic exists with its partition
// count (topic -> partitions: the partition count of the store's input) and
// cleanup.policy=compact. Missing topics are created with the cluster's
// default replication factor; existing ones are validated. Every topic with
// the wrong partition count, or whose cleanup policy does not include
// compact, is a diag.ChangelogInvalid (VX4003) problem; all of them are
// returned together as a diag.List. Failing requests are returned wrapped.
//
// A cleanup policy of "compact,delete" is accepted (windowed stores may want
// old windows to expire), "delete" alone is not: it would lose state.
func EnsureChangelogs(ctx context.Context, adm *kadm.Client, topics map[string]int32) error {
	if len(topics) == 0 {
		return nil
	}
	names := make([]string, 0, len(topics))
	for t := range topics {
		names = append(names, t)
	}
	slices.Sort(names)

	details, err := adm.ListTopics(uncached(ctx), names...)
	if err != nil {
		return fmt.Errorf("state: list changelog topics: %w", err)
	}
	// Partition counts of the topics, from the listing or, for topics
	// created here, from the create response (metadata may lag behind a
	// creation for a few seconds).
	parts := make(map[string]int32, len(names))
	var existing, created []string
	compact := "compact"
	for _, name := range names {
		d, ok := details[name]
		if ok && d.Err == nil {
			parts[name] = int32(len(d.Partitions))
			existing = append(existing, name)
			continue
		}
		if ok && !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("state: describe changelog %s: %w", name, d.Err)
		}
		resp, err := adm.CreateTopic(ctx, topics[name], -1, map[string]*string{"cleanup.policy": &compact}, name)
		switch {
		case errors.Is(err, kerr.TopicAlreadyExists):
			// Another instance created it meanwhile: validate it.
			created = append(created, name)
			existing = append(existing, name)
		case err != nil:
			return fmt.Errorf("state: create changelog %s: %w", name, err)
		default:
			created = append(created, name)
			parts[name] = cmp.Or(resp.NumPartitions, topics[name])
		}
	}
	// A restore's ListOffsets needs the partitions' leaders (see topicwait).
	listed, err := topicwait.Led(ctx, adm, 30*time.Second, created...)
	if err != nil {
		return fmt.Errorf("state: changelogs: %w", err)
	}
	maps.Copy(parts, listed)
	configs, err := describeKnown(ctx, adm, 30*time.Second, existing...)
	if err != nil {
		return fmt.Errorf("state: describe changelog configs: %w", err)
	}
	var problems diag.List
	for _, name := range names {
		if got, want := parts[name], topics[name]; got != want {
			problems.Add((&diag.Error{
				Code:    diag.ChangelogInvalid,
				Message: fmt.Sprintf("changelog topic %q has %d partitions, the store's input has %d", name, got, want),
			}).With(fmt.Sprintf("%d partitions", want), fmt.Sprintf("%d partitions", got)).
				WithHint("a changelog must have as many partitions as its input; if the input's partition count changed, the store must be rebuilt: stop the app, delete %q and the state dir, and reprocess the input", name))
		}
		if !slices.Contains(existing, name) {
			continue // created here, compacted
		}
		rc, err := configs.On(name, nil)
		if err != nil || rc.Err != nil {
			return fmt.Errorf("state: describe config of changelog %s: %w", name, errors.Join(err, rc.Err))
		}
		policy := "delete" // Kafka's default
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" && c.Value != nil {
				policy = *c.Value
			}
		}
		if !slices.Contains(strings.Split(strings.ReplaceAll(policy, " ", ""), ","), "compact") {
			problems.Add((&diag.Error{
				Code:    diag.ChangelogInvalid,
				Message: fmt.Sprintf("changelog topic %q has cleanup.policy=%s, so old state would be deleted", name, policy),
			}).With("cleanup.policy=compact", "cleanup.policy="+policy).
				WithHint("set cleanup.policy=compact on %q, e.g. kafka-configs --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact", name, name))
		}
	}
	return problems.Err()
}

// describeKnown describes the topics' configs, asking again (for up to
// wait) while a broker answers that it does not know one of them yet: in a
// cluster of several brokers, one learns of a topic another just created a
// moment later.
func describeKnown(ctx context.Context, adm *kadm.Client, wait time.Duration, topics ...string) (kadm.ResourceConfigs, error) {
	deadline := time.Now().Add(wait)
	for {
		configs, err := adm.DescribeTopicConfigs(ctx, topics...)
		if err != nil {
			return nil, err
		}
		unknown := slices.ContainsFunc(configs, func(rc kadm.ResourceConfig) bool {
			return errors.Is(rc.Err, kerr.UnknownTopicOrPartition)
		})
		if !unknown || time.Now().After(deadline) {
			return configs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// uncached makes kadm's metadata requests go to the broker instead of the
// client's metadata cache (which may hold a topic as missing for up to
// MetadataMinAge, 5 s, after it was created): kadm bypasses the cache when
// authorized operations are requested.
func uncached(ctx context.Context) context.Context { return kadm.WithAuthorizedOps(ctx) }
