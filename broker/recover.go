package broker

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
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
//
// A crash inside kfake's commit of a transaction cannot be repaired: the
// transaction is committed on the partitions whose marker was written, and
// its consumer offsets, which kfake applies after the markers, are lost. The
// open part is aborted like any other, and a warning names the transaction
// (cutCommits).

// openTxn is a transaction on disk with data batches and no marker after them.
type openTxn struct {
	topic      string
	partition  int32
	producerID int64
	epoch      int16
}

// fetchLimits bound one fetch of the scan.
type fetchLimits struct {
	request   int32 // bytes per fetch answer
	partition int32 // bytes per partition in an answer
}

// scanLimits are the scan's fetch limits: kfake sends at least one whole
// batch of the first partition however large.
var scanLimits = fetchLimits{request: 64 << 20, partition: 8 << 20}

// recoveryTimeout bounds the whole check.
const recoveryTimeout = 5 * time.Minute

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
	var (
		open  []openTxn
		cut   []cutCommit
		parts int
	)
	err = withPrivateCluster(dataDir, kopts, func(cl *kgo.Client) error {
		var err error
		open, cut, parts, err = findOpenTxns(ctx, cl)
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
	for _, c := range cut {
		log.Warn(fmt.Sprintf("the broker was killed while it committed a transaction of producer %d: it is committed on %d partition(s) and now aborted on %d; "+
			"its consumer offsets were not saved, so its input will be processed again and its results may repeat", c.producerID, c.committed, c.aborted),
			"producer_id", c.producerID, "epoch", c.epoch)
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
	topicPart
	offset int64
	// last holds, per producer id, the epoch of its last transactional data
	// batch while no control batch followed it.
	last map[int64]int16
	// markers holds, per producer id, its last control batch.
	markers map[int64]marker
}

// marker is a control batch.
type marker struct {
	epoch  int16
	commit bool
}

func newPartScan(topic string, partition int32) *partScan {
	return &partScan{topicPart: topicPart{topic, partition}, last: map[int64]int16{}, markers: map[int64]marker{}}
}

type topicPart struct {
	topic     string
	partition int32
}

// findOpenTxns reads every partition from its log start to its high
// watermark and returns the unfinished transactions, leaving out those the
// cluster knows as open (restored after a clean shutdown), the commits the
// crash cut, and the number of partitions read.
func findOpenTxns(ctx context.Context, cl *kgo.Client) ([]openTxn, []cutCommit, int, error) {
	scans, err := scanLog(ctx, cl, scanLimits)
	if err != nil {
		return nil, nil, 0, err
	}
	cut := cutCommits(scans)
	var open []openTxn
	for _, ps := range scans {
		for pid, epoch := range ps.last {
			open = append(open, openTxn{topic: ps.topic, partition: ps.partition, producerID: pid, epoch: epoch})
		}
	}
	if len(open) == 0 {
		return nil, cut, len(scans), nil
	}
	active, err := activeProducers(ctx, cl, open)
	if err != nil {
		return nil, nil, 0, err
	}
	open = slices.DeleteFunc(open, func(o openTxn) bool { return active[o.key()] })
	slices.SortFunc(open, func(a, b openTxn) int {
		return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition), cmp.Compare(a.producerID, b.producerID))
	})
	return open, cut, len(scans), nil
}

// cutCommit is a transaction that a crash cut while the broker committed it.
type cutCommit struct {
	producerID         int64
	epoch              int16
	committed, aborted int // partitions
}

// cutCommits finds the transactions whose commit a crash cut: kfake writes a
// transaction's COMMIT markers one partition after the other (and its
// consumer offsets after them), so a kill in between leaves the transaction
// committed on some partitions and unfinished on others. A transaction is
// known by its producer id and epoch only when the producer's epoch changes
// with every transaction (transaction version 2, which franz-go uses): so a
// transaction counts as cut only if, on a partition where it is unfinished,
// the producer's previous marker has an older epoch.
func cutCommits(scans []*partScan) []cutCommit {
	type pe struct {
		pid   int64
		epoch int16
	}
	committed := map[pe]int{}
	unfinished := map[pe]int{}
	epochChanges := map[pe]bool{}
	for _, ps := range scans {
		for pid, m := range ps.markers {
			if _, open := ps.last[pid]; !open && m.commit {
				committed[pe{pid, m.epoch}]++
			}
		}
		for pid, epoch := range ps.last {
			unfinished[pe{pid, epoch}]++
			if m, ok := ps.markers[pid]; ok && m.epoch < epoch {
				epochChanges[pe{pid, epoch}] = true
			}
		}
	}
	var cut []cutCommit
	for k, n := range unfinished {
		if committed[k] > 0 && epochChanges[k] {
			cut = append(cut, cutCommit{producerID: k.pid, epoch: k.epoch, committed: committed[k], aborted: n})
		}
	}
	slices.SortFunc(cut, func(a, b cutCommit) int { return cmp.Compare(a.producerID, b.producerID) })
	return cut
}

