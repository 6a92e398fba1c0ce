package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// inputRec is one record of the input topic as the verifier read it.
type inputRec struct {
	part int32
	off  int64
	ts   int64 // ms
	key  string
	ev   event
}

// outRec is one output record read with read_committed, in partition order.
type outRec struct {
	part  int32
	off   int64
	ts    int64  // ms
	code  string // veltrix.error.code header (DLQ records)
	key   string
	value []byte
}

// verdict is what the verifier found.
type verdict struct {
	records, duplicated, missing, wrong int
	problems                            []string // the first few, for the report
}

func (v *verdict) problem(format string, args ...any) {
	if len(v.problems) < 12 {
		v.problems = append(v.problems, fmt.Sprintf(format, args...))
	}
}

func (v *verdict) ok() bool {
	return v.duplicated == 0 && v.missing == 0 && v.wrong == 0
}

// checkEcho: every input record's seq comes out of the echo rule exactly once.
func checkEcho(v *verdict, in []inputRec, out []outRec) {
	want := map[int64]int{}
	for _, r := range in {
		want[r.ev.Seq]++
	}
	got := map[int64]int{}
	for _, r := range out {
		var ev event
		if err := json.Unmarshal(r.value, &ev); err != nil {
			v.wrong++
			v.problem("echo p%d@%d: not an input event: %q", r.part, r.off, r.value)
			continue
		}
		got[ev.Seq]++
	}
	for seq, n := range got {
		w := want[seq]
		switch {
		case w == 0:
			v.wrong += n
			v.problem("echo: seq %d was never input", seq)
		case n > w:
			v.duplicated += n - w
			v.problem("echo: seq %d out %d times", seq, n)
		}
	}
	for seq, w := range want {
		if n := got[seq]; n < w {
			v.missing += w - n
			v.problem("echo: seq %d missing", seq)
		}
	}
}

// aggResult is an aggregate output value.
type aggResult struct {
	Key         string   `json:"key"`
	Count       int      `json:"count"`
	Sum         *float64 `json:"sum"`
	WindowStart string   `json:"window_start"`
}

// checkSums: per key, the running results are count 1..n in order, each with
// the sum of that key's first count values in input order.
func checkSums(v *verdict, in []inputRec, out []outRec) {
	prefix := map[string][]float64{} // key -> prefix sums, index count-1
	for _, r := range in {
		p := prefix[r.key]
		last := 0.0
		if len(p) > 0 {
			last = p[len(p)-1]
		}
		prefix[r.key] = append(p, last+float64(r.ev.V))
	}
	seen := map[string]map[int]bool{}
	for _, r := range out {
		var a aggResult
		if err := json.Unmarshal(r.value, &a); err != nil || a.Sum == nil {
			v.wrong++
			v.problem("sums p%d@%d: not a result: %q", r.part, r.off, r.value)
			continue
		}
		p := prefix[a.Key]
		if a.Count < 1 || a.Count > len(p) {
			v.wrong++
			v.problem("sums: key %s count %d but the key has %d records (p%d@%d)", a.Key, a.Count, len(p), r.part, r.off)
			continue
		}
		s := seen[a.Key]
		if s == nil {
			s = map[int]bool{}
			seen[a.Key] = s
		}
		if s[a.Count] {
			v.duplicated++
			v.problem("sums: key %s count %d out again (p%d@%d)", a.Key, a.Count, r.part, r.off)
			continue
		}
		s[a.Count] = true
		if math.Abs(*a.Sum-p[a.Count-1]) > 1e-6 {
			v.wrong++
			v.problem("sums: key %s count %d sum %v, want %v (p%d@%d)", a.Key, a.Count, *a.Sum, p[a.Count-1], r.part, r.off)
		}
	}
	for k, p := range prefix {
		if n := len(p) - len(seen[k]); n > 0 {
			v.missing += n
			v.problem("sums: key %s: %d of %d results missing", k, n, len(p))
		}
	}
}

