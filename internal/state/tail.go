package state

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Record batch attribute bits (Kafka's record batch format v2).
const (
	batchTransactional = 0x10
	batchControl       = 0x20
)

// emptyTail asks the leader of topic[partition] for the log from pos on, as
// a read_committed consumer reads it, and reports whether nothing that
// consumer would deliver lies before end: every batch in [pos, end) is
// empty (emptied by compaction, which keeps a batch's last offset), a
// transaction marker, or part of an aborted transaction. A consumer skips
// such offsets silently, so a restore whose records stopped short of end
// may count the store as restored only on this evidence; a fetch that is
// merely slow (a busy or throttled broker, a moving leader) shows its
// records here, and the restore waits for them.
//
// Any failure to ask is no evidence: (false, err).
func emptyTail(ctx context.Context, cl *kgo.Client, topic string, partition int32, pos, end int64) (bool, error) {
	details, err := kadm.NewClient(cl).ListTopics(uncached(ctx), topic)
	if err != nil {
		return false, err
	}
	td, ok := details[topic]
	if !ok || td.Err != nil {
		return false, fmt.Errorf("metadata of %s: %v", topic, td.Err)
	}
	pd, ok := td.Partitions[partition]
	if !ok || pd.Leader < 0 {
		return false, fmt.Errorf("%s[%d] has no leader", topic, partition)
	}
	for pos < end {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 1
		req.MaxBytes = restoreFetchBytes
		req.IsolationLevel = 1 // read_committed
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, td.ID
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, pos, restoreFetchBytes
		rp.CurrentLeaderEpoch, rp.LogStartOffset = -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := cl.Broker(int(pd.Leader)).Request(ctx, req)
		if err != nil {
			return false, err
		}
		resp := kresp.(*kmsg.FetchResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return false, err
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			return false, fmt.Errorf("fetch %s[%d]: unexpected response shape", topic, partition)
		}
		p := resp.Topics[0].Partitions[0]
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			return false, err
		}
		next, deliverable := scanBatches(p.RecordBatches, p.AbortedTransactions, pos, end)
		if deliverable {
			return false, nil
		}
		if next <= pos {
			return false, nil // nothing readable yet: no evidence
		}
		pos = next
	}
	return true, nil
}

// scanBatches walks the record batches of a fetch response from pos on, as a
// read_committed consumer does, and returns the offset after the last batch
// it read whole, and whether a batch before end holds a record the consumer
// would deliver.
func scanBatches(b []byte, abortedTxns []kmsg.FetchResponseTopicPartitionAbortedTransaction, pos, end int64) (next int64, deliverable bool) {
	aborted := slices.Clone(abortedTxns)
	slices.SortFunc(aborted, func(a, b kmsg.FetchResponseTopicPartitionAbortedTransaction) int {
		return cmp.Compare(a.FirstOffset, b.FirstOffset)
	})
	abortedProducers := map[int64]bool{}
	next = pos
	for len(b) >= 12 {
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:12])))
		var batch kmsg.RecordBatch
		if size < 12 || size > len(b) || batch.ReadFrom(b[:size]) != nil {
			break // a batch cut short by the response's size limit
		}
		b = b[size:]
		last := batch.FirstOffset + int64(batch.LastOffsetDelta)
		if last < pos {
			continue
		}
		if batch.FirstOffset >= end {
			return max(next, batch.FirstOffset), false
		}
		for len(aborted) > 0 && aborted[0].FirstOffset <= last {
			abortedProducers[aborted[0].ProducerID] = true
			aborted = aborted[1:]
		}
		next = last + 1
		switch {
		case batch.Attributes&batchControl != 0:
			// A marker ends the producer's transaction.
			delete(abortedProducers, batch.ProducerID)
		case batch.Attributes&batchTransactional != 0 && abortedProducers[batch.ProducerID]:
			// Records of an aborted transaction.
		case batch.NumRecords == 0:
			// Emptied by compaction.
		default:
			return next, true
		}
	}
	return next, false
}
