package state

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkReadModifyWrite increments a counter in an open transaction: one
// Get and one Put through the write-back and read caches, committing every 1,000
// operations like a commit interval would.
func BenchmarkReadModifyWrite(b *testing.B) {
	db := openDB(b, b.TempDir())
	task := openTask(b, db, 0, "counts")
	s := task.Store("counts")
	topic := ChangelogTopic(testApp, "counts")
	keys := make([][]byte, 10_000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "customer-%05d", i)
	}
	b.ReportAllocs()
	off := int64(0)
	for i := 0; b.Loop(); i++ {
		k := keys[i%len(keys)]
		v, ok, err := s.Get(k)
		if err != nil {
			b.Fatal(err)
		}
		var n uint64
		if ok {
			n = binary.BigEndian.Uint64(v)
		}
		if err := s.Put(k, binary.BigEndian.AppendUint64(nil, n+1)); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			if _, err := task.Changelog(); err != nil {
				b.Fatal(err)
			}
			off++
			if err := task.Commit(map[string]int64{topic: off}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCommitBatch commits a transaction of 10,000 dirty keys: building
// the changelog records and applying the batch with its checkpoint.
func BenchmarkCommitBatch(b *testing.B) {
	db := openDB(b, b.TempDir())
	task := openTask(b, db, 0, "s")
	s := task.Store("s")
	topic := ChangelogTopic(testApp, "s")
	value := make([]byte, 64)
	keys := make([][]byte, 10_000)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%05d", i)
	}
	b.ReportAllocs()
	off := int64(0)
	for b.Loop() {
		b.StopTimer()
		for _, k := range keys {
			if err := s.Put(k, value); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		recs, err := task.Changelog()
		if err != nil || len(recs) != len(keys) {
			b.Fatalf("changelog: %d records, %v", len(recs), err)
		}
		off += int64(len(keys))
		if err := task.Commit(map[string]int64{topic: off}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(keys)*b.N)/b.Elapsed().Seconds(), "keys/s")
}

// fillChangelog produces n records over keys distinct keys (64-byte values)
// to partition 0 of topic in committed transactions of 10,000 records.
func fillChangelog(b *testing.B, kopts []kgo.Opt, topic string, n, keys int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl := txnProducer(b, kopts, "fill")
	value := make([]byte, 64)
	for done := 0; done < n; {
		batch := make([]*kgo.Record, 0, 10_000)
		for ; done < n && len(batch) < cap(batch); done++ {
			batch = append(batch, &kgo.Record{Topic: topic, Partition: 0, Key: fmt.Appendf(nil, "key-%07d", done%keys), Value: value})
		}
		produceTxn(b, ctx, cl, true, batch...)
	}
}

// benchRestore restores a changelog of n records into a fresh state dir per
// iteration and reports records/s.
func benchRestore(b *testing.B, n int) {
	topic := ChangelogTopic(testApp, "s")
	_, kopts := newCluster(b, 1, topic)
	fillChangelog(b, kopts, topic, n, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		db := openDB(b, b.TempDir())
		task := openTask(b, db, 0, "s")
		b.StartTimer()
		if err := task.Restore(ctx, RestoreOptions{Kafka: kopts}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if off, _, _ := task.Checkpoint("s"); off < int64(n) {
			b.Fatalf("checkpoint %d after restoring %d records", off, n)
		}
		_ = db.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRestore restores 200,000 records from a changelog in kfake, or
// in Apache Kafka with VELTRIX_TEST_KAFKA. The 1,000,000-record variant is BenchmarkRestore1M, built with
// -tags restorebench.
func BenchmarkRestore(b *testing.B) { benchRestore(b, 200_000) }
