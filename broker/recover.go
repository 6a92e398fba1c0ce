package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// Crash recovery of transactions.
//
// kfake writes a transaction's data batches to disk as they come and its
// commit or abort marker (a control batch) when the transaction ends. A
// transaction that was open when the process was killed has no marker on
// disk. kfake's restart treats it as aborted in memory (and fences its
// producer by bumping the epoch) but writes no marker, so the disk keeps
// saying "open". Two things then go wrong:
//
//  1. A read_committed consumer is told the transaction is aborted, and a
//     Kafka client skips that producer's transactional batches from the
//     transaction's first offset until it meets an abort marker of the same
//     producer. There is none, so the producer's next transactions on the
//     partition, committed ones included, are skipped too.
//  2. After a second crash kfake rebuilds its state from the segments and
//     pairs a producer's first unmatched batch with that producer's next
//     control batch, whatever its epoch: the crashed transaction is paired
//     with the commit of a later one and comes back as committed.
//
// recoverTransactions makes the disk say what kfake's memory already
// believes, before any client can connect: it opens the data dir in a
// private cluster (a listener on a free loopback port that only this code
// knows), reads every partition read_uncommitted from its log start to its
// high watermark, and finds each producer whose last transactional data
// batch comes after its last control batch. A transaction that is open on
// purpose (kept across a clean shutdown, which kfake restores) is left
// alone: DescribeProducers lists it. The private cluster is then closed
// cleanly, which persists the bumped producer epochs, and opened once more to
// write an ABORT marker (WriteTxnMarkers) for each unfinished transaction.
// kfake writes such a marker to disk unconditionally and adds no second
// in-memory abort entry for a transaction it already treats as aborted. A
// kill during this second phase is harmless: the markers not yet written are
// found again at the next start, and the epochs were saved by the first
// close.

// openTxn is a transaction on disk with data batches and no marker after them.
type openTxn struct {
	topic      string
	partition  int32
	producerID int64
	epoch      int16
}

// recoveryPartitionBytes and recoveryFetchBytes bound one scan fetch: per
// partition and per request.
const (
	recoveryPartitionBytes = 8 << 20
	recoveryFetchBytes     = 64 << 20
	recoveryTimeout        = 5 * time.Minute
)

// recoverTransactions writes an ABORT marker for every transaction that the
// log in dataDir leaves unfinished (see the comment above). It does nothing
// for an empty or missing dir. kopts are the cluster's options without its
// listener and data dir.
func recoverTransactions(dataDir string, kopts []kfake.Opt, log *slog.Logger) error {
	ents, err := os.ReadDir(dataDir)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(ents) == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("recover transactions: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), recoveryTimeout)
	defer cancel()

	start := time.Now()
	var open []openTxn
	var parts int
	err = withPrivateCluster(dataDir, kopts, func(cl *kgo.Client) error {
		var err error
		open, parts, err = findOpenTxns(ctx, cl)
		return err
	})
	if err != nil {
		return fmt.Errorf("recover transactions: scan %s: %w", dataDir, err)
	}
	if len(open) > 0 {
		err = withPrivateCluster(dataDir, kopts, func(cl *kgo.Client) error {
			return abortTxns(ctx, cl, open)
		})
		if err != nil {
			return fmt.Errorf("recover transactions: %w", err)
		}
		for _, o := range open {
			log.Info(fmt.Sprintf("recovered: aborted the unfinished transaction of producer %d on %s-%d", o.producerID, o.topic, o.partition),
				"producer_id", o.producerID, "epoch", o.epoch, "topic", o.topic, "partition", o.partition)
		}
	}
	log.Info("checked the log for unfinished transactions", "partitions", parts, "aborted", len(open), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// withPrivateCluster opens dataDir in a cluster that listens on a free
// loopback port, runs fn with a client of it, and closes the cluster cleanly
// (which saves its state to dataDir).
func withPrivateCluster(dataDir string, kopts []kfake.Opt, fn func(*kgo.Client) error) error {
	opts := append(slices.Clone(kopts), kfake.Ports(0), kfake.DataDir(dataDir))
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("open data dir: %w", err)
	}
	defer c.Close()
	// Fetch v12 and below name topics (v13 uses topic ids); kfake answers
	// both.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer cl.Close()
	return fn(cl)
}

// partScan is the scan state of one partition.
type partScan struct {
	topic     string
	partition int32
	offset    int64
	// last holds, per producer id, the epoch of its last transactional data
	// batch while no control batch followed it.
	last map[int64]int16
}

// findOpenTxns reads every partition from its log start to its high
// watermark and returns the unfinished transactions, leaving out those the
// cluster knows as open (restored after a clean shutdown), and the number of
// partitions read.
func findOpenTxns(ctx context.Context, cl *kgo.Client) ([]openTxn, int, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return nil, 0, fmt.Errorf("metadata: %w", err)
	}
	var todo []*partScan
	for _, t := range mresp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, 0, fmt.Errorf("metadata of topic %s: %w", *t.Topic, err)
		}
		for _, p := range t.Partitions {
			todo = append(todo, &partScan{topic: *t.Topic, partition: p.Partition, last: map[int64]int16{}})
		}
	}
	parts := len(todo)
	var all []*partScan
	all = append(all, todo...)
	for len(todo) > 0 {
		if todo, err = fetchRound(ctx, cl, todo); err != nil {
			return nil, 0, err
		}
	}

	var open []openTxn
	for _, ps := range all {
		for pid, epoch := range ps.last {
			open = append(open, openTxn{topic: ps.topic, partition: ps.partition, producerID: pid, epoch: epoch})
		}
	}
	if len(open) == 0 {
		return nil, parts, nil
	}
	active, err := activeProducers(ctx, cl, open)
	if err != nil {
		return nil, 0, err
	}
	open = slices.DeleteFunc(open, func(o openTxn) bool { return active[o.key()] })
	slices.SortFunc(open, func(a, b openTxn) int {
		switch {
		case a.topic != b.topic:
			if a.topic < b.topic {
				return -1
			}
			return 1
		case a.partition != b.partition:
			return int(a.partition - b.partition)
		case a.producerID < b.producerID:
			return -1
		case a.producerID > b.producerID:
			return 1
		}
		return 0
	})
	return open, parts, nil
}

