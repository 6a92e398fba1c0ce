package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// restoreFetchBytes bounds a restore consumer's fetch response. The
// client holds a response or two as record structs (about 170 bytes each
// besides the data, so several times the response's size for changelog
// records): 2 MiB restored as fast as 4 MiB here with 20-40 MiB less at the
// peak.
const restoreFetchBytes = 2 << 20

// Defaults for RestoreOptions.
const (
	// DefaultRestoreBatchBytes is the size of the Pebble batches a restore
	// writes: 4 MiB. Large batches amortise the commit cost; each carries
	// the checkpoint, so an interrupted restore resumes where it stopped.
	DefaultRestoreBatchBytes = 4 << 20

	// DefaultRestoreSettleTimeout bounds how long a restore waits for the
	// changelog's open transactions to end before it fixes its end.
	DefaultRestoreSettleTimeout = time.Minute

	// DefaultRestoreIdleTimeout bounds how long a restore waits for a fetch
	// that returns nothing before it looks at the changelog's tail.
	DefaultRestoreIdleTimeout = 5 * time.Second
)

// RestoreOptions configure Task.Restore.
type RestoreOptions struct {
	// Kafka holds the connection options of the restore consumer: seed
	// brokers, TLS, SASL, client id. Restore adds direct partition
	// consumption with read_committed isolation; do not pass group or
	// transactional options.
	Kafka []kgo.Opt
	// Progress, if set, is called with the records (changelog offsets,
	// markers included) each store still has to restore: once at the start,
	// after every Pebble batch, and with 0 at the end. The engine maps it to
	// the veltrix_restore_remaining_records{store} gauge.
	Progress func(store string, remaining int64)
	// TaskProgress, if set, is called when Progress is, with the task's
	// partition too (the console's per-task restore progress).
	TaskProgress func(partition int32, store string, remaining int64)
	// BatchBytes is the Pebble batch size; default DefaultRestoreBatchBytes.
	BatchBytes int
	// IdleTimeout is how long a fetch may return nothing before the restore
	// looks at the changelog's tail itself; default
	// DefaultRestoreIdleTimeout. A store still short of its end is
	// considered restored only when the tail holds nothing a consumer
	// would deliver (batches emptied by compaction, markers, aborted
	// records: the client skips those silently); records that are there
	// but slow to come are waited for.
	IdleTimeout time.Duration
	// SettleTimeout bounds how long the restore waits, before it fixes the
	// end it restores to, for the changelog partition to have no open
	// transaction (its last stable offset at its high watermark); default
	// DefaultRestoreSettleTimeout. Only the task's owner writes to the
	// partition, so an open transaction there is the previous owner's last
	// one: committed but its markers not yet written, or left open by a
	// dead owner until the broker aborts it after the transaction timeout.
	// Restoring before it ends would miss a commit whose input offsets the
	// group already counts as processed. Set it above the application's
	// transaction timeout; past it, the restore fails.
	SettleTimeout time.Duration
}

// restoring is one store's restore position.
type restoring struct {
	s    *taskStore
	pos  int64 // next offset to read
	end  int64 // last stable offset when the restore started
	done bool
}

