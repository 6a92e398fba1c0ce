package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults for Options.
const (
	// DefaultCacheSize is the block cache size: 128 MiB. The cache holds
	// uncompressed data blocks shared by every store of the instance; hot
	// keys of a stream processor (open windows, recent ids) usually fit.
	DefaultCacheSize int64 = 128 << 20
	// DefaultMemTableSize is the memtable size: 32 MiB. Larger memtables
	// absorb more overwrites of hot keys before they reach L0.
	DefaultMemTableSize uint64 = 32 << 20
	// DefaultBloomBitsPerKey is the bloom filter density on data levels: 10
	// bits per key, about 1% false positives.
	DefaultBloomBitsPerKey = 10
	// DefaultReadCacheSize is the size of the tasks' read caches of
	// committed values: 32 MiB, shared evenly by the open stores.
	DefaultReadCacheSize int64 = 32 << 20
)

// formatVersion is the key layout version written in the meta range. A
// database with another version (or data but no version) is wiped and
// restored from the changelogs.
const formatVersion uint32 = 1

// Key namespaces: the first byte of every Pebble key.
const (
	nsMeta byte = 0x00 // format version, checkpoints
	nsData byte = 0x01 // store data
)

var (
	metaVersionKey = []byte{nsMeta, 'v'}
	// ErrClosed is returned by operations on a closed DB or Task.
	ErrClosed = errors.New("state: closed")
	// ErrTaskOpen is returned by OpenTask for a partition that already has
	// an open task.
	ErrTaskOpen = errors.New("state: task already open")
	// ErrUnknownStore is returned for a store name the task or DB does not
	// know.
	ErrUnknownStore = errors.New("state: unknown store")
)

// Options configure a DB. The zero value of every field but Dir means its
// default.
type Options struct {
	// Dir is the state directory (app.state_dir). It is created if missing.
	Dir string
	// AppID names the changelog topics: <AppID>.<store>.changelog.
	AppID string
	// CacheSize is the Pebble block cache size in bytes; default
	// DefaultCacheSize (128 MiB). 64–256 MiB fits most instances: below,
	// point reads of a working set of a few million keys miss too often;
	// above, memory is better left to the page cache.
	CacheSize int64
	// MemTableSize is the Pebble memtable size in bytes; default
	// DefaultMemTableSize (32 MiB).
	MemTableSize uint64
	// BloomBitsPerKey is the bloom filter density on every level; default
	// DefaultBloomBitsPerKey (10). Negative disables bloom filters.
	BloomBitsPerKey int
	// ReadCacheSize bounds the tasks' caches of committed values in bytes
	// (estimated, keys and values plus a per-entry overhead); default
	// DefaultReadCacheSize (32 MiB), shared evenly by the stores of the
	// open tasks. A key read or written in one transaction is usually read
	// again in the next: served from this cache, it costs a map look-up
	// instead of a Pebble read (memtable and block cache searches, block
	// decoding). Negative disables the cache.
	ReadCacheSize int64
	// Logger receives wipes and restores; default slog.Default().
	Logger *slog.Logger
	// FS is the file system Pebble uses; default vfs.Default (tests inject
	// failures through it).
	FS vfs.FS
	// Now is the clock of the in-sync times (see syncKey); default
	// time.Now.
	Now func() time.Time
}