type txnKey struct {
	topic      string
	partition  int32
	producerID int64
}

func (o openTxn) key() txnKey { return txnKey{o.topic, o.partition, o.producerID} }

// fetchRound fetches the next batches of every partition in todo and returns
// the partitions that have more to read.
func fetchRound(ctx context.Context, cl *kgo.Client, todo []*partScan) ([]*partScan, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = recoveryFetchBytes
	req.IsolationLevel = 0 // read_uncommitted: every batch, control batches included
	req.SessionID = 0
	req.SessionEpoch = -1 // a full fetch, no session
	byName := map[string]int{}
	scans := map[txnKey]*partScan{}
	for _, ps := range todo {
		i, ok := byName[ps.topic]
		if !ok {
			i = len(req.Topics)
			byName[ps.topic] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = ps.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = ps.partition
		rp.FetchOffset = ps.offset
		rp.CurrentLeaderEpoch = -1
		rp.LogStartOffset = -1
		rp.PartitionMaxBytes = recoveryPartitionBytes
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		scans[txnKey{ps.topic, ps.partition, 0}] = ps
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	var more []*partScan
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			ps := scans[txnKey{rt.Topic, rp.Partition, 0}]
			if ps == nil {
				return nil, fmt.Errorf("fetch: answer for %s-%d, which was not asked", rt.Topic, rp.Partition)
			}
			delete(scans, txnKey{rt.Topic, rp.Partition, 0})
			switch err := kerr.ErrorForCode(rp.ErrorCode); {
			case errors.Is(err, kerr.OffsetOutOfRange) && rp.LogStartOffset > ps.offset:
				ps.offset = rp.LogStartOffset // the log starts later (deleted records)
			case err != nil:
				return nil, fmt.Errorf("fetch %s-%d at offset %d: %w", rt.Topic, rp.Partition, ps.offset, err)
			default:
				next, err := ps.read(rp.RecordBatches)
				if err != nil {
					return nil, fmt.Errorf("read %s-%d at offset %d: %w", rt.Topic, rp.Partition, ps.offset, err)
				}
				if next == ps.offset && ps.offset < rp.HighWatermark {
					return nil, fmt.Errorf("read %s-%d: no progress at offset %d (high watermark %d)", rt.Topic, rp.Partition, ps.offset, rp.HighWatermark)
				}
				ps.offset = next
			}
			if ps.offset < rp.HighWatermark {
				more = append(more, ps)
			}
		}
	}
	for k := range scans {
		return nil, fmt.Errorf("fetch: no answer for %s-%d", k.topic, k.partition)
	}
	return more, nil
}

