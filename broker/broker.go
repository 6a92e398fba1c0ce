// Package broker runs an embedded, single-node Kafka-protocol broker (kfake)
// for development, demos and tests. It is not a production broker: production
// runs on Apache Kafka, Redpanda or any Kafka-protocol cluster.
//
// The embedded broker auto-creates topics, can persist its log to a directory,
// and never compacts on its own: kfake's compaction ignores the last stable
// offset and could drop committed values while a transaction is open, so
// compacted topics (changelogs) are kept whole.
//
// With a data dir the broker survives a kill -9: before it listens, it
// checks the log for transactions that the crash left without a commit or
// abort marker and writes an ABORT marker for each (recover.go explains why
// kfake alone gets them wrong). Such a transaction's records stay hidden
// from read_committed consumers, the transaction's producer is fenced, and
// later transactions of the same producer read as they were committed. The
// check reads the whole log once per start. What it cannot repair is a kill
// inside kfake's commit of a transaction (its markers are written one
// partition after the other, then its consumer offsets, with no record of the
// decision): that transaction ends committed on some partitions, aborted on
// the others, and its offsets are lost (docs/chaos.md, R4).
//
// A topic that a client creates by asking for it (auto-creation) is saved at
// once, so a kill -9 does not lose it either (autocreate.go).
package broker

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

type options struct {
	listen     string
	dataDir    string
	partitions int
	seedTopics []string
	log        *slog.Logger
}

// Option configures Start.
type Option func(*options)

// WithListen sets the address to listen on (default "127.0.0.1:9092"; port 0
// picks a free port).
func WithListen(addr string) Option { return func(o *options) { o.listen = addr } }

// WithDataDir persists the broker's log and group state in dir, reloaded on the
// next start (default: in memory only).
func WithDataDir(dir string) Option { return func(o *options) { o.dataDir = dir } }

// WithPartitions sets the partition count of auto-created topics (default 6).
func WithPartitions(n int) Option { return func(o *options) { o.partitions = n } }

// WithTopics creates these topics at start with the default partition count.
func WithTopics(topics ...string) Option {
	return func(o *options) { o.seedTopics = append(o.seedTopics, topics...) }
}

// WithLogger sets where the broker logs its crash recovery (default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// neverCompact is kfake's compaction interval in ms: about a hundred years.
const neverCompact = "3153600000000"

// Start starts a broker.
func Start(opts ...Option) (*Broker, error) {
	o := options{listen: "127.0.0.1:9092", partitions: 6, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	if o.partitions < 1 {
		return nil, fmt.Errorf("start broker: partitions must be at least 1, got %d", o.partitions)
	}
	host, portStr, err := net.SplitHostPort(o.listen)
	if err != nil {
		return nil, fmt.Errorf("start broker: listen address %q: %w", o.listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("start broker: listen address %q: bad port", o.listen)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	// The options the crash recovery's private cluster shares.
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(o.partitions),
		kfake.BrokerConfigs(map[string]string{"log.cleaner.backoff.ms": neverCompact}),
	}
	if o.dataDir != "" {
		if err := recoverTransactions(o.dataDir, kopts, o.log); err != nil {
			return nil, fmt.Errorf("start broker: %w", err)
		}
		kopts = append(kopts, kfake.DataDir(o.dataDir))
	}
	kopts = append(kopts,
		kfake.Ports(port),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
	)
	if len(o.seedTopics) > 0 {
		kopts = append(kopts, kfake.SeedTopics(int32(o.partitions), o.seedTopics...))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start broker on %s: %w", o.listen, err)
	}
	if o.dataDir != "" {
		saveAutoCreatedTopics(c)
	}
	return &Broker{cluster: c, addr: c.ListenAddrs()[0]}, nil
}

// Addr is the host:port clients dial.
func (b *Broker) Addr() string { return b.addr }

// Cluster exposes the underlying kfake cluster (for fault injection in tests).
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker, flushing its data dir if it has one.
func (b *Broker) Close() { b.cluster.Close() }