type txnKey struct {
	topicPart
	producerID int64
}

func (o openTxn) key() txnKey { return txnKey{topicPart{o.topic, o.partition}, o.producerID} }

// scanLog reads every partition of every topic from its log start to its
// high watermark.
func scanLog(ctx context.Context, cl *kgo.Client, lim fetchLimits) ([]*partScan, error) {
	meta := kmsg.NewPtrMetadataRequest()
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	var all []*partScan
	for _, t := range mresp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("metadata of topic %s: %w", *t.Topic, err)
		}
		for _, p := range t.Partitions {
			all = append(all, newPartScan(*t.Topic, p.Partition))
		}
	}
	for todo := all; len(todo) > 0; {
		if todo, err = fetchRound(ctx, cl, todo, lim); err != nil {
			return nil, err
		}
	}
	return all, nil
}

// fetchRound fetches the next batches of every partition in todo and returns
// the partitions that have more to read. A full answer leaves out the
// partitions after the one that filled it: they are read in the next round.
func fetchRound(ctx context.Context, cl *kgo.Client, todo []*partScan, lim fetchLimits) ([]*partScan, error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = lim.request
	req.IsolationLevel = 0 // read_uncommitted: every batch, control batches included
	req.SessionID = 0
	req.SessionEpoch = -1 // a full fetch, no session
	byName := map[string]int{}
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
		rp.PartitionMaxBytes = lim.partition
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	answers := map[topicPart]*kmsg.FetchResponseTopicPartition{}
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		for j := range rt.Partitions {
			answers[topicPart{rt.Topic, rt.Partitions[j].Partition}] = &rt.Partitions[j]
		}
	}
	var more []*partScan
	moved := false
	for _, ps := range todo {
		rp := answers[ps.topicPart]
		if rp == nil { // left out of a full answer
			more = append(more, ps)
			continue
		}
		switch err := kerr.ErrorForCode(rp.ErrorCode); {
		case errors.Is(err, kerr.OffsetOutOfRange) && rp.LogStartOffset > ps.offset:
			ps.offset = rp.LogStartOffset // the log starts later (deleted records)
			moved = true
		case err != nil:
			return nil, fmt.Errorf("fetch %s-%d at offset %d: %w", ps.topic, ps.partition, ps.offset, err)
		default:
			next, err := ps.read(rp.RecordBatches)
			if err != nil {
				return nil, fmt.Errorf("read %s-%d at offset %d: %w", ps.topic, ps.partition, ps.offset, err)
			}
			moved = moved || next > ps.offset
			ps.offset = next
		}
		if ps.offset < rp.HighWatermark {
			more = append(more, ps)
		}
	}
	if len(more) > 0 && !moved {
		return nil, fmt.Errorf("fetch: no partition moved on (%s-%d at offset %d)", more[0].topic, more[0].partition, more[0].offset)
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
		ps.observe(b.ProducerID, b.ProducerEpoch, b.Attributes, isCommit(&b))
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

// isCommit says whether a control batch is a COMMIT marker: its record's
// key is a version (int16) and a type (int16, 1 for COMMIT).
func isCommit(b *kmsg.RecordBatch) bool {
	if b.Attributes&attrControl == 0 {
		return false
	}
	var rec kmsg.Record
	if err := rec.ReadFrom(b.Records); err != nil || len(rec.Key) < 4 {
		return false
	}
	return binary.BigEndian.Uint16(rec.Key[2:4]) == 1
}

// observe records one batch: a transactional data batch opens (or
// continues) its producer's transaction, a control batch (commit says
// whether it is a COMMIT) ends it.
func (ps *partScan) observe(producerID int64, epoch int16, attrs int16, commit bool) {
	switch {
	case attrs&attrControl != 0:
		delete(ps.last, producerID)
		ps.markers[producerID] = marker{epoch, commit}
	case attrs&attrTransactional != 0:
		ps.last[producerID] = epoch
	}
}

// activeProducers asks which of the partitions' producers have a
// transaction open in the cluster (one kept across a clean shutdown).
func activeProducers(ctx context.Context, cl *kgo.Client, open []openTxn) (map[txnKey]bool, error) {
	req := kmsg.NewPtrDescribeProducersRequest()
	idx := map[string]int{}
	seen := map[topicPart]bool{}
	for _, o := range open {
		k := topicPart{o.topic, o.partition}
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
				active[txnKey{topicPart{rt.Topic, rp.Partition}, ap.ProducerID}] = true
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