// Restore brings every store of the task up to the end of its changelog:
// from the store's checkpoint to the changelog's last stable offset, reading
// read_committed (records of aborted transactions are skipped). It is called
// on assignment before processing, and after a transaction whose outcome is
// unknown (after Abort), to catch up with whatever did commit.
//
// A store with no checkpoint, or with one outside the changelog's current
// range (the log start moved past it, or the topic was recreated), is wiped
// and restored in full. Restore returns when every store is caught up, or
// with ctx's error.
func (t *Task) Restore(ctx context.Context, o RestoreOptions) error {
	if t.closed {
		return ErrClosed
	}
	if t.Dirty() {
		return fmt.Errorf("state: restore of partition %d with an open transaction; Commit or Abort it first", t.partition)
	}
	if len(t.stores) == 0 {
		return nil
	}
	// A batch still being applied lands first (a failed one left its
	// checkpoints behind, so the restore replays its changelog). The
	// restore writes Pebble directly: the read caches may no longer hold
	// the committed values.
	_ = t.settle()
	for _, s := range t.stores {
		s.dropCache()
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = DefaultRestoreBatchBytes
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultRestoreIdleTimeout
	}
	if o.SettleTimeout <= 0 {
		o.SettleTimeout = DefaultRestoreSettleTimeout
	}
	progress := func(store string, remaining int64) {
		if o.Progress != nil {
			o.Progress(store, remaining)
		}
		if o.TaskProgress != nil {
			o.TaskProgress(t.partition, store, remaining)
		}
	}
	log := t.db.opts.Logger

	admCl, err := kgo.NewClient(o.Kafka...)
	if err != nil {
		return fmt.Errorf("state: restore client: %w", err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	topics := make([]string, len(t.stores))
	for i, s := range t.stores {
		topics[i] = s.topic
	}
	ends, err := t.settledEnds(ctx, adm, topics, o.SettleTimeout)
	if err != nil {
		return err
	}
	starts, err := t.listOffsets(ctx, adm.ListStartOffsets, topics)
	if err != nil {
		return err
	}

	var (
		rs      []*restoring
		byTopic = make(map[string]*restoring, len(t.stores))
		consume = make(map[string]map[int32]kgo.Offset)
	)
	var old, checked bool // the copy is too long out of step (see syncKey)
	for _, s := range t.stores {
		start, end := starts[s.topic], ends[s.topic]
		ckpt, ok, err := t.db.Checkpoint(s.name, t.partition)
		if err != nil {
			return err
		}
		if ok && !checked {
			checked = true
			var away time.Duration
			if old, away, err = t.tooOld(ctx, adm, topics); err != nil {
				return err
			}
			if old {
				log.Warn("state out of step with its changelogs for longer than their delete.retention.ms, restoring the task in full",
					"partition", t.partition, "away", away.Round(time.Second))
			}
		}
		from := ckpt
		if !ok || old || ckpt < start || ckpt > end {
			if ok && !old {
				log.Warn("state checkpoint outside the changelog, restoring the store in full",
					"store", s.name, "partition", t.partition, "checkpoint", ckpt, "log_start", start, "end", end)
			}
			if err := t.wipeStore(s); err != nil {
				return err
			}
			from = start
		}
		r := &restoring{s: s, pos: from, end: end, done: from >= end}
		rs = append(rs, r)
		byTopic[s.topic] = r
		progress(s.name, max(end-from, 0))
		if !r.done {
			consume[s.topic] = map[int32]kgo.Offset{t.partition: kgo.NewOffset().At(from)}
		}
	}
	if len(consume) == 0 {
		return t.syncedNow()
	}
	log.Info("restoring state", "partition", t.partition, "stores", len(consume))

	opts := append(append([]kgo.Opt(nil), o.Kafka...),
		kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (transaction markers) occupy offsets; seeing them
		// is how the position reaches the last stable offset.
		kgo.KeepControlRecords(),
		// Changelog records are small: 2 MiB responses keep the client
		// ahead of the Pebble batches and a restore within the memory of
		// a running instance.
		kgo.FetchMaxBytes(restoreFetchBytes),
		kgo.FetchMaxPartitionBytes(restoreFetchBytes),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("state: restore consumer: %w", err)
	}
	defer cl.Close()

	// The records read since the last write; written once they hold
	// BatchBytes (checked after each poll), as a table Pebble
	// ingests or, for a small run, a batch (see restoreRun). The
	// checkpoints follow in a batch of their own, after the data is in
	// Pebble.
	var (
		run = restoreRun{
			buf:  make([]byte, 0, o.BatchBytes+restoreFetchBytes),
			ents: make([]runEntry, 0, (o.BatchBytes+restoreFetchBytes)/64),
		}
		tables  int
		touched bool // positions moved since the last write
	)
	b := t.db.pdb.NewBatch()
	defer func() { _ = b.Close() }()
	flush := func() error {
		if !touched {
			return nil
		}
		touched = false
		run.sortLast()
		if len(run.ents) > 0 && run.size() >= min(o.BatchBytes, restoreIngestBytes) {
			tables++
			if err := t.ingest(ctx, &run, fmt.Sprintf("p%d-%d.sst", t.partition, tables)); err != nil {
				return fmt.Errorf("state: restore partition %d: %w", t.partition, err)
			}
		} else if err := run.toBatch(b); err != nil {
			return fmt.Errorf("state: restore partition %d: %w", t.partition, err)
		}
		run.reset()
		for _, r := range rs {
			if err := b.Set(checkpointKey(r.s.name, t.partition), encodeOffset(r.pos), nil); err != nil {
				return err
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return fmt.Errorf("state: restore partition %d: write batch: %w", t.partition, err)
		}
		b.Reset()
		for _, r := range rs {
			progress(r.s.name, max(r.end-r.pos, 0))
		}
		return nil
	}
	pending := len(consume)
	for pending > 0 {
		pctx, cancel := context.WithTimeout(ctx, o.IdleTimeout)
		fetches := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("state: restore partition %d: %w", t.partition, err)
		}
		var ferr error
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = errors.Join(ferr, fmt.Errorf("fetch %s[%d]: %w", topic, p, err))
			}
		})
		if ferr != nil {
			return fmt.Errorf("state: restore partition %d: %w", t.partition, ferr)
		}
		n := 0
		fetches.EachRecord(func(rec *kgo.Record) {
			r := byTopic[rec.Topic]
			if r == nil || rec.Partition != t.partition {
				return
			}
			n++
			touched = true
			r.pos = rec.Offset + 1
			if rec.Attrs.IsControl() {
				return
			}
			run.add(r.s.prefix, rec.Key, rec.Value, rec.Value == nil)
		})
		if n == 0 {
			// Nothing for a whole idle period. A store short of its end is
			// restored only on evidence that nothing a read_committed
			// consumer would deliver lies between its position and the
			// end (see emptyTail); otherwise the fetches are slow, and
			// the restore waits for them.
			for _, r := range rs {
				if r.done {
					continue
				}
				empty, err := emptyTail(ctx, admCl, r.s.topic, t.partition, r.pos, r.end)
				switch {
				case err != nil:
					log.Info("restore: no records for a while; checking the changelog's tail failed, still waiting",
						"store", r.s.name, "partition", t.partition, "position", r.pos, "end", r.end, "err", err)
				case empty:
					log.Info("restore: the changelog holds nothing to restore up to its end (compacted or aborted records)",
						"store", r.s.name, "partition", t.partition, "position", r.pos, "end", r.end)
					r.pos = r.end
					touched = true
				default:
					log.Info("restore: fetches are slow; records remain up to the changelog's end, still waiting",
						"store", r.s.name, "partition", t.partition, "position", r.pos, "end", r.end)
				}
			}
		}
		if run.size() >= o.BatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		var done map[string][]int32
		for _, r := range rs {
			if !r.done && r.pos >= r.end {
				r.done = true
				pending--
				if done == nil {
					done = make(map[string][]int32)
				}
				done[r.s.topic] = []int32{t.partition}
			}
		}
		if done != nil {
			cl.RemoveConsumePartitions(done)
		}
	}
	if err := flush(); err != nil {
		return err
	}
	log.Info("state restored", "partition", t.partition)
	return t.syncedNow()
}

