// Package engine runs a topology over a Kafka consumer group: it polls the
// input topics, runs each record through the rules, produces the outputs and
// commits, either exactly once (Kafka transactions: outputs and consumed
// offsets in one transaction per commit interval) or at least once
// (idempotent producer, offsets committed after outputs are acknowledged).
//
// Back-pressure: the loop processes what one poll returns (at most
// processing.max_poll_records) before it polls again, and a full producer
// buffer blocks processing, so buffered work stays bounded whatever the input
// rate: the client stops fetching once its fetch buffers are full.
package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/clustercheck"
	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/diskspace"
	"github.com/veltrix/veltrix/internal/group"
	"github.com/veltrix/veltrix/internal/kafkaconn"
	"github.com/veltrix/veltrix/internal/logging"
	"github.com/veltrix/veltrix/internal/metrics"
	"github.com/veltrix/veltrix/internal/state"
	"github.com/veltrix/veltrix/internal/topology"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// fetchMaxBytes bounds one fetch response (all partitions of one broker).
// Compressed JSON decodes to several times its size, plus about 170 bytes
// of kgo.Record per record: 1 MiB is some 5 MB of records in memory per
// buffered fetch. The client sends a broker its next fetch once the last
// one's records are polled, and the loop polls as soon as the pipeline has
// room, so small responses keep fetching ahead without holding memory;
// larger ones were no faster (docs/benchmarks.md).
const fetchMaxBytes = 1 << 20

// ErrClusterCheck marks a failure of the checks against the cluster at start
// (missing input topics, co-partitioning, changelog topics): the instance
// refused to start, with the problems (a diag.List) wrapped.
var ErrClusterCheck = errors.New("cluster check failed")

// ErrClusterUnreachable marks a start that gave up because the cluster could
// not be reached within kafka.startup_timeout (veltrix run exits with 3).
var ErrClusterUnreachable = errors.New("cannot reach the cluster")

// Engine runs one instance of an application.
type Engine struct {
	cfg  *config.Config
	topo *topology.Topology // its shape: sources, stores, repartitions (fixed while running)
	// rules processes records: topo until a Reload applies another
	// topology of the same shape.
	rules   atomic.Pointer[topology.Topology]
	reloads reloads
	log     *slog.Logger
	metrics *metrics.Metrics
	obs     *outcomes // per-record metrics, cached per rule
	now     func() time.Time
	extra   []kgo.Opt

	lagEvery time.Duration // WithLagInterval; see observe.go
	live     liveness      // loop beats for /livez; see live.go
	disk     diskGuard     // pauses processing while the state disk is nearly full; see disk.go

	ready          atomic.Bool
	lastBrokerRead atomic.Int64 // unix ns of the last answer from a broker (brokerSeen)
	ntasks         atomic.Int32 // tasks (partition numbers) of the topology
	tasks          atomic.Pointer[tasks]
	advertise      string // HTTP address advertised to the group
	purgeEvery     time.Duration
	// maxTxnTimeout is the brokers' transaction.max.timeout.ms, as prepare
	// read it (0: the cluster did not say).
	maxTxnTimeout time.Duration

	ownersMu     sync.Mutex
	ownersClient *kgo.Client
	ownersLookup *group.Owners

	progress progress // stream time and restore progress per task, for the console

	statsMu  sync.Mutex
	stats    Stats
	produced atomic.Int64 // Stats.Produced, counted per record
}

// Stats are running totals, for progress displays.
type Stats struct {
	Consumed, Produced, Committed, Aborted int64
}

// Option configures an Engine.
type Option func(*Engine)

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// WithMetrics reports into m (default: metrics on a private registry).
func WithMetrics(m *metrics.Metrics) Option { return func(e *Engine) { e.metrics = m } }

// WithClock sets the processing-time clock (default time.Now).
func WithClock(now func() time.Time) Option { return func(e *Engine) { e.now = now } }

// WithAdvertisedAddr sets the HTTP address this instance advertises to the
// other members of its group, for interactive queries (default none).
func WithAdvertisedAddr(addr string) Option { return func(e *Engine) { e.advertise = addr } }

