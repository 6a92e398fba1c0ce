// Package dlq reads the dead-letter topics and replays their records: the
// console's DLQ browser. Reads are bounded (the newest records of each
// partition, read_committed, within the caller's deadline); a replay
// re-reads each chosen record from its DLQ topic, so what is sent back is
// what the DLQ holds and never what a client claims, and produces it to its
// source topic and partition with an audit header.
package dlq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/topology"
)

// HeaderReplay is added to a replayed record: a JSON object saying where it
// came from, when, and who asked (see Audit).
const HeaderReplay = "veltrix.replay"

// Record is one DLQ record with its Veltrix headers decoded.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       []byte
	Value     []byte
	Headers   []kgo.RecordHeader

	Code    string // veltrix.error.code
	Message string // veltrix.error.message
	Rule    string // veltrix.rule
	// SourceTopic, SourcePartition and SourceOffset say which input record
	// failed; SourcePartition and SourceOffset are -1 when absent.
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
	// Truncated is set when the DLQ record was shortened to fit
	// kafka.max_record_bytes: it cannot be replayed.
	Truncated bool
}

// Ref names one DLQ record.
type Ref struct {
	Topic     string
	Partition int32
	Offset    int64
}

func (r Ref) String() string { return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset) }

// ParseRef parses "topic/partition/offset" (the topic may hold no '/':
// Kafka topic names cannot).
func ParseRef(s string) (Ref, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" {
		return Ref{}, fmt.Errorf("dlq: record %q: want topic/partition/offset", s)
	}
	p, err1 := strconv.ParseInt(parts[1], 10, 32)
	o, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return Ref{}, fmt.Errorf("dlq: record %q: want topic/partition/offset with numbers", s)
	}
	return Ref{Topic: parts[0], Partition: int32(p), Offset: o}, nil
}

// Ref returns the record's name.
func (r Record) Ref() Ref { return Ref{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset} }

func decode(r *kgo.Record) Record {
	out := Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp,
		Key: r.Key, Value: r.Value, Headers: r.Headers, SourcePartition: -1, SourceOffset: -1}
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case topology.HeaderErrorCode:
			out.Code = v
		case topology.HeaderErrorMessage:
			out.Message = v
		case topology.HeaderRule:
			out.Rule = v
		case topology.HeaderSourceTopic:
			out.SourceTopic = v
		case topology.HeaderSourcePartition:
			if p, err := strconv.ParseInt(v, 10, 32); err == nil {
				out.SourcePartition = int32(p)
			}
		case topology.HeaderSourceOffset:
			if o, err := strconv.ParseInt(v, 10, 64); err == nil {
				out.SourceOffset = o
			}
		case topology.HeaderDLQTruncated:
			out.Truncated = true
		}
	}
	return out
}

// Client reads and replays DLQ records. It connects per call: the console
// uses it rarely, and an idle instance keeps no extra connections.
type Client struct {
	kafka []kgo.Opt
}

// New returns a client connecting with the given options (seed brokers,
// TLS, SASL: kafkaconn.Options); it adds its own consuming options.
func New(kafka ...kgo.Opt) *Client { return &Client{kafka: kafka} }

// MaxPerPartition bounds Latest's perPartition.
const MaxPerPartition = 500