func (o *Options) ensureDefaults() {
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.BloomBitsPerKey == 0 {
		o.BloomBitsPerKey = DefaultBloomBitsPerKey
	}
	if o.ReadCacheSize == 0 {
		o.ReadCacheSize = DefaultReadCacheSize
	}
	if o.ReadCacheSize < 0 {
		o.ReadCacheSize = 0
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// DB is the instance's state database: one Pebble database under the state
// directory holding every store of every task of the instance. A DB is safe
// for concurrent use; each Task it opens is used by one goroutine.
type DB struct {
	opts  Options
	lock  *pebble.Lock
	cache interface{ Unref() }
	pdb   *pebble.DB
	wiped bool
	// tableOpts write the sorted tables a restore ingests (see
	// restoreRun): the options of the database's L0 tables, so they carry
	// the same format, compression and bloom filters as Pebble's own.
	tableOpts sstable.WriterOptions

	mu     sync.Mutex
	tasks  map[int32]*Task
	closed bool
	// openStores counts the stores of the open tasks, which share the
	// read cache.
	openStores atomic.Int64
}

// Open opens (or creates) the state database in opts.Dir. A database that
// cannot be opened (corrupt files, another format, garbage in the directory)
// is wiped and created empty: the changelogs are the truth, so this costs a
// full restore and never a user-facing error. A directory locked by another
// process is an error, and so is a failure of the machine rather than of
// the data (see environmental): wiping would need a full restore onto the
// same disk, and would not help.
func Open(opts Options) (*DB, error) {
	opts.ensureDefaults()
	if opts.Dir == "" {
		return nil, errors.New("state: Options.Dir is empty")
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("state: create state dir: %w", err)
	}
	lock, err := pebble.LockDirectory(opts.Dir, vfs.Default)
	if err != nil {
		return nil, fmt.Errorf("state: lock state dir %s (is another instance using it?): %w", opts.Dir, err)
	}
	db := &DB{opts: opts, lock: lock, tasks: make(map[int32]*Task)}
	cache := pebble.NewCache(opts.CacheSize)
	db.cache = cache

	popts := func() *pebble.Options {
		po := &pebble.Options{
			Cache:        cache,
			MemTableSize: opts.MemTableSize,
			Lock:         lock,
			Logger:       quietLogger{opts.Logger},
			FS:           opts.FS,
		}
		if opts.BloomBitsPerKey > 0 {
			// L0 included: every level filters point reads of absent keys
			// (dedupe and join look-ups miss often).
			for i := range po.Levels {
				po.Levels[i].FilterPolicy = bloom.FilterPolicy(opts.BloomBitsPerKey)
			}
		}
		return po
	}

	pdb, err := openChecked(opts.Dir, popts())
	if err != nil && environmental(err) {
		db.release()
		return nil, fmt.Errorf("state: open state dir %s: %w (the state is kept: fix the cause and start again)", opts.Dir, err)
	}
	if err != nil {
		opts.Logger.Warn("state dir unusable, wiping it for a full restore from the changelogs", "dir", opts.Dir, "err", err)
		if werr := wipeDir(opts.Dir); werr != nil {
			db.release()
			return nil, fmt.Errorf("state: wipe state dir: %w (after open failed: %w)", werr, err)
		}
		db.wiped = true
		if pdb, err = openChecked(opts.Dir, popts()); err != nil {
			db.release()
			return nil, fmt.Errorf("state: open state dir %s after wipe: %w", opts.Dir, err)
		}
	}
	db.pdb = pdb
	po := popts()
	po.EnsureDefaults()
	db.tableOpts = po.MakeWriterOptions(0, pdb.TableFormat())
	// Tables a restore wrote but did not ingest (the process stopped in
	// between) are of no use.
	if err := opts.FS.RemoveAll(opts.FS.PathJoin(opts.Dir, ingestDir)); err != nil {
		_ = pdb.Close()
		db.release()
		return nil, fmt.Errorf("state: remove %s: %w", ingestDir, err)
	}
	return db, nil
}

// environmental reports whether err comes from the machine (permissions, a
// full or read-only disk, too many open files, an I/O error, memory) rather
// than from the data in the state dir.
func environmental(err error) bool {
	for _, e := range []error{fs.ErrPermission, syscall.ENOSPC, syscall.EDQUOT, syscall.EROFS,
		syscall.EMFILE, syscall.ENFILE, syscall.EIO, syscall.ENOMEM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// openChecked opens Pebble and checks the format version; on any failure the
// database is closed again and an error returned.
func openChecked(dir string, po *pebble.Options) (pdb *pebble.DB, err error) {
	defer func() {
		// Pebble may panic on some corrupt inputs while opening; that is a
		// corrupt state dir like any other.
		if r := recover(); r != nil {
			err = fmt.Errorf("pebble open panicked: %v", r)
		}
	}()
	pdb, err = pebble.Open(dir, po)
	if err != nil {
		return nil, err
	}
	if err := checkVersion(pdb); err != nil {
		_ = pdb.Close()
		return nil, err
	}
	return pdb, nil
}

func checkVersion(pdb *pebble.DB) error {
	v, closer, err := pdb.Get(metaVersionKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		it, err := pdb.NewIter(nil)
		if err != nil {
			return err
		}
		nonEmpty := it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return err
		}
		if nonEmpty {
			return errors.New("state dir holds data without a format version")
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], formatVersion)
		return pdb.Set(metaVersionKey, b[:], pebble.Sync)
	case err != nil:
		return err
	}
	defer closer.Close()
	if len(v) != 4 || binary.BigEndian.Uint32(v) != formatVersion {
		return fmt.Errorf("state dir has format version %x, want %d", v, formatVersion)
	}
	return nil
}

// wipeDir removes everything in dir but Pebble's LOCK file, which we hold.
func wipeDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// Wiped reports whether Open found the state dir unusable and wiped it.
func (db *DB) Wiped() bool { return db.wiped }

// Close closes the database. Open tasks are closed first (their open
// transactions discarded).
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	tasks := make([]*Task, 0, len(db.tasks))
	for _, t := range db.tasks {
		tasks = append(tasks, t)
	}
	db.mu.Unlock()
	var errs []error
	for _, t := range tasks {
		errs = append(errs, t.Close())
	}
	db.mu.Lock()
	db.closed = true
	db.mu.Unlock()
	errs = append(errs, db.pdb.Close())
	db.release()
	return errors.Join(errs...)
}

func (db *DB) release() {
	if db.cache != nil {
		db.cache.Unref()
		db.cache = nil
	}
	if db.lock != nil {
		_ = db.lock.Close()
		db.lock = nil
	}
}

// ChangelogTopic is the changelog topic of a store: <appID>.<store>.changelog.
func ChangelogTopic(appID, store string) string {
	return appID + "." + store + ".changelog"
}

// Get returns the committed value of key in store for partition: the state
// as of the task's last committed transaction whose batch is applied (see
// Task.Commit), never an open one. It is safe
// to call from any goroutine (the HTTP query API). The engine finds the
// partition with PartitionFor. The returned value is a copy.
func (db *DB) Get(store string, partition int32, key []byte) (value []byte, ok bool, err error) {
	v, closer, err := db.pdb.Get(dataKey(store, partition, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: get %s/%d: %w", store, partition, err)
	}
	defer closer.Close()
	return bytes.Clone(v), true, nil
}

// KV is a key and value returned by Scan.
type KV struct {
	Key   []byte
	Value []byte
}

// Scan returns up to limit committed entries of store for partition whose
// keys start with prefix, in key order (limit <= 0 means no limit). Like Get,
// it reads committed state and is safe from any goroutine.
func (db *DB) Scan(store string, partition int32, prefix []byte, limit int) ([]KV, error) {
	return db.ScanFrom(store, partition, prefix, nil, limit)
}

// ScanFrom is Scan starting at the first key >= from (nil: at the prefix):
// a caller that skips a leading key range (the internal keys, which start
// with 0x00) still gets limit entries without reading the range.
func (db *DB) ScanFrom(store string, partition int32, prefix, from []byte, limit int) ([]KV, error) {
	rp := rangePrefix(store, partition)
	lower := append(bytes.Clone(rp), prefix...)
	upper := prefixEnd(lower)
	if start := append(bytes.Clone(rp), from...); bytes.Compare(start, lower) > 0 {
		lower = start
	}
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("state: scan %s/%d: %w", store, partition, err)
	}
	var out []KV
	for ok := it.First(); ok && (limit <= 0 || len(out) < limit); ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("state: scan %s/%d: %w", store, partition, err)
		}
		out = append(out, KV{Key: bytes.Clone(it.Key()[len(rp):]), Value: bytes.Clone(v)})
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("state: scan %s/%d: %w", store, partition, err)
	}
	return out, nil
}

