package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"
)

// rawAggregate is a diagnostic (run only when named): the Kafka work of
// veltrix-aggregate-eos done by a minimal franz-go program, and none of the
// rest. It re-keys each input record by customer into a repartition topic,
// reads those back, counts and sums per customer in a Go map and produces
// each update to the output, and before each commit produces one changelog
// record per customer updated in the transaction: the same five records per
// input, in 100 ms transactions. It finds its two fields with a byte search
// (no JSON validation, so a malformed event could not be told apart), keeps
// no local store and cannot roll its map back, so an aborted transaction
// fails it. Its records/s is the ceiling that the client and broker set for
// this topology.
func rawAggregate(ctx context.Context, h *harness) result {
	const name = "raw-aggregate-eos"
	start := func(in, out, group string) (*child, error) {
		for _, t := range []string{out + ".repartition", out + ".changelog"} {
			if err := h.createTopic(ctx, t); err != nil {
				return nil, err
			}
		}
		return h.startSelf(name)(in, out, group)
	}
	r := h.runThroughput(ctx, name, start, newCountChecker(h.custCount, h.custSum, h.cfg.records, true))
	if r.Status == statusOK {
		r.Note = "hand-written franz-go loop doing the aggregate's Kafka work: repartition, output, changelog"
	}
	return r
}

// fieldAfter returns the bytes after name up to the first of the end bytes.
func fieldAfter(v []byte, name, end string) ([]byte, bool) {
	i := bytes.Index(v, []byte(name))
	if i < 0 {
		return nil, false
	}
	v = v[i+len(name):]
	j := bytes.IndexAny(v, end)
	if j < 0 {
		return nil, false
	}
	return v[:j], true
}

// appendAggValue appends the output value veltrix's aggregate writes for a
// count and sum: {"count":N,"key":"K","sum":S}.
func appendAggValue(b []byte, key string, count int64, sum float64) []byte {
	b = append(b, `{"count":`...)
	b = strconv.AppendInt(b, count, 10)
	b = append(b, `,"key":"`...)
	b = append(b, key...)
	b = append(b, `","sum":`...)
	b = strconv.AppendFloat(b, sum, 'g', -1, 64)
	return append(b, '}')
}

func rawAggregateEOS(ctx context.Context, a childArgs) error {
	rep, changelog := a.out+".repartition", a.out+".changelog"
	s, err := newRawSession(a, a.in, rep)
	if err != nil {
		return err
	}
	defer s.Close()
	type agg struct {
		count int64
		sum   float64
	}
	state := map[string]*agg{}
	dirty := map[string]*agg{} // customers updated in the open transaction
	var errs produceErrors
	return transact(ctx, s, &errs, txnLoop{
		each: func(r *kgo.Record) error {
			if r.Topic == a.in {
				cust, ok := fieldAfter(r.Value, `"customer_id":"`, `"`)
				if !ok {
					return fmt.Errorf("no customer_id in %s", r.Value)
				}
				s.Produce(ctx, &kgo.Record{Topic: rep, Key: cust, Value: r.Value}, errs.promise)
				return nil
			}
			total, ok := fieldAfter(r.Value, `"total":`, ",}")
			f, err := strconv.ParseFloat(string(total), 64)
			if !ok || err != nil {
				return fmt.Errorf("no total in %s", r.Value)
			}
			g := state[string(r.Key)]
			if g == nil {
				g = &agg{}
				state[string(r.Key)] = g
			}
			g.count++
			g.sum += f
			dirty[string(r.Key)] = g
			s.Produce(ctx, &kgo.Record{Topic: a.out, Key: r.Key, Value: appendAggValue(nil, string(r.Key), g.count, g.sum)}, errs.promise)
			return nil
		},
		before: func() {
			for k, g := range dirty {
				s.Produce(ctx, &kgo.Record{Topic: changelog, Key: []byte(k), Value: appendAggValue(nil, k, g.count, g.sum)}, errs.promise)
			}
			clear(dirty)
		},
		ended: func(committed bool) error {
			if !committed {
				return fmt.Errorf("transaction aborted: the in-memory counts cannot be rolled back")
			}
			return nil
		},
	})
}
