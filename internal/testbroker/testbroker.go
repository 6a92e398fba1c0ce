// Package testbroker gives integration tests a Kafka cluster to talk to:
// Apache Kafka at the address in VELTRIX_TEST_KAFKA when it is set (make
// test-kafka starts one with deploy/kafka/kafka.sh), else a fresh in-process
// kfake cluster per test.
//
// Both behave like a production cluster where it matters to tests: topics are
// not created by producing to them (auto-creation is off), so a test declares
// the topics it reads and writes with WithTopics, and Veltrix creates the
// topics it owns itself.
//
// On Apache Kafka the cluster is shared, so New takes it for the test alone:
// it holds a lock (a file lock per cluster address, so tests of several
// packages run one at a time even when go test runs packages in parallel),
// and starts from an empty cluster: every topic and consumer group of an
// earlier test is deleted first. Tests therefore keep their fixed topic
// names and application ids on both brokers.
package testbroker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvKafka names the environment variable with the address of the Apache
// Kafka cluster to test against.
const EnvKafka = "VELTRIX_TEST_KAFKA"

// Broker is the cluster of one test.
type Broker struct {
	addrs []string
	fake  *kfake.Cluster
	adm   *kadm.Client
}

type options struct {
	topics []topic
	fake   []kfake.Opt
}

type topic struct {
	name       string
	partitions int32
	configs    map[string]*string
}

// Option configures New.
type Option func(*options)

// WithTopics creates the topics with the given partition count before the
// test starts.
func WithTopics(partitions int32, names ...string) Option {
	return func(o *options) {
		for _, n := range names {
			o.topics = append(o.topics, topic{name: n, partitions: partitions})
		}
	}
}

// WithTopicConfig creates one topic with topic-level configs (such as
// cleanup.policy=compact).
func WithTopicConfig(name string, partitions int32, configs map[string]string) Option {
	return func(o *options) {
		c := make(map[string]*string, len(configs))
		for k, v := range configs {
			c[k] = &v
		}
		o.topics = append(o.topics, topic{name: name, partitions: partitions, configs: c})
	}
}

// WithFake adds options for the in-process cluster (fault injection, group
// timeouts); they do not apply to Apache Kafka.
func WithFake(opts ...kfake.Opt) Option {
	return func(o *options) { o.fake = append(o.fake, opts...) }
}

// Kafka reports whether tests run against Apache Kafka (VELTRIX_TEST_KAFKA).
func Kafka() bool { return os.Getenv(EnvKafka) != "" }

// New returns the test's cluster with the topics asked for; it is cleaned up
// with the test.
func New(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	b := &Broker{}
	if addr := os.Getenv(EnvKafka); addr != "" {
		b.addrs = strings.Split(addr, ",")
		lock(t, addr)
	} else {
		fake, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, o.fake...)...)
		if err != nil {
			t.Fatalf("testbroker: start kfake: %v", err)
		}
		t.Cleanup(fake.Close)
		b.fake, b.addrs = fake, fake.ListenAddrs()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...))
	if err != nil {
		t.Fatalf("testbroker: client: %v", err)
	}
	t.Cleanup(cl.Close)
	b.adm = kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b.fake == nil {
		if err := b.reset(ctx); err != nil {
			t.Fatalf("testbroker: empty the cluster at %s: %v", b.Addr(), err)
		}
	}
	for _, tp := range o.topics {
		if err := b.createTopic(ctx, tp); err != nil {
			t.Fatalf("testbroker: %v", err)
		}
	}
	return b
}

// Addr is the cluster's bootstrap address list, comma separated.
func (b *Broker) Addr() string { return strings.Join(b.addrs, ",") }

// Addrs are the cluster's bootstrap addresses.
func (b *Broker) Addrs() []string { return b.addrs }

// Fake is the in-process cluster, or nil on Apache Kafka.
func (b *Broker) Fake() *kfake.Cluster { return b.fake }

// Admin is an admin client of the cluster, closed with the test.
func (b *Broker) Admin() *kadm.Client { return b.adm }

// CreateTopics creates topics during a test.
func (b *Broker) CreateTopics(t testing.TB, partitions int32, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range names {
		if err := b.createTopic(ctx, topic{name: n, partitions: partitions}); err != nil {
			t.Fatalf("testbroker: %v", err)
		}
	}
}

// createTopic creates a topic and waits until its partitions have leaders.
// A name still being deleted by reset is retried.
func (b *Broker) createTopic(ctx context.Context, tp topic) error {
	for {
		resp, err := b.adm.CreateTopic(ctx, tp.partitions, -1, tp.configs, tp.name)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) && b.fake != nil {
			break
		}
		if !errors.Is(err, kerr.TopicAlreadyExists) || ctx.Err() != nil {
			return fmt.Errorf("create topic %s: %w", tp.name, err)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("create topic %s: still being deleted: %w", tp.name, err)
		}
	}
	return b.waitTopics(ctx, func(d kadm.TopicDetails) bool {
		td, ok := d[tp.name]
		if !ok || td.Err != nil || int32(len(td.Partitions)) != tp.partitions {
			return false
		}
		for _, p := range td.Partitions {
			if p.Leader < 0 || p.Err != nil {
				return false
			}
		}
		return true
	}, tp.name)
}

// reset deletes every topic (but Kafka's own) and every consumer group, and
// waits until they are gone.
func (b *Broker) reset(ctx context.Context) error {
	// Each look deletes what it still sees: a topic an earlier test's engine
	// created just before it ended may reach the broker's metadata only
	// after the first look (Kafka acknowledges CreateTopics before its
	// brokers list the topic), and would otherwise never be deleted.
	for {
		topics, err := b.adm.ListTopics(kadm.WithAuthorizedOps(ctx))
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		var names []string
		for _, n := range topics.Names() {
			if !strings.HasPrefix(n, "__") {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			break
		}
		resp, err := b.adm.DeleteTopics(ctx, names...)
		if err != nil {
			return fmt.Errorf("delete topics: %w", err)
		}
		for _, r := range resp {
			// A topic already being deleted is unknown to a second delete.
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				return fmt.Errorf("delete topic %s: %w", r.Topic, r.Err)
			}
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("topics %v are still listed after their deletion: %w", names, err)
		}
	}
	// A group whose members were killed stays non-empty until their
	// sessions time out; its offsets went with the deleted topics, so it
	// is left to expire.
	groups, err := b.adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	if g := groups.Groups(); len(g) > 0 {
		if _, err := b.adm.DeleteGroups(ctx, g...); err != nil {
			return fmt.Errorf("delete groups: %w", err)
		}
	}
	return nil
}

// waitTopics polls the metadata of topics (every topic when none is named)
// until ok says yes. It asks the broker each time: kadm bypasses the client's
// metadata cache (which keeps a topic's state for up to 5 s) when
// authorized operations are requested.
func (b *Broker) waitTopics(ctx context.Context, ok func(kadm.TopicDetails) bool, topics ...string) error {
	for {
		d, err := b.adm.ListTopics(kadm.WithAuthorizedOps(ctx), topics...)
		if err == nil && ok(d) {
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("wait for topic metadata %v: %w", topics, err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// lock takes the cluster for this test: an exclusive file lock named after
// the address, released when the test ends.
func lock(t testing.TB, addr string) {
	t.Helper()
	name := strings.NewReplacer(":", "_", ",", "_", "/", "_").Replace(addr)
	path := filepath.Join(os.TempDir(), "veltrix-test-kafka-"+name+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("testbroker: lock %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("testbroker: lock %s: %v", path, err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	})
}
