package engine

import (
	"context"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/s2"

	"github.com/twmb/franz-go/pkg/kgo"
)

// fetchPools lends the client the memory fetched batches are decompressed
// and decoded into (kgo.WithPools), so that each poll does not allocate it
// afresh: without them half the bytes a stateless rule allocates are these
// buffers, and the garbage collector runs several times as often. The
// memory comes back when the engine recycles the records (see batchRef).
//
// Buffers are kept by size class (powers of two), so that a small batch
// never holds on to a buffer grown for a large one.
type fetchPools struct {
	bytes   [classes]sync.Pool // *[]byte with a capacity of at least 1<<class
	records [classes]sync.Pool // *[]kgo.Record, likewise
}

// classes bounds the pooled sizes: 1<<31 bytes or records is more than a
// fetch response holds (fetchMaxBytes).
const classes = 32

// classFor is the smallest class whose members hold n.
func classFor(n int) int { return bits.Len(uint(max(n, 1) - 1)) }

// classOf is the class a slice of capacity c belongs to (the largest whose
// size it reaches), or -1 if it is outside the classes.
func classOf(c int) int {
	k := bits.Len(uint(c)) - 1
	if k < 0 || k >= classes {
		return -1
	}
	return k
}

// GetDecompressBytes implements kgo.PoolDecompressBytes. The decoded size
// of a snappy batch is in its header; others are guessed at four times
// their compressed size. A buffer too small for the batch is grown by the
// client, which then gives back the grown one.
func (p *fetchPools) GetDecompressBytes(compressed []byte, codec kgo.CompressionCodecType) []byte {
	n := 4 * len(compressed)
	if codec == kgo.CodecSnappy {
		if d, err := s2.DecodedLen(compressed); err == nil {
			n = d
		}
	}
	if k := classFor(n); k < classes {
		if b, ok := p.bytes[k].Get().(*[]byte); ok {
			return *b
		}
		return make([]byte, 0, 1<<k)
	}
	return nil
}

// PutDecompressBytes implements kgo.PoolDecompressBytes.
func (p *fetchPools) PutDecompressBytes(b []byte) {
	if k := classOf(cap(b)); k >= 0 {
		p.bytes[k].Put(&b)
	}
}

// GetRecords implements kgo.PoolRecords.
func (p *fetchPools) GetRecords(n int) []kgo.Record {
	if k := classFor(n); k < classes {
		if rs, ok := p.records[k].Get().(*[]kgo.Record); ok {
			return (*rs)[:0]
		}
		return make([]kgo.Record, 0, 1<<k)
	}
	return nil
}

// PutRecords implements kgo.PoolRecords.
func (p *fetchPools) PutRecords(rs []kgo.Record) {
	if k := classOf(cap(rs)); k >= 0 {
		p.records[k].Put(&rs)
	}
}

// batchRef counts what still reads the records of one batch a task runs
// (one poll's records of its partition): the batch's processing, and every
// output produced while it ran that the client has not finished with (an
// output may share its input's bytes: an event passed on unchanged, a dead
// letter). Emit attaches the batch to each output as its record context;
// the producer releases it with the produce result. The last release
// recycles the batch's records, so their memory goes back to fetchPools
// while the transaction is still open, as soon as nothing reads it.
//
// Nothing may keep a record's Key, Value or Headers past its processing
// without copying them: the stores copy what they are given.
type batchRef struct {
	context.Context // the outputs' record context (franz-go asks it for Done)
	pending         atomic.Int64
	parts           []kgo.FetchTopicPartition
}

// newBatchRef returns the reference of a batch about to be processed: its
// processing holds it.
func newBatchRef(parts []kgo.FetchTopicPartition) *batchRef {
	b := &batchRef{Context: context.Background(), parts: parts}
	b.pending.Store(1)
	return b
}

// hold counts one more reader: an output about to be produced.
func (b *batchRef) hold() { b.pending.Add(1) }

// release ends one reader; the last recycles the records.
func (b *batchRef) release() {
	if b.pending.Add(-1) != 0 {
		return
	}
	for _, p := range b.parts {
		for _, r := range p.Records {
			r.Recycle()
		}
	}
}