// Latest returns up to perPartition (at most MaxPerPartition) of the newest
// committed records of every partition of topics, newest first. It looks
// back 2*perPartition+2 offsets from each partition's last stable offset
// (transaction markers and aborted records take offsets too) and keeps the
// newest perPartition records found there. It stops at ctx's deadline and
// returns what it read, with partial true, when the partitions' ends were
// not all reached.
func (c *Client) Latest(ctx context.Context, topics []string, perPartition int) (recs []Record, partial bool, err error) {
	perPartition = min(max(perPartition, 1), MaxPerPartition)
	cl, err := kgo.NewClient(c.kafka...)
	if err != nil {
		return nil, false, fmt.Errorf("dlq: %w", err)
	}
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	var ends kadm.ListedOffsets
	if err == nil {
		// The last stable offset: the end a read_committed reader reaches.
		ends, err = adm.ListCommittedOffsets(ctx, topics...)
		if err == nil {
			err = ends.Error()
		}
	}
	cl.Close()
	if err != nil {
		return nil, false, fmt.Errorf("dlq: list offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	consume := map[string]map[int32]kgo.Offset{}
	want := map[Ref]bool{} // the last offset of each partition to reach
	ends.Each(func(e kadm.ListedOffset) {
		start := e.Offset - int64(2*perPartition+2)
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok {
			start = max(start, s.Offset)
		}
		if start >= e.Offset {
			return
		}
		if consume[e.Topic] == nil {
			consume[e.Topic] = map[int32]kgo.Offset{}
		}
		consume[e.Topic][e.Partition] = kgo.NewOffset().At(start)
		want[Ref{Topic: e.Topic, Partition: e.Partition}] = true
	})
	if len(consume) == 0 {
		return nil, false, nil
	}
	last := map[Ref]int64{}
	ends.Each(func(e kadm.ListedOffset) {
		last[Ref{Topic: e.Topic, Partition: e.Partition}] = e.Offset - 1
	})
	rd, err := kgo.NewClient(append(slices.Clone(c.kafka),
		kgo.ConsumePartitions(consume),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers take offsets: seeing them is how a reader
		// knows it reached the last stable offset.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, false, fmt.Errorf("dlq: %w", err)
	}
	defer rd.Close()
	for len(want) > 0 {
		fetches := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		for _, fe := range fetches.Errors() {
			if !errors.Is(fe.Err, context.Canceled) && !errors.Is(fe.Err, context.DeadlineExceeded) {
				return nil, false, fmt.Errorf("dlq: read %s[%d]: %w", fe.Topic, fe.Partition, fe.Err)
			}
		}
		fetches.EachRecord(func(r *kgo.Record) {
			k := Ref{Topic: r.Topic, Partition: r.Partition}
			if r.Offset >= last[k] {
				delete(want, k)
			}
			if r.Offset > last[k] || r.Attrs.IsControl() {
				return
			}
			recs = append(recs, decode(r))
		})
	}
	// Keep the newest perPartition of each partition.
	slices.SortFunc(recs, func(a, b Record) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(b.Offset - a.Offset)
	})
	count := map[Ref]int{}
	kept := make([]Record, 0, len(recs))
	for _, r := range recs {
		k := Ref{Topic: r.Topic, Partition: r.Partition}
		if count[k] < perPartition {
			kept = append(kept, r)
		}
		count[k]++
	}
	recs = kept
	slices.SortFunc(recs, func(a, b Record) int {
		if c := b.Timestamp.Compare(a.Timestamp); c != 0 {
			return c
		}
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(b.Offset - a.Offset)
	})
	return recs, len(want) > 0, nil
}

// ErrNotFound marks a DLQ record that is not there (out of retention,
// aborted, or a control record).
var ErrNotFound = errors.New("dlq: no such record")

// Get reads one committed record of a DLQ topic; a record outside the
// partition's committed range is ErrNotFound at once.
func (c *Client) Get(ctx context.Context, ref Ref) (Record, error) {
	cl, err := kgo.NewClient(c.kafka...)
	if err != nil {
		return Record{}, fmt.Errorf("dlq: %w", err)
	}
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, ref.Topic)
	var ends kadm.ListedOffsets
	if err == nil {
		ends, err = adm.ListCommittedOffsets(ctx, ref.Topic)
	}
	cl.Close()
	if err != nil {
		return Record{}, fmt.Errorf("dlq: list offsets of %s: %w", ref.Topic, err)
	}
	s, ok1 := starts.Lookup(ref.Topic, ref.Partition)
	e, ok2 := ends.Lookup(ref.Topic, ref.Partition)
	if !ok1 || !ok2 || s.Err != nil || e.Err != nil || ref.Offset < s.Offset || ref.Offset >= e.Offset {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
	}
	rd, err := kgo.NewClient(append(slices.Clone(c.kafka),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{ref.Topic: {ref.Partition: kgo.NewOffset().At(ref.Offset)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return Record{}, fmt.Errorf("dlq: %w", err)
	}
	defer rd.Close()
	for {
		fetches := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return Record{}, fmt.Errorf("dlq: read %s: %w", ref, err)
		}
		for _, fe := range fetches.Errors() {
			return Record{}, fmt.Errorf("dlq: read %s: %w", ref, fe.Err)
		}
		var (
			got   *kgo.Record
			ahead bool
		)
		fetches.EachRecord(func(r *kgo.Record) {
			switch {
			case r.Offset == ref.Offset && !r.Attrs.IsControl():
				got = r
			case r.Offset >= ref.Offset:
				ahead = true
			}
		})
		if got != nil {
			return decode(got), nil
		}
		if ahead {
			return Record{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
		}
	}
}

// Audit says who replayed a record and when; it is the value of the
// HeaderReplay header with the record's DLQ place and error.
type Audit struct {
	By string    // who asked: the console user's address
	At time.Time // when
}

type auditHeader struct {
	DLQTopic     string `json:"dlq_topic"`
	DLQPartition int32  `json:"dlq_partition"`
	DLQOffset    int64  `json:"dlq_offset"`
	Code         string `json:"code,omitempty"`
	Rule         string `json:"rule,omitempty"`
	At           string `json:"at"`
	By           string `json:"by,omitempty"`
}

// ReplayRecord returns the record a replay of r produces: r's key, value
// and original headers (the veltrix.* headers the DLQ added are left out)
// plus HeaderReplay, for the source topic and partition. It fails for a
// record that cannot be replayed as it was consumed: one shortened to fit
// the DLQ, or without its source headers.
func ReplayRecord(r Record, a Audit) (*kgo.Record, error) {
	switch {
	case r.Truncated:
		return nil, fmt.Errorf("dlq: %s was shortened to fit kafka.max_record_bytes: its original value is not in the DLQ", r.Ref())
	case r.SourceTopic == "" || r.SourcePartition < 0:
		return nil, fmt.Errorf("dlq: %s has no %s/%s headers: its source is unknown", r.Ref(), topology.HeaderSourceTopic, topology.HeaderSourcePartition)
	}
	out := &kgo.Record{Topic: r.SourceTopic, Partition: r.SourcePartition, Key: r.Key, Value: r.Value}
	for _, h := range r.Headers {
		switch h.Key {
		case topology.HeaderErrorCode, topology.HeaderErrorMessage, topology.HeaderRule, topology.HeaderDLQTruncated,
			topology.HeaderSourceTopic, topology.HeaderSourcePartition, topology.HeaderSourceOffset, HeaderReplay:
			continue
		}
		out.Headers = append(out.Headers, h)
	}
	audit, err := json.Marshal(auditHeader{DLQTopic: r.Topic, DLQPartition: r.Partition, DLQOffset: r.Offset,
		Code: r.Code, Rule: r.Rule, At: a.At.UTC().Format(time.RFC3339Nano), By: a.By})
	if err != nil {
		return nil, fmt.Errorf("dlq: audit header: %w", err)
	}
	out.Headers = append(out.Headers, kgo.RecordHeader{Key: HeaderReplay, Value: audit})
	return out, nil
}

// Replayed is the outcome of replaying one record.
type Replayed struct {
	Ref    Ref
	To     string // source topic/partition/offset written, when Err is nil
	Record Record
	Err    error
}

// Replay re-reads each record from its DLQ topic and produces it to its
// source topic and partition (see ReplayRecord); allowed says which source
// topics may be written (the topology's inputs). Each record's outcome is
// reported; the error is for a failure of the whole call.
func (c *Client) Replay(ctx context.Context, refs []Ref, allowed func(topic string) bool, a Audit) ([]Replayed, error) {
	pr, err := kgo.NewClient(append(slices.Clone(c.kafka), kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	if err != nil {
		return nil, fmt.Errorf("dlq: %w", err)
	}
	defer pr.Close()
	out := make([]Replayed, 0, len(refs))
	for _, ref := range refs {
		res := Replayed{Ref: ref}
		res.Record, res.Err = c.Get(ctx, ref)
		var rec *kgo.Record
		if res.Err == nil {
			rec, res.Err = ReplayRecord(res.Record, a)
		}
		if res.Err == nil && !allowed(rec.Topic) {
			res.Err = fmt.Errorf("dlq: %s: source topic %q is not an input of this topology", ref, rec.Topic)
		}
		if res.Err == nil {
			if res.Err = pr.ProduceSync(ctx, rec).FirstErr(); res.Err == nil {
				res.To = fmt.Sprintf("%s/%d/%d", rec.Topic, rec.Partition, rec.Offset)
			}
		}
		out = append(out, res)
	}
	return out, nil
}
