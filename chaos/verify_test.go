package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func in(part int32, off int64, key string, seq, v int64) inputRec {
	return inputRec{part: part, off: off, key: key, ts: seq, ev: event{Seq: seq, K: key, V: v}}
}

func sumOut(key string, count int, sum float64) outRec {
	b, _ := json.Marshal(map[string]any{"key": key, "count": count, "sum": sum})
	return outRec{value: b}
}

func echoOut(seq int64) outRec {
	b, _ := json.Marshal(event{Seq: seq})
	return outRec{value: b}
}

func TestCheckEchoAndSums(t *testing.T) {
	input := []inputRec{in(0, 0, "a", 1, 5), in(0, 1, "a", 2, 7), in(1, 0, "b", 3, 1)}
	cases := []struct {
		name                string
		echo, sums          []outRec
		dup, missing, wrong int
	}{
		{"exact", []outRec{echoOut(1), echoOut(2), echoOut(3)},
			[]outRec{sumOut("a", 1, 5), sumOut("a", 2, 12), sumOut("b", 1, 1)}, 0, 0, 0},
		{"duplicated", []outRec{echoOut(1), echoOut(2), echoOut(2), echoOut(3)},
			[]outRec{sumOut("a", 1, 5), sumOut("a", 2, 12), sumOut("a", 2, 12), sumOut("b", 1, 1)}, 2, 0, 0},
		{"missing", []outRec{echoOut(1), echoOut(3)},
			[]outRec{sumOut("a", 1, 5), sumOut("b", 1, 1)}, 0, 2, 0},
		{"lost update", []outRec{echoOut(1), echoOut(2), echoOut(3)},
			[]outRec{sumOut("a", 1, 5), sumOut("a", 2, 7), sumOut("b", 1, 1)}, 0, 0, 1},
		{"never input", []outRec{echoOut(1), echoOut(2), echoOut(3), echoOut(9)},
			[]outRec{sumOut("a", 1, 5), sumOut("a", 2, 12), sumOut("b", 1, 1), sumOut("b", 2, 2)}, 0, 0, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v verdict
			checkEcho(&v, input, c.echo)
			checkSums(&v, input, c.sums)
			if v.duplicated != c.dup || v.missing != c.missing || v.wrong != c.wrong {
				t.Errorf("duplicated %d missing %d wrong %d, want %d %d %d (%v)", v.duplicated, v.missing, v.wrong, c.dup, c.missing, c.wrong, v.problems)
			}
		})
	}
}

func TestCheckWindows(t *testing.T) {
	size := windowSize.Milliseconds()
	closeAt := 3*size + windowGrace.Milliseconds() + 1
	input := []inputRec{
		in(0, 0, "a", 10, 1), in(0, 1, "a", 20, 1), in(0, 2, "a", size+5, 1),
		in(0, 3, "close", closeAt, 1), // closes every window before it
		in(1, 0, "b", 30, 1),          // partition 1: stream time 30, its window stays open...
	}
	win := func(key string, start int64, count int) outRec {
		b, _ := json.Marshal(map[string]any{"key": key, "count": count,
			"window_start": time.UnixMilli(start).UTC().Format(time.RFC3339Nano)})
		return outRec{value: b}
	}
	cases := []struct {
		name                string
		repartition         map[int32]int64
		out                 []outRec
		dup, missing, wrong int
	}{
		{"exact", nil, []outRec{win("a", 0, 2), win("a", size, 1)}, 0, 0, 0},
		{"twice", nil, []outRec{win("a", 0, 2), win("a", 0, 2), win("a", size, 1)}, 1, 0, 0},
		{"partial count", nil, []outRec{win("a", 0, 1), win("a", size, 1)}, 0, 0, 1},
		{"not emitted", nil, []outRec{win("a", 0, 2)}, 0, 1, 0},
		{"open window emitted", nil, []outRec{win("a", 0, 2), win("a", size, 1), win("b", 0, 1)}, 0, 0, 1},
		// ...unless the repartition partition of its task ran ahead.
		{"closed by the task's repartition partition", map[int32]int64{1: closeAt},
			[]outRec{win("a", 0, 2), win("a", size, 1), win("b", 0, 1)}, 0, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v verdict
			checkWindows(&v, input, c.repartition, c.out)
			if v.duplicated != c.dup || v.missing != c.missing || v.wrong != c.wrong {
				t.Errorf("duplicated %d missing %d wrong %d, want %d %d %d (%v)", v.duplicated, v.missing, v.wrong, c.dup, c.missing, c.wrong, v.problems)
			}
		})
	}
}

func TestTableHasEveryResult(t *testing.T) {
	rs := []result{{id: "R1", broker: "dev", faults: "3 kill -9", v: verdict{records: 10}},
		{id: "R5", broker: "dev", skipped: "kafka only"}}
	got := table(rs)
	for _, want := range []string{"| R1 | dev | 3 kill -9 | 10 | 0 | 0 | 0 |", "| R5 | dev | skipped: kafka only |"} {
		if !contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