// HangingTransactionHint is what to do about a transaction that holds a
// partition longer than any transaction may run: a hanging one, which its
// coordinator no longer knows and which may hold committed records.
const HangingTransactionHint = `find it with kafka-transactions.sh find-hanging, and read docs/operations.md ("Hanging transactions") before aborting it`

// settledEnds waits until the task's partition of every topic has no open
// transaction (last stable offset = high watermark), for at most timeout, and
// returns the last stable offsets (see RestoreOptions.SettleTimeout).
func (t *Task) settledEnds(ctx context.Context, adm *kadm.Client, topics []string, timeout time.Duration) (map[string]int64, error) {
	deadline := time.Now().Add(timeout)
	logged := false
	for {
		lso, err := t.listOffsets(ctx, adm.ListCommittedOffsets, topics)
		if err != nil {
			return nil, err
		}
		hwm, err := t.listOffsets(ctx, adm.ListEndOffsets, topics)
		if err != nil {
			return nil, err
		}
		open := ""
		for _, topic := range topics {
			if lso[topic] < hwm[topic] {
				open = topic
				break
			}
		}
		if open == "" {
			return lso, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("state: restore partition %d: changelog %s still has an open transaction after %s (last stable offset %d, high watermark %d); "+
				"one open this long is likely hanging (its coordinator no longer knows it): %s",
				t.partition, open, timeout, lso[open], hwm[open], HangingTransactionHint)
		}
		if !logged {
			t.db.opts.Logger.Info("restore waits for the previous owner's last transaction on the changelog to end",
				"partition", t.partition, "topic", open, "last_stable", lso[open], "high_watermark", hwm[open])
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("state: restore partition %d: %w", t.partition, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// listOffsets lists offsets of the task's partition of topics with list.
func (t *Task) listOffsets(ctx context.Context, list func(context.Context, ...string) (kadm.ListedOffsets, error), topics []string) (map[string]int64, error) {
	lo, err := list(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("state: list changelog offsets: %w", err)
	}
	out := make(map[string]int64, len(topics))
	for _, topic := range topics {
		o, ok := lo.Lookup(topic, t.partition)
		if !ok {
			return nil, fmt.Errorf("state: changelog %s has no partition %d (run EnsureChangelogs first)", topic, t.partition)
		}
		if o.Err != nil {
			return nil, fmt.Errorf("state: list offsets of %s[%d]: %w", topic, t.partition, o.Err)
		}
		out[topic] = o.Offset
	}
	return out, nil
}

// wipeStore deletes the task's range of s and its checkpoint. An empty
// range (a new state dir) gets no range deletion: in the memtable, one
// would overlap the tables the restore ingests next and make Pebble flush
// the memtable before each task's first ingest.
func (t *Task) wipeStore(s *taskStore) error {
	end := prefixEnd(s.prefix)
	it, err := t.db.pdb.NewIter(&pebble.IterOptions{LowerBound: s.prefix, UpperBound: end})
	if err != nil {
		return fmt.Errorf("state: wipe store %q partition %d: %w", s.name, t.partition, err)
	}
	nonEmpty := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("state: wipe store %q partition %d: %w", s.name, t.partition, err)
	}
	b := t.db.pdb.NewBatch()
	defer func() { _ = b.Close() }()
	if nonEmpty {
		if err := b.DeleteRange(s.prefix, end, nil); err != nil {
			return err
		}
	}
	if err := b.Delete(checkpointKey(s.name, t.partition), nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("state: wipe store %q partition %d: %w", s.name, t.partition, err)
	}
	return nil
}