// SetAdvertisedAddr sets the advertised HTTP address (see
// WithAdvertisedAddr) once it is known; call it before Run.
func (e *Engine) SetAdvertisedAddr(addr string) { e.advertise = addr }

// WithClientOpts adds franz-go client options after Veltrix's own (tests use
// it for shorter timeouts and fault injection).
func WithClientOpts(opts ...kgo.Opt) Option {
	return func(e *Engine) { e.extra = append(e.extra, opts...) }
}

// New prepares an engine; it connects nothing until Run.
func New(cfg *config.Config, topo *topology.Topology, opts ...Option) *Engine {
	e := &Engine{cfg: cfg, topo: topo, log: slog.Default(), now: time.Now, purgeEvery: defaultPurgeInterval,
		disk: diskGuard{free: diskspace.Free}}
	e.rules.Store(topo)
	for _, o := range opts {
		o(e)
	}
	if e.metrics == nil {
		e.metrics = metrics.New(prometheus.NewRegistry())
	}
	e.obs = newOutcomes(e.metrics)
	return e
}

// Ready reports whether the instance has joined its group, restored the
// tasks it owns (an instance given none, when there are more instances than
// partitions, is ready too), and has had an answer from a broker within
// http.ready_timeout.
func (e *Engine) Ready() bool {
	if !e.ready.Load() {
		return false
	}
	limit := e.cfg.HTTP.ReadyTimeout
	return limit <= 0 || e.now().Sub(time.Unix(0, e.lastBrokerRead.Load())) < limit
}

// markReady sets the instance ready once the client has joined its group
// (any generation, with or without partitions); the loops call it after a
// poll, when the tasks assigned so far are restored.
func (e *Engine) markReady(cl *kgo.Client) {
	if _, gen := cl.GroupMetadata(); gen >= 0 {
		e.ready.Store(true)
	}
}

// Stats returns running totals.
func (e *Engine) Stats() Stats {
	e.statsMu.Lock()
	defer e.statsMu.Unlock()
	s := e.stats
	s.Produced = e.produced.Load()
	return s
}

func (e *Engine) addStats(f func(*Stats)) {
	e.statsMu.Lock()
	f(&e.stats)
	e.statsMu.Unlock()
}

