package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/twmb/franz-go/pkg/kadm"
)

// defaultDeleteRetention is Kafka's delete.retention.ms default: how long a
// compacted topic keeps a tombstone.
const defaultDeleteRetention = 24 * time.Hour

// syncKey holds the time (unix ms) a task's local copy was last known to be
// in step with its changelogs: written with every commit, at the end of a
// restore and when the task closes.
//
//	in sync: 0x00 's' | uint32 partition
//
// A copy out of step for longer than a changelog's delete.retention.ms may
// hold keys whose tombstones compaction has removed since: a restore from
// its checkpoints would never see those keys deleted, so it restores in
// full instead.
func syncKey(partition int32) []byte {
	return binary.BigEndian.AppendUint32([]byte{nsMeta, 's'}, uint32(partition))
}

// markInSync records in b that the task's copy is in step now.
func (t *Task) markInSync(b *pebble.Batch) error {
	return b.Set(syncKey(t.partition), binary.BigEndian.AppendUint64(nil, uint64(t.db.opts.Now().UnixMilli())), nil)
}

// syncedNow records that the task's copy is in step now.
func (t *Task) syncedNow() error {
	b := t.db.pdb.NewBatch()
	defer func() { _ = b.Close() }()
	if err := t.markInSync(b); err != nil {
		return err
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("state: mark partition %d in sync: %w", t.partition, err)
	}
	return nil
}

// inSyncSince returns when the task's copy was last in step (ok false when
// that was never recorded: a copy older than this record, taken as old).
func (t *Task) inSyncSince() (since time.Time, ok bool, err error) {
	v, closer, err := t.db.pdb.Get(syncKey(t.partition))
	if errors.Is(err, pebble.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("state: read in-sync time of partition %d: %w", t.partition, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(v))), true, nil
}

// tooOld reports whether the task's copy has been out of step with its
// changelogs for longer than the shortest delete.retention.ms among them
// (Kafka's default, 24 h, for a topic the cluster does not describe).
func (t *Task) tooOld(ctx context.Context, adm *kadm.Client, topics []string) (bool, time.Duration, error) {
	since, ok, err := t.inSyncSince()
	if err != nil {
		return false, 0, err
	}
	if !ok {
		return true, 0, nil
	}
	retention := defaultDeleteRetention
	if rcs, err := adm.DescribeTopicConfigs(ctx, topics...); err == nil {
		for _, rc := range rcs {
			if rc.Err != nil {
				continue
			}
			for _, c := range rc.Configs {
				if c.Key != "delete.retention.ms" {
					continue
				}
				if ms, err := strconv.ParseInt(c.MaybeValue(), 10, 64); err == nil && ms >= 0 {
					retention = min(retention, time.Duration(ms)*time.Millisecond)
				}
			}
		}
	}
	away := t.db.opts.Now().Sub(since)
	return away > retention, away, nil
}