// checkWindows: every window closed by its task's final stream time is
// emitted once with its exact count; no other window is emitted. A task is
// a partition number: input partition p and the sums rule's repartition
// partition p share one stream time, so streamTime is the largest record
// time of both (repartitionTime holds the latter).
func checkWindows(v *verdict, in []inputRec, repartitionTime map[int32]int64, out []outRec) {
	size := windowSize.Milliseconds()
	streamTime := map[int32]int64{}
	for p, ts := range repartitionTime {
		streamTime[p] = ts
	}
	for _, r := range in {
		streamTime[r.part] = max(streamTime[r.part], r.ts)
	}
	type win struct {
		key   string
		start int64
	}
	want := map[win]int{}
	byKey := map[string][]inputRec{}
	for _, r := range in {
		byKey[r.key] = append(byKey[r.key], r)
	}
	for _, r := range in {
		start := r.ts - r.ts%size
		// A window closes when stream time reaches its end (grace 0); the
		// boundary itself is not checked.
		if start+size+windowGrace.Milliseconds() < streamTime[r.part] {
			want[win{r.key, start}]++
		}
	}
	got := map[win]bool{}
	for _, r := range out {
		var a aggResult
		if err := json.Unmarshal(r.value, &a); err != nil {
			v.wrong++
			v.problem("windows p%d@%d: not a result: %q", r.part, r.off, r.value)
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, a.WindowStart)
		if err != nil {
			v.wrong++
			v.problem("windows p%d@%d: window_start %q: %v", r.part, r.off, a.WindowStart, err)
			continue
		}
		w := win{a.Key, ts.UnixMilli()}
		n, expected := want[w]
		switch {
		case got[w]:
			v.duplicated++
			v.problem("windows: %s@%s out again with count %d (p%d@%d)", w.key, a.WindowStart, a.Count, r.part, r.off)
		case !expected:
			v.wrong++
			var ins []string
			for _, x := range byKey[w.key] {
				ins = append(ins, fmt.Sprintf("seq %d p%d@%d %s", x.ev.Seq, x.part, x.off, time.UnixMilli(x.ts).UTC().Format("15:04:05.000")))
			}
			v.problem("windows: %s@%s (count %d) is not a closed window (p%d@%d; input: %s)", w.key, a.WindowStart, a.Count, r.part, r.off, strings.Join(ins, ", "))
		case n != a.Count:
			v.wrong++
			v.problem("windows: %s@%s count %d, want %d (p%d@%d)", w.key, a.WindowStart, a.Count, n, r.part, r.off)
		}
		got[w] = true
	}
	for w := range want {
		if !got[w] {
			v.missing++
			v.problem("windows: %s@%d not emitted", w.key, w.start)
		}
	}
}

// readInput reads the whole input topic (not transactional) up to its end
// offsets.
func readInput(ctx context.Context, brokers, topic string, adm *kadm.Client) ([]inputRec, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("input end offsets: %w", err)
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var recs []inputRec
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read input: %d partitions not read to their end: %w", len(left), ctx.Err())
		}
		fs.EachRecord(func(r *kgo.Record) {
			var ev event
			_ = json.Unmarshal(r.Value, &ev)
			recs = append(recs, inputRec{part: r.Partition, off: r.Offset, ts: r.Timestamp.UnixMilli(), key: string(r.Key), ev: ev})
			if end, ok := left[r.Partition]; ok && r.Offset+1 >= end {
				delete(left, r.Partition)
			}
		})
	}
	sort.Slice(recs, func(i, j int) bool {
		if recs[i].part != recs[j].part {
			return recs[i].part < recs[j].part
		}
		return recs[i].off < recs[j].off
	})
	return recs, nil
}

