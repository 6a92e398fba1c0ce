package state

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ingestDir is the directory, inside the state dir, where a restore writes
// the tables it ingests. Open empties it: a table left there was never
// ingested.
const ingestDir = "restore-ingest"

// restoreIngestBytes is the size from which a restore's run of records goes
// into Pebble as an ingested table rather than through a batch (see
// restoreRun). Smaller runs (a short catch-up, the last records of a
// restore) are not worth a table, its fsync and a manifest update.
const restoreIngestBytes = 1 << 20

// restoreRun holds the records a restore has read since it last wrote to
// Pebble: their Pebble keys and values, one copy each in buf, in the order
// of the changelog.
//
// A run is written in key order, each key once with its last value (the
// changelog is last-write-wins, so the earlier ones would be overwritten
// anyway). A large run becomes a table that Pebble ingests, which skips the
// WAL and the memtable; a table that overlaps no data already in Pebble
// (every run of a full restore whose changelog partition is in key order,
// as a store written in key order produces) goes to the last level, so the
// restored data is never flushed or compacted either. Before, the memtable
// flushes and the compactions that followed them were more than half of a
// restoring process's CPU time. Ingesting is semantically one atomic batch
// of the table's writes at a new sequence number, so overlapping tables (a
// changelog out of key order, a catch-up restore over older data) give the
// same state, only placed higher in the LSM.
type restoreRun struct {
	buf  []byte
	ents []runEntry
}

// runEntry is a record of a run: its key at buf[off:off+klen], its value
// after the key (vlen bytes; -1 for a tombstone), and its place in the
// changelog order (seq), which decides between two records of one key.
type runEntry struct {
	off  int
	klen int32
	vlen int32
	seq  int
}

// add appends a record: the Pebble key (prefix + key) and the value (nil
// for a tombstone).
func (r *restoreRun) add(prefix, key, value []byte, tombstone bool) {
	e := runEntry{off: len(r.buf), klen: int32(len(prefix) + len(key)), vlen: -1, seq: len(r.ents)}
	r.buf = append(append(r.buf, prefix...), key...)
	if !tombstone {
		e.vlen = int32(len(value))
		r.buf = append(r.buf, value...)
	}
	r.ents = append(r.ents, e)
}

func (r *restoreRun) size() int { return len(r.buf) }

func (r *restoreRun) key(e runEntry) []byte { return r.buf[e.off : e.off+int(e.klen)] }

func (r *restoreRun) value(e runEntry) []byte {
	v := e.off + int(e.klen)
	return r.buf[v : v+int(e.vlen)]
}

// sortLast sorts the run by key and keeps the last record of each key.
// Changelog partitions are often in key order already, which the sort
// detects in one pass.
func (r *restoreRun) sortLast() {
	slices.SortFunc(r.ents, func(a, b runEntry) int {
		if c := bytes.Compare(r.key(a), r.key(b)); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	out := r.ents[:0]
	for i, e := range r.ents {
		if i+1 < len(r.ents) && bytes.Equal(r.key(e), r.key(r.ents[i+1])) {
			continue // a later record of the key follows
		}
		out = append(out, e)
	}
	r.ents = out
}

func (r *restoreRun) reset() {
	r.buf = r.buf[:0]
	r.ents = r.ents[:0]
}

// toBatch adds the sorted run's writes to b.
func (r *restoreRun) toBatch(b *pebble.Batch) error {
	for _, e := range r.ents {
		var err error
		if e.vlen < 0 {
			err = b.Delete(r.key(e), nil)
		} else {
			err = b.Set(r.key(e), r.value(e), nil)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ingest writes the sorted run to a table in the ingest directory (synced,
// as Pebble requires) and has Pebble ingest it. When it returns nil the
// run's writes are durable; the caller writes the checkpoint after them.
func (t *Task) ingest(ctx context.Context, r *restoreRun, name string) error {
	fs := t.db.opts.FS
	dir := fs.PathJoin(t.db.opts.Dir, ingestDir)
	if err := fs.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	path := fs.PathJoin(dir, name)
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), t.db.tableOpts)
	for _, e := range r.ents {
		if e.vlen < 0 {
			err = w.Delete(r.key(e))
		} else {
			err = w.Set(r.key(e), r.value(e))
		}
		if err != nil {
			break
		}
	}
	// Close finishes the table: written, synced and closed, or an error.
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// On success Ingest removes the file from the ingest directory.
		if err = t.db.pdb.Ingest(ctx, []string{path}); err != nil {
			err = fmt.Errorf("ingest table: %w", err)
		}
	} else {
		err = fmt.Errorf("write table: %w", err)
	}
	if err != nil {
		_ = fs.Remove(path)
		return err
	}
	return nil
}