// read walks the record batches of one fetch answer and returns the offset
// after the last whole batch.
func (ps *partScan) read(raw []byte) (int64, error) {
	next := ps.offset
	for len(raw) >= 12 {
		size := 12 + int(int32(binary.BigEndian.Uint32(raw[8:12])))
		if size < 12 || size > len(raw) {
			break // a partial batch at the end of the answer
		}
		var b kmsg.RecordBatch
		if err := b.ReadFrom(raw[:size]); err != nil {
			return 0, fmt.Errorf("batch at offset %d: %w", int64(binary.BigEndian.Uint64(raw[:8])), err)
		}
		raw = raw[size:]
		ps.observe(b.ProducerID, b.ProducerEpoch, b.Attributes)
		if end := b.FirstOffset + int64(b.LastOffsetDelta) + 1; end > next {
			next = end
		}
	}
	return next, nil
}

// Record batch attributes.
const (
	attrTransactional = 0x10
	attrControl       = 0x20
)

// observe records one batch: a transactional data batch opens (or
// continues) its producer's transaction, a control batch ends it.
func (ps *partScan) observe(producerID int64, epoch int16, attrs int16) {
	switch {
	case attrs&attrControl != 0:
		delete(ps.last, producerID)
	case attrs&attrTransactional != 0:
		ps.last[producerID] = epoch
	}
}

// activeProducers asks which of the partitions' producers have a
// transaction open in the cluster (one kept across a clean shutdown).
func activeProducers(ctx context.Context, cl *kgo.Client, open []openTxn) (map[txnKey]bool, error) {
	req := kmsg.NewPtrDescribeProducersRequest()
	idx := map[string]int{}
	seen := map[txnKey]bool{}
	for _, o := range open {
		k := txnKey{o.topic, o.partition, 0}
		if seen[k] {
			continue
		}
		seen[k] = true
		i, ok := idx[o.topic]
		if !ok {
			i = len(req.Topics)
			idx[o.topic] = i
			rt := kmsg.NewDescribeProducersRequestTopic()
			rt.Topic = o.topic
			req.Topics = append(req.Topics, rt)
		}
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, o.partition)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("describe producers: %w", err)
	}
	active := map[txnKey]bool{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return nil, fmt.Errorf("describe producers of %s-%d: %w", rt.Topic, rp.Partition, err)
			}
			for _, ap := range rp.ActiveProducers {
				active[txnKey{rt.Topic, rp.Partition, ap.ProducerID}] = true
			}
		}
	}
	return active, nil
}

// abortTxns writes an ABORT marker for each transaction.
func abortTxns(ctx context.Context, cl *kgo.Client, open []openTxn) error {
	type pe struct {
		pid   int64
		epoch int16
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	markers := map[pe]int{}
	for _, o := range open {
		k := pe{o.producerID, o.epoch}
		i, ok := markers[k]
		if !ok {
			i = len(req.Markers)
			markers[k] = i
			m := kmsg.NewWriteTxnMarkersRequestMarker()
			m.ProducerID, m.ProducerEpoch, m.Committed = o.producerID, o.epoch, false
			req.Markers = append(req.Markers, m)
		}
		m := &req.Markers[i]
		j := slices.IndexFunc(m.Topics, func(t kmsg.WriteTxnMarkersRequestMarkerTopic) bool { return t.Topic == o.topic })
		if j < 0 {
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = o.topic
			m.Topics = append(m.Topics, t)
			j = len(m.Topics) - 1
		}
		m.Topics[j].Partitions = append(m.Topics[j].Partitions, o.partition)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("write abort markers: %w", err)
	}
	written := 0
	var errs []error
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					errs = append(errs, fmt.Errorf("write abort marker of producer %d on %s-%d: %w", m.ProducerID, t.Topic, p.Partition, err))
					continue
				}
				written++
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if written != len(open) {
		return fmt.Errorf("write abort markers: %d of %d answered", written, len(open))
	}
	return nil
}