// Run processes until ctx is cancelled (then it finishes the open transaction
// or commit, leaves the group and returns nil) or a fatal error occurs: a rule
// with on_error: fail met a failing event, or the client entered a state it
// cannot recover from.
func (e *Engine) Run(ctx context.Context) error {
	inputs := e.topo.InputTopics()
	if len(inputs) == 0 {
		return errors.New("run: no rule reads a topic")
	}
	base, err := kafkaconn.Options(e.cfg.Kafka)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	// The client's own warnings and errors, in this instance's log.
	base = append(base, kgo.WithLogger(logging.Kgo(e.log, slog.LevelWarn)))
	ntasks, err := e.prepareRetrying(ctx, base)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ErrClusterUnreachable) {
			return nil // stopped while waiting for the cluster
		}
		return err
	}
	e.ntasks.Store(ntasks)
	db, err := openDB(e)
	if err != nil {
		return err
	}
	ts := newTasks(e, db, e.topo.StoreNames(), state.RestoreOptions{
		Kafka: base, // the restore consumer sizes its own fetches
		// A dead owner's open transaction on a changelog ends when the
		// broker aborts it, after the transaction timeout (checked every
		// 10 s by default).
		SettleTimeout: e.cfg.Processing.TransactionTimeout + 30*time.Second,
		// Tasks restore in parallel (tasks.openAll): the gauge is the
		// sum over the tasks of the instance.
		TaskProgress: func(p int32, store string, remaining int64) {
			now := e.now()
			e.live.beat(now)
			left := e.progress.restore(p, store, remaining, now)
			e.metrics.RestoreRemaining.WithLabelValues(store).Set(float64(left))
		},
	})
	e.tasks.Store(ts)
	countCtx, stopCount := context.WithCancel(ctx)
	if db != nil {
		go e.countKeysEvery(countCtx, 15*time.Second)
	}
	go e.trackLag(countCtx, base) // veltrix_consumer_lag of the owned partitions
	defer func() {
		e.live.stop()
		stopCount()
		e.tasks.Store(nil)
		e.closeOwners()
		ts.close()
	}()
	member := groupInstanceID(e.cfg)
	opts := append(slices.Clone(base),
		kgo.ConsumerGroup(e.cfg.App.ID),
		kgo.InstanceID(member),
		kgo.ConsumeTopics(inputs...),
		kgo.Balancers(group.Balancer(e.advertise, group.OnSync(ts.onSynced))),
		kgo.RecordPartitioner(newPartitioner(e.topo)),
		// The rules keep every output within kafka.max_record_bytes (see
		// topology.RecordSize); a batch may hold one such record.
		kgo.ProducerBatchMaxBytes(int32(e.cfg.Kafka.MaxRecordBytes+1024)),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Fetched records wait in the client until polled: bounding one
		// fetch bounds that backlog (franz-go's default is 50 MiB, which
		// with compression decodes to several times that).
		kgo.FetchMaxBytes(fetchMaxBytes),
		// A quarter per partition: each response then carries records of
		// several partitions, that is of several tasks, which the workers
		// process in parallel (with the default, one response was mostly
		// one partition, and one core did the work).
		kgo.FetchMaxPartitionBytes(fetchMaxBytes/4),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.WithHooks(brokerSeen{e}), // and each session's client its own metrics.KafkaHooks
		kgo.ClientID("veltrix-"+e.cfg.App.ID),
		kgo.SessionTimeout(e.cfg.Kafka.SessionTimeout),
		kgo.HeartbeatInterval(min(3*time.Second, e.cfg.Kafka.SessionTimeout/3)),
		kgo.RebalanceTimeout(e.cfg.Kafka.RebalanceTimeout),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			e.metrics.Rebalances.Inc()
			e.log.Info("partitions assigned", "partitions", m)
		}),
	)
	e.log.Info("joining group", "group", e.cfg.App.ID, "instance_id", member)
	if e.cfg.Processing.Guarantee == config.AtLeastOnce {
		err = e.runAtLeastOnce(ctx, opts, ts)
	} else {
		err = e.runExactlyOnce(ctx, opts, ts)
	}
	if err == nil {
		e.leaveGroup(base, member)
	}
	var re *topology.RuleError
	if errors.As(err, &re) {
		e.log.Error("record failed; stopping (on_error: fail)", "rule", re.Rule, "code", re.Err.Code,
			"topic", re.Topic, "partition", re.Partition, "offset", re.Offset, "err", re.Err)
	}
	return err
}

// countKeysEvery refreshes the state_store_keys gauge until ctx ends.
func (e *Engine) countKeysEvery(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.countKeys()
		}
	}
}

// Startup backoff: the first retry waits startupFirstDelay, each next one
// twice as long, at most startupMaxDelay.
const (
	startupFirstDelay = 250 * time.Millisecond
	startupMaxDelay   = 5 * time.Second
)

// prepareRetrying runs prepare until the cluster answers: while every problem
// is an unreachable cluster (VX4005) it retries with backoff, logging each
// attempt, until kafka.startup_timeout has passed, and then returns
// ErrClusterUnreachable. Any other problem (a missing input topic) returns
// at once, as ErrClusterCheck.
func (e *Engine) prepareRetrying(ctx context.Context, base []kgo.Opt) (int32, error) {
	deadline := time.Now().Add(e.cfg.Kafka.StartupTimeout)
	delay := startupFirstDelay
	for attempt := 1; ; attempt++ {
		n, err := e.prepare(ctx, base)
		if err == nil || !unreachable(err) {
			return n, err
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return 0, fmt.Errorf("%w within kafka.startup_timeout (%v, %d attempts): %w",
				ErrClusterUnreachable, e.cfg.Kafka.StartupTimeout, attempt, diag.AsList(err))
		}
		wait := min(delay, left)
		e.log.Warn("cluster not reachable; retrying", "brokers", e.cfg.Kafka.Brokers, "attempt", attempt,
			"retry_in", wait, "gives_up_in", left.Round(time.Millisecond), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("%w: stopped while retrying: %w", ErrClusterUnreachable, diag.AsList(err))
		case <-t.C:
		}
		delay = min(2*delay, startupMaxDelay)
	}
}