// readCommitted reads a topic read_committed from the start until nothing
// new comes for idle (the end has been checked stable before: LSO == HWM).
func readCommitted(ctx context.Context, brokers, topic string, idle time.Duration) ([]outRec, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(300*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var recs []outRec
	deadline := time.Now().Add(3 * time.Minute)
	for {
		pctx, cancel := context.WithTimeout(ctx, idle)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			code := ""
			for _, h := range r.Headers {
				if h.Key == "veltrix.error.code" {
					code = string(h.Value)
				}
			}
			recs = append(recs, outRec{code: code, part: r.Partition, off: r.Offset, ts: r.Timestamp.UnixMilli(), key: string(r.Key), value: r.Value})
		})
		if n == 0 || time.Now().After(deadline) {
			break
		}
	}
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].part != recs[j].part {
			return recs[i].part < recs[j].part
		}
		return recs[i].off < recs[j].off
	})
	return recs, nil
}

// offsetsSettled reports what still differs: input partitions whose group
// commit is not at the end, and output or internal partitions whose last
// stable offset is below the high watermark (a transaction still open).
func offsetsSettled(ctx context.Context, adm *kadm.Client, t topics) ([]string, error) {
	var diffs []string
	ends, err := adm.ListEndOffsets(ctx, t.in)
	if err != nil {
		return nil, err
	}
	committed, err := adm.FetchOffsetsForTopics(ctx, t.app, t.in)
	if err != nil {
		return nil, err
	}
	ends.Each(func(o kadm.ListedOffset) {
		c, _ := committed.Lookup(o.Topic, o.Partition)
		at := c.At
		if at < 0 {
			at = 0
		}
		if o.Err == nil && at != o.Offset {
			diffs = append(diffs, fmt.Sprintf("%s p%d committed %d, end %d", o.Topic, o.Partition, at, o.Offset))
		}
	})
	names := append(t.outputs(), t.internal()...)
	hw, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, err
	}
	lso, err := adm.ListCommittedOffsets(ctx, names...)
	if err != nil {
		return nil, err
	}
	hw.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			return // an internal topic a scenario never created
		}
		l, ok := lso.Lookup(o.Topic, o.Partition)
		if !ok || l.Err != nil || l.Offset != o.Offset {
			diffs = append(diffs, fmt.Sprintf("%s p%d LSO %d, high watermark %d", o.Topic, o.Partition, l.Offset, o.Offset))
		}
	})
	sort.Strings(diffs)
	return diffs, nil
}

// waitSettled polls offsetsSettled until nothing differs or timeout passes;
// it returns the last differences.
func waitSettled(ctx context.Context, adm *kadm.Client, t topics, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	var last []string
	for {
		d, err := offsetsSettled(ctx, adm, t)
		if err != nil {
			last = []string{err.Error()}
		} else {
			last = d
			if len(d) == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return last
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// verify reads the input and every output and checks them.
func verify(ctx context.Context, brokers string, adm *kadm.Client, t topics) (verdict, error) {
	var v verdict
	in, err := readInput(ctx, brokers, t.in, adm)
	if err != nil {
		return v, err
	}
	v.records = len(in)
	read := func(topic string) ([]outRec, error) { return readCommitted(ctx, brokers, topic, 3*time.Second) }
	echo, err := read(t.echo)
	if err != nil {
		return v, err
	}
	checkEcho(&v, in, echo)
	sums, err := read(t.sums)
	if err != nil {
		return v, err
	}
	checkSums(&v, in, sums)
	wins, err := read(t.windows)
	if err != nil {
		return v, err
	}
	rep, err := readCommitted(ctx, brokers, t.app+".sums.repartition", 3*time.Second)
	if err != nil {
		return v, err
	}
	repTime := map[int32]int64{}
	for _, r := range rep {
		repTime[r.part] = max(repTime[r.part], r.ts)
	}
	checkWindows(&v, in, repTime, wins)
	// DLQ records are not failures by themselves (a late record goes
	// there), but they explain missing results: counted by code.
	dlq, err := readCommitted(ctx, brokers, t.app+".dlq", 2*time.Second)
	if err == nil && len(dlq) > 0 {
		codes := map[string]int{}
		for _, r := range dlq {
			codes[r.code]++
		}
		v.problem("dlq: %d records %v", len(dlq), codes)
	}
	return v, nil
}