// Checkpoint returns the changelog checkpoint of store for partition: the
// next changelog offset to restore from. ok is false when there is none.
func (db *DB) Checkpoint(store string, partition int32) (offset int64, ok bool, err error) {
	v, closer, err := db.pdb.Get(checkpointKey(store, partition))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("state: read checkpoint %s/%d: %w", store, partition, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, false, fmt.Errorf("state: checkpoint %s/%d has %d bytes, want 8", store, partition, len(v))
	}
	return int64(binary.BigEndian.Uint64(v)), true, nil
}

type iterMaker interface {
	NewIter(*pebble.IterOptions) (*pebble.Iterator, error)
}

// scan iterates the keys of range rp that start with prefix, passing keys
// with rp stripped. The slices are valid only during fn.
func scan(r iterMaker, rp, prefix []byte, fn func(k, v []byte) bool) error {
	lower := append(bytes.Clone(rp), prefix...)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if !fn(it.Key()[len(rp):], v) {
			break
		}
	}
	return errors.Join(it.Error(), it.Close())
}

// Key layout. Every store of every task is a disjoint key range:
//
//	data:       0x01 | uint16 len(store) | store | uint32 partition | user key
//	checkpoint: 0x00 'c' | uint16 len(store) | store | uint32 partition
//	in sync:    0x00 's' | uint32 partition (see syncKey)
//
// The store name is length-prefixed, so no (store, partition) prefix is a
// prefix of another and a range scan never crosses into a neighbour.
func rangePrefix(store string, partition int32) []byte {
	b := make([]byte, 0, 1+2+len(store)+4)
	b = append(b, nsData)
	b = binary.BigEndian.AppendUint16(b, uint16(len(store)))
	b = append(b, store...)
	return binary.BigEndian.AppendUint32(b, uint32(partition))
}