// unreachable reports whether err is a failed cluster check whose every
// problem is an unreachable cluster (VX4005), which a retry may cure.
func unreachable(err error) bool {
	if !errors.Is(err, ErrClusterCheck) {
		return false
	}
	list := diag.AsList(err)
	if len(list) == 0 {
		return false
	}
	for _, p := range list {
		if p.Code != diag.ClusterUnreachable {
			return false
		}
	}
	return true
}

// prepare checks the topology against the cluster (input topics exist,
// co-partitioning holds), creates missing output topics and the stores'
// changelog topics (validating existing ones), so that a mismatch stops the
// instance before it consumes anything. It returns the number of tasks.
func (e *Engine) prepare(ctx context.Context, base []kgo.Opt) (int32, error) {
	cl, err := kgo.NewClient(append(slices.Clone(base), e.extra...)...)
	if err != nil {
		return 0, fmt.Errorf("run: kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	res, err := clustercheck.Prepare(ctx, adm, e.cfg, e.topo)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrClusterCheck, err)
	}
	n := res.Tasks(e.topo)
	e.maxTxnTimeout = res.MaxTxnTimeout
	if stores := e.topo.Stores(); len(stores) > 0 {
		changelogs := map[string]int32{}
		for _, s := range stores {
			changelogs[s.Changelog] = res.MaxPartitions(s.Topics)
		}
		if err := state.EnsureChangelogs(ctx, adm, changelogs); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrClusterCheck, err)
		}
	}
	return n, nil
}

// TransactionalID is the exactly-once producer's transactional id: the app
// id and the group instance id. It follows the member, not the state dir: an
// instance that comes back without its state (a lost disk) fences the
// transaction its dead run left open at once, where a new id would leave it
// to processing.transaction_timeout and hold every read_committed reader of
// its partitions until then. Both ids are unique in the group for the same
// reason: one member, one producer.
func TransactionalID(cfg *config.Config) string {
	return cfg.App.ID + "-" + groupInstanceID(cfg)
}

// groupInstanceID is the static membership id: app.instance_id, else the
// host name and a hash of the state dir's absolute path, so that a restart
// on the same host with the same state (and only that) is the same member.
func groupInstanceID(cfg *config.Config) string {
	if cfg.App.InstanceID != "" {
		return cfg.App.InstanceID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "veltrix"
	}
	dir, err := filepath.Abs(cfg.App.StateDir)
	if err != nil {
		dir = cfg.App.StateDir
	}
	sum := sha256.Sum256([]byte(dir))
	return host + "-" + hex.EncodeToString(sum[:4])
}

// leaveGroup removes this static member from the group after a clean stop:
// a static member's client does not leave on close (a restart would get its
// partitions back), so without it the other instances would wait out the
// session timeout before taking over.
func (e *Engine) leaveGroup(base []kgo.Opt, id string) {
	cl, err := kgo.NewClient(append(slices.Clone(base), e.extra...)...)
	if err != nil {
		return
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).LeaveGroup(ctx, kadm.LeaveGroup(e.cfg.App.ID).InstanceIDs(id).Reason("veltrix stopped"))
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		e.log.Warn("leave group", "instance_id", id, "err", err)
	}
}

// task is what steps see while the engine processes one record: Emit queues
// an output for the open transaction (or the at-least-once producer), which
// the pipeline produces when the batch ends; Store and StreamTime are those
// of the record's task.
type task struct {
	e *Engine
	// pending are the outputs of the batch under way, produced together
	// when it ends (see pipeline.emitted). Each batch's records are one
	// allocation, which the client holds until they are produced, made at
	// the batch's first output for batchLen (its input records): most
	// rules write one output per input, and a slice grown record by record
	// copies them each time.
	pending  []kgo.Record
	batchLen int
	current  *kgo.Record   // the record being processed
	pt       *partTask     // its task
	obs      *taskOutcomes // its per-record metrics
}

// Emit queues an output. Like Kafka Streams, outputs carry the timestamp of
// the input record they derive from (its event time), so downstream latency
// is measured from the original event.
//
// A record dated further ahead of the clock than
// processing.max_event_time_skew (it fails with VX5008, and is the only kind
// that does not move stream time) gives its DLQ record the time of now
// instead: Apache Kafka refuses records dated over an hour ahead
// (message.timestamp.after.max.ms), which would fail the transaction.
func (t *task) Emit(o processors.Output) {
	ts := t.current.Timestamp
	if ts.After(t.pt.streamTime) {
		if now := t.e.now(); t.e.topo.AheadOfClock(ts, now) {
			ts = now
		}
	}
	if t.pending == nil {
		t.pending = make([]kgo.Record, 0, max(t.batchLen, 1))
	}
	t.pending = append(t.pending, kgo.Record{Topic: o.Topic, Key: o.Key, Value: o.Value, Headers: o.Headers, Timestamp: ts})
}

func (t *task) Now() time.Time { return t.e.now() }

func (t *task) Store(name string) processors.Store {
	if t.pt.st == nil {
		return nil
	}
	return t.pt.st.Store(name)
}

func (t *task) StreamTime() time.Time { return t.pt.streamTime }

// poll polls for the loop of either guarantee: it waits for room in the
// pipeline, then polls until records come, the commit interval is up or
// tasks are assigned (which the loop opens next);
// openSince is when the open transaction (or commit interval) began, zero
// when nothing is open.
func (e *Engine) poll(ctx context.Context, pl *pipeline, pollRecords func(context.Context, int) kgo.Fetches, openSince time.Time) (kgo.Fetches, error) {
	e.live.beat(e.now())
	p := e.cfg.Processing
	wait := p.CommitInterval
	if !openSince.IsZero() {
		wait = max(time.Until(openSince.Add(p.CommitInterval)), time.Millisecond)
	}
	pl.room(2 * p.MaxPollRecords)
	pollCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	pollCtx, done := pl.ts.pollContext(pollCtx)
	fetches := pollRecords(pollCtx, p.MaxPollRecords)
	done()
	if err := e.fetchErrors(fetches); err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	return fetches, nil
}

// workers is how many tasks are processed at once.
func (e *Engine) workers() int {
	if n := e.cfg.Processing.Workers; n > 0 {
		return n
	}
	return runtime.GOMAXPROCS(0)
}

// fetchErrors logs fetch errors that are not the context ending; it returns
// a fatal one (the client was closed).
func (e *Engine) fetchErrors(fetches kgo.Fetches) error {
	var fatal error
	fetches.EachError(func(topic string, partition int32, err error) {
		switch {
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		case errors.Is(err, kgo.ErrClientClosed):
			fatal = err
		default:
			e.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
		}
	})
	return fatal
}

// brokerSeen is a client hook that records when a broker last answered:
// fetches long-poll and heartbeats run every few seconds, so an answer
// within http.ready_timeout is evidence the brokers are there, busy or idle.
type brokerSeen struct{ e *Engine }

func (h brokerSeen) OnBrokerRead(_ kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		h.e.lastBrokerRead.Store(h.e.now().UnixNano())
	}
}

// sampleEvery is how often a record's timestamp is kept to observe
// end-to-end latency at commit.
const sampleEvery = 64

// latencySampler keeps a sample of record timestamps of the open transaction.
type latencySampler struct {
	n  int
	ts []time.Time
}

func (s *latencySampler) add(fetches kgo.Fetches) {
	// Visit only the sampled records: every sampleEvery-th across the
	// transaction, counting on from the previous poll.
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		first := (sampleEvery - s.n%sampleEvery) % sampleEvery
		for i := first; i < len(p.Records); i += sampleEvery {
			s.ts = append(s.ts, p.Records[i].Timestamp)
		}
		s.n += len(p.Records)
	})
}

func (s *latencySampler) observe(m *metrics.Metrics, at time.Time) {
	for _, t := range s.ts {
		m.EndToEndLatency.Observe(at.Sub(t).Seconds())
	}
	s.reset()
}

func (s *latencySampler) reset() { s.n, s.ts = 0, s.ts[:0] }