func dataKey(store string, partition int32, key []byte) []byte {
	return append(rangePrefix(store, partition), key...)
}

func checkpointKey(store string, partition int32) []byte {
	b := make([]byte, 0, 2+2+len(store)+4)
	b = append(b, nsMeta, 'c')
	b = binary.BigEndian.AppendUint16(b, uint16(len(store)))
	b = append(b, store...)
	return binary.BigEndian.AppendUint32(b, uint32(partition))
}

func encodeOffset(o int64) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(o))
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil (no upper bound) when p is all 0xff.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// quietLogger routes Pebble's informational logs to debug level.
type quietLogger struct{ l *slog.Logger }

func (q quietLogger) Infof(format string, args ...any) {
	q.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (q quietLogger) Errorf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (q quietLogger) Fatalf(format string, args ...any) {
	q.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	os.Exit(1)
}

var _ io.Closer = (*DB)(nil)

// Count returns the number of committed keys of store for partition, not
// counting keys for which skip (if not nil) returns true. It reads keys
// only and is safe from any goroutine.
func (db *DB) Count(store string, partition int32, skip func(key []byte) bool) (int64, error) {
	rp := rangePrefix(store, partition)
	it, err := db.pdb.NewIter(&pebble.IterOptions{LowerBound: rp, UpperBound: prefixEnd(rp)})
	if err != nil {
		return 0, fmt.Errorf("state: count %s/%d: %w", store, partition, err)
	}
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		if skip == nil || !skip(it.Key()[len(rp):]) {
			n++
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return 0, fmt.Errorf("state: count %s/%d: %w", store, partition, err)
	}
	return n, nil
}
