package processors

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/pkg/expr"
)

var aggregateFields = []Field{
	{Name: "store", Type: StoreType, Required: true, Doc: "the store holding one result per group (and window); `${params.x}` is substituted"},
	{Name: "key", Type: KeyExpr, Doc: "the group key (a string, or a number formatted as text); default: the event's key"},
	{Name: "count", Type: FieldType{Kind: KindEnum, Values: []string{"true"}, Label: "bool"}, Hint: "the result always has count; write count: true or leave it out", Doc: "count events (the result always has `count`; `count: true` only says so)"},
	{Name: "sum", Type: NumberExpr, Doc: "a number to add up"},
	{Name: "min", Type: NumberExpr, Doc: "a number whose smallest value is kept"},
	{Name: "max", Type: NumberExpr, Doc: "a number whose largest value is kept"},
	{Name: "avg", Type: NumberExpr, Doc: "a number to average"},
	{Name: "latest", Type: AnyExpr, Doc: "any value; the one of the last event processed is kept"},
	{Name: "window", Type: CustomType("mapping"), Doc: "`{tumbling: 1h}`, `{hopping: {size: 1h, advance: 15m}}` or `{session: {gap: 30m}}`, with an optional `grace` (default 0); none: one result per group for ever"},
	{Name: "emit", Type: EnumOf("on_update", "on_close"), Doc: "`on_update` (default): the event continues as the updated result; `on_close` (windows only): the event stops here and each window's final result is emitted once, when it closes"},
	{Name: "time", Type: TimeExpr, Doc: "the event time: a timestamp, an RFC 3339 string or epoch milliseconds; default: the record timestamp"},
	repartitionField,
}

func aggregateSpec() *Spec {
	return &Spec{
		Kind:    "aggregate",
		Summary: "Count, sum, min, max, average or keep the latest per key, optionally per time window.",
		Doc: "The step groups events by `key` and keeps, per group (and per window), a result in its store: " +
			"a JSON object with `key`, `count`, one field per function asked (`sum`, `min`, `max`, `avg`, " +
			"`latest`) and, for windowed aggregates, `window_start` and `window_end` (RFC 3339). The query " +
			"API returns it under the group key (windowed: `<key>@<window start>`).\n\n" +
			"With `emit: on_update` the event continues as the updated result, keyed by the group key, " +
			"so a following `to` writes it. With `emit: on_close` the event stops here (the rule counts it " +
			"as `filtered`) and the final result of each window goes through the steps after the aggregate " +
			"when the task's stream time passes the window's end plus `grace`; the window is then deleted " +
			"from the store (with on_update too).\n\n" +
			"Windows: `tumbling` windows are aligned on the epoch and do not overlap: an event exactly at a " +
			"window's end belongs to the next one. `hopping` windows of `size` start every `advance` (an " +
			"event belongs to size/advance windows, at most 100). `session` windows grow while events come " +
			"less than `gap` apart and merge when an event bridges two; a session closes `gap` after its " +
			"last event (its `window_end`). Times are in milliseconds.\n\n" +
			"Stream time is the largest event time seen (per task); an event for windows that all closed " +
			"already (stream time at or past their end + grace) is late: VX5005, handled by `on_error` " +
			"(a DLQ keeps it). Events are grouped within a task (an input partition): when `key` is not " +
			"what the input is partitioned by, the topology adds a repartition by `key` before the step " +
			"(see \"Keys and repartitioning\"), so that each group's events all reach one task.",
		Fields: aggregateFields,
		Key:    "`key` (default: the record key): the group; one result per group (and window) in the store, emitted keyed by the group key",
		Example: "- aggregate:\n" +
			"    store: revenue-hourly\n" +
			"    key: event.customer_id\n" +
			"    sum: event.total\n" +
			"    avg: event.total\n" +
			"    window: {tumbling: 1h, grace: 5m}\n" +
			"    emit: on_close\n" +
			"    time: event.created_at",
		Build: buildAggregate,
	}
}

type windowKind int

const (
	noWindow windowKind = iota
	tumbling
	hopping
	session
)

// windowSpec is a parsed window (all in ms).
type windowSpec struct {
	kind          windowKind
	size, advance int64 // tumbling: size = advance; session: size = gap
	grace         int64
}

func (w windowSpec) String() string {
	g := ""
	if w.grace > 0 {
		g = ", grace " + time.Duration(w.grace*1e6).String()
	}
	d := func(ms int64) string { return time.Duration(ms * 1e6).String() }
	switch w.kind {
	case tumbling:
		return "tumbling " + d(w.size) + g
	case hopping:
		return "hopping " + d(w.size) + " every " + d(w.advance) + g
	case session:
		return "session gap " + d(w.size) + g
	}
	return ""
}

type aggregateStep struct {
	store   string
	key     *expr.Program // nil: the event key
	sum     *expr.Program
	min     *expr.Program
	max     *expr.Program
	avg     *expr.Program
	latest  *expr.Program
	window  windowSpec
	onClose bool
	clock   clock
	repart  bool // repartition unless the input is partitioned by key
}

// GroupKey implements Grouper.
func (s *aggregateStep) GroupKey() (*expr.Program, bool) { return s.key, s.repart }

// KeyEffect implements KeyEffecter: the result replaces the event, keyed by
// the group key.
func (s *aggregateStep) KeyEffect() KeyEffect {
	return KeyEffect{Rekeys: s.key != nil, Key: s.key, Replaces: true}
}

func buildAggregate(b Builder, n *yaml.Node, path string) Step {
	v, ok := DecodeFields(b, n, path, "aggregate", aggregateFields)
	if !v.keysOK {
		return nil
	}
	s := &aggregateStep{
		store:   v.String("store", ""),
		key:     v.Expr("key"),
		sum:     v.Expr("sum"),
		min:     v.Expr("min"),
		max:     v.Expr("max"),
		avg:     v.Expr("avg"),
		latest:  v.Expr("latest"),
		onClose: v.String("emit", "on_update") == "on_close",
		repart:  v.Bool("repartition", true),
	}
	s.clock.time = v.Expr("time")
	if w := v.Node("window"); w != nil {
		var good bool
		s.window, good = parseWindow(b, w, path+".window")
		ok = ok && good
	}
	if s.onClose && !v.Has("window") {
		setHint(b.Errorf(v.Node("emit"), path+".emit", diag.InvalidStep, "emit: on_close needs a window: without one a result never closes"), "add a window, or use emit: on_update")
		ok = false
	}
	if !ok {
		return nil
	}
	return s
}

// windowFields are the keys of an aggregate's window.
var windowFields = []Field{{Name: "tumbling", Type: DurationType}, {Name: "hopping", Type: MappingType},
	{Name: "session", Type: MappingType}, {Name: "grace", Type: DurationOrZero}}

var hoppingFields = []Field{{Name: "size", Type: DurationType, Required: true}, {Name: "advance", Type: DurationType, Required: true}}

var sessionFields = []Field{{Name: "gap", Type: DurationType, Required: true}}

func parseWindow(b Builder, n *yaml.Node, path string) (windowSpec, bool) {
	f, ok := DecodeFields(b, n, path, "aggregate", windowFields)
	if !f.keysOK {
		return windowSpec{}, false
	}
	var w windowSpec
	kinds := 0
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	if f.Has("tumbling") {
		kinds++
		d := ms(f.Duration("tumbling", 0))
		w = windowSpec{kind: tumbling, size: d, advance: d}
	}
	// hopping and session are MappingType fields: one that is not a
	// mapping was reported by DecodeFields.
	if h := f.Node("hopping"); h != nil {
		kinds++
		if h.Kind != yaml.MappingNode {
			return w, false
		}
		hf, good := DecodeFields(b, h, path+".hopping", "aggregate", hoppingFields)
		if good {
			size, adv := hf.Duration("size", 0), hf.Duration("advance", 0)
			switch {
			case adv > size:
				b.Errorf(hf.Node("advance"), path+".hopping.advance", diag.InvalidStep, "advance %s is larger than size %s: events between windows would be lost", adv, size)
				good = false
			case size/adv > 100:
				b.Errorf(hf.Node("advance"), path+".hopping.advance", diag.InvalidStep, "size/advance is %d: an event would update more than 100 windows", size/adv)
				good = false
			}
			w = windowSpec{kind: hopping, size: ms(size), advance: ms(adv)}
		}
		ok = ok && good
	}
	if sn := f.Node("session"); sn != nil {
		kinds++
		if sn.Kind != yaml.MappingNode {
			return w, false
		}
		sf, good := DecodeFields(b, sn, path+".session", "aggregate", sessionFields)
		if good {
			w = windowSpec{kind: session, size: ms(sf.Duration("gap", 0))}
		}
		ok = ok && good
	}
	if kinds != 1 {
		setHint(b.Errorf(n, path, diag.InvalidStep, "a window has exactly one of tumbling, hopping and session, found %d", kinds),
			"e.g. window: {tumbling: 1h, grace: 5m}")
		return w, false
	}
	w.grace = ms(f.Duration("grace", 0))
	return w, ok
}

// aggState is the stored result of one group (and window): the JSON object
// the step emits and the query API returns (aggJSON has its fields). It
// holds no pointer into itself, so that the result an event reads, updates
// and writes back can live on the stack.
type aggState struct {
	Key         string
	Count       int64
	Latest      json.RawMessage
	WindowStart string
	WindowEnd   string

	// nums are the sum, min, max and avg (indexed by numSum...); has has
	// bit 1<<k set for each one the result holds.
	nums [4]float64
	has  uint8

	start, end int64 // window bounds in ms, from WindowStart/WindowEnd
	// enc is the encoding put stored (appendResult's, which is also the
	// output value), nil if none.
	enc []byte
}

// The numbers of a result, as indexes of aggState.nums, in the order of
// aggNumNames.
const (
	numSum = iota
	numMin
	numMax
	numAvg
)

// aggNumNames are the JSON names of the numbers.
var aggNumNames = [4]string{"sum", "min", "max", "avg"}

// num returns the k-th number and whether the result has it.
func (a *aggState) num(k int) (float64, bool) { return a.nums[k], a.has&(1<<k) != 0 }

// setNum sets the k-th number.
func (a *aggState) setNum(k int, v float64) { a.nums[k], a.has = v, a.has|1<<k }

// aggJSON is a result as encoding/json writes and reads it: what the
// hand-written codecs (aggcodec.go) fall back to.
type aggJSON struct {
	Key         string          `json:"key"`
	Count       int64           `json:"count"`
	Sum         *float64        `json:"sum,omitempty"`
	Min         *float64        `json:"min,omitempty"`
	Max         *float64        `json:"max,omitempty"`
	Avg         *float64        `json:"avg,omitempty"`
	Latest      json.RawMessage `json:"latest,omitempty"`
	WindowStart string          `json:"window_start,omitempty"`
	WindowEnd   string          `json:"window_end,omitempty"`
}

// json returns a as encoding/json writes it.
func (a *aggState) json() *aggJSON {
	j := &aggJSON{Key: a.Key, Count: a.Count, Latest: a.Latest, WindowStart: a.WindowStart, WindowEnd: a.WindowEnd}
	for k, p := range [4]**float64{&j.Sum, &j.Min, &j.Max, &j.Avg} {
		if v, ok := a.num(k); ok {
			*p = &v
		}
	}
	return j
}

// state returns the result j holds (without its window bounds in ms).
func (j *aggJSON) state() aggState {
	a := aggState{Key: j.Key, Count: j.Count, Latest: j.Latest, WindowStart: j.WindowStart, WindowEnd: j.WindowEnd}
	for k, p := range [4]*float64{j.Sum, j.Min, j.Max, j.Avg} {
		if p != nil {
			a.setNum(k, *p)
		}
	}
	return a
}

// window is one window an event falls in: [start, end).
type window struct{ start, end int64 }

// Index kinds of aggregate stores.
const idxWindowClose = 'w'

// windowKeyLayout is the fixed-width time in windowed store keys
// (<group key>@<window start>), so that keys sort by time within a group.
const windowKeyLayout = "2006-01-02T15:04:05.000Z"

func windowKey(group string, start int64) []byte {
	return []byte(group + "@" + time.UnixMilli(start).UTC().Format(windowKeyLayout))
}

// values are the inputs of one event.
type aggInput struct {
	sum, min, max, avg float64
	latest             []byte
}

// LazyValue implements Lazy: the step reads the event through expressions
// only, and replaces its value as a whole with the result.
func (*aggregateStep) LazyValue() {}

func (s *aggregateStep) Process(t ProcessorContext, ev *Event) (bool, error) {
	st, err := storeOf(t, s.store)
	if err != nil {
		return false, err
	}
	group, err := keyOf(s.key, ev, "the group key")
	if err != nil {
		return false, err
	}
	in, err := s.inputs(ev)
	if err != nil {
		return false, err
	}
	if s.window.kind == noWindow {
		// The store key is the group's: the event's own key when that is
		// the group already (as after a repartition by it).
		key := ev.Key
		if s.key != nil && string(key) != group {
			key = []byte(group)
		}
		var res aggState
		if err := s.update(st, key, group, window{}, in, &res); err != nil {
			return false, err
		}
		return s.result(ev, &res)
	}
	ts, now, err := s.clock.observe(t, st, s.store, ev)
	if err != nil {
		return false, err
	}
	var res *aggState
	if s.window.kind == session {
		res, err = s.session(st, group, ts, now, in)
	} else {
		res, err = s.windows(st, group, ts, now, in)
	}
	if err != nil || s.onClose {
		return false, err
	}
	return s.result(ev, res)
}

// late is the VX5005 error of an event whose windows have all closed.
func (s *aggregateStep) late(ts, closedAt, now int64) error {
	return &diag.Error{Code: diag.LateEvent,
		Message: fmt.Sprintf("aggregate %s: event time %s is late: its window closed at %s (window end + grace) and stream time is %s", s.store, rfc3339(ts), rfc3339(closedAt), rfc3339(now)),
		Hint:    "raise the window's grace to accept later events"}
}

// windows updates the tumbling or hopping windows of an event at ts and
// returns the result of the latest one.
func (s *aggregateStep) windows(st Store, group string, ts, now int64, in aggInput) (*aggState, error) {
	size, adv := s.window.size, s.window.advance
	last := floorDiv(ts, adv) * adv
	var res *aggState
	closed := int64(0)
	for start := last - ((size-1)/adv)*adv; start <= last; start += adv {
		if start+size <= ts {
			continue // the event is past this window
		}
		end := start + size
		if end+s.window.grace <= now {
			closed = end + s.window.grace
			continue
		}
		r := new(aggState)
		if err := s.update(st, windowKey(group, start), group, window{start, end}, in, r); err != nil {
			return nil, err
		}
		res = r
	}
	if res == nil {
		return nil, s.late(ts, closed, now)
	}
	return res, nil
}

// session adds an event at ts to its group's session, merging the sessions
// it bridges, and returns the session's result.
func (s *aggregateStep) session(st Store, group string, ts, now int64, in aggInput) (*aggState, error) {
	gap := s.window.size
	if ts+gap+s.window.grace <= now {
		return nil, s.late(ts, ts+gap+s.window.grace, now)
	}
	prefix := []byte(group + "@")
	var merge []*aggState
	var scanErr error
	err := st.Scan(prefix, func(k, v []byte) bool {
		if len(k) != len(prefix)+len(windowKeyLayout) {
			return true // another group whose key starts with this one and "@"
		}
		var a aggState
		if scanErr = decodeAgg(v, &a); scanErr != nil {
			return false
		}
		if ts >= a.start-gap && ts <= a.end+gap {
			merge = append(merge, &a)
		}
		return true
	})
	if err == nil {
		err = scanErr
	}
	if err != nil {
		return nil, stateError(s.store, err)
	}
	w := window{ts, ts}
	var acc *aggState
	for _, a := range merge {
		w.start, w.end = min(w.start, a.start), max(w.end, a.end)
		if err := s.drop(st, windowKey(group, a.start), a.end+gap+s.window.grace); err != nil {
			return nil, err
		}
		acc = mergeAgg(acc, a)
	}
	if acc == nil {
		acc = &aggState{Key: group}
	}
	s.apply(acc, in)
	return acc, s.put(st, windowKey(group, w.start), acc, w, w.end+gap+s.window.grace)
}

// drop deletes a window and its close index entry.
func (s *aggregateStep) drop(st Store, key []byte, closeAt int64) error {
	if err := st.Delete(key); err != nil {
		return stateError(s.store, err)
	}
	if err := st.Delete(indexKey(closeAt, idxWindowClose, key)); err != nil {
		return stateError(s.store, err)
	}
	return nil
}

// mergeAgg combines two session results (b into a; a may be nil). A
// number only one of them has is left as a has it.
func mergeAgg(a, b *aggState) *aggState {
	if a == nil {
		return b
	}
	if av, ok := a.num(numAvg); ok {
		if bv, ok := b.num(numAvg); ok && a.Count+b.Count > 0 {
			a.setNum(numAvg, (av*float64(a.Count)+bv*float64(b.Count))/float64(a.Count+b.Count))
		}
	}
	a.Count += b.Count
	if av, ok := a.num(numSum); ok {
		if bv, ok := b.num(numSum); ok {
			a.setNum(numSum, av+bv)
		}
	}
	if av, ok := a.num(numMin); ok {
		if bv, ok := b.num(numMin); ok && bv < av {
			a.setNum(numMin, bv)
		}
	}
	if av, ok := a.num(numMax); ok {
		if bv, ok := b.num(numMax); ok && bv > av {
			a.setNum(numMax, bv)
		}
	}
	return a
}

// update reads the result under key into a (zero), applies the event and
// writes it back. For a window (w.end > 0) a new result also gets its close
// index entry.
func (s *aggregateStep) update(st Store, key []byte, group string, w window, in aggInput, a *aggState) error {
	v, found, err := st.Get(key)
	if err != nil {
		return stateError(s.store, err)
	}
	a.Key = group
	if found {
		if err := decodeAgg(v, a); err != nil {
			return stateError(s.store, err)
		}
	}
	s.apply(a, in)
	closeAt := int64(-1)
	if s.window.kind != noWindow && !found {
		closeAt = w.end + s.window.grace
	}
	return s.put(st, key, a, w, closeAt)
}

// put writes a result (with its window bounds when w is set) and, when
// closeAt >= 0, its close index entry.
func (s *aggregateStep) put(st Store, key []byte, a *aggState, w window, closeAt int64) error {
	if s.window.kind != noWindow {
		a.start, a.end = w.start, w.end
		a.WindowStart, a.WindowEnd = rfc3339(w.start), rfc3339(w.end)
		if s.window.kind == session {
			a.WindowEnd = rfc3339(w.end) // the last event's time
		}
	}
	b, ok := encodeResult(a)
	a.enc = nil
	if ok {
		a.enc = b
	} else {
		var err error
		if b, err = json.Marshal(a.json()); err != nil {
			return stateError(s.store, err)
		}
	}
	// b is the output value too: neither the store nor the output changes
	// it, so both share it.
	if err := PutOwned(st, key, b); err != nil {
		return stateError(s.store, err)
	}
	if closeAt >= 0 {
		if err := st.Put(indexKey(closeAt, idxWindowClose, key), nil); err != nil {
			return stateError(s.store, err)
		}
	}
	return nil
}

func decodeAgg(v []byte, a *aggState) error {
	if !decodeAggFast(v, a) {
		j := aggJSON{Key: a.Key}
		if err := json.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("decode result: %w", err)
		}
		*a = j.state()
	}
	if !a.windowBounds() {
		return fmt.Errorf("decode result: bad window bounds %q, %q", a.WindowStart, a.WindowEnd)
	}
	return nil
}

// inputs evaluates the step's expressions on the event.
func (s *aggregateStep) inputs(ev *Event) (aggInput, error) {
	var in aggInput
	for _, p := range []struct {
		prg *expr.Program
		dst *float64
	}{{s.sum, &in.sum}, {s.min, &in.min}, {s.max, &in.max}, {s.avg, &in.avg}} {
		if p.prg == nil {
			continue
		}
		v, err := p.prg.Float(ev)
		if err != nil {
			return in, err
		}
		*p.dst = v
	}
	if s.latest != nil {
		v, err := s.latest.Value(ev)
		if err != nil {
			return in, err
		}
		if in.latest, err = json.Marshal(v); err != nil {
			return in, s.latest.Pos().At(diag.ResultType, "%s: %v", s.latest.Source(), err)
		}
	}
	return in, nil
}

// apply adds one event's inputs to a result.
func (s *aggregateStep) apply(a *aggState, in aggInput) {
	a.Count++
	if s.sum != nil {
		v, _ := a.num(numSum) // 0 when unset
		a.setNum(numSum, v+in.sum)
	}
	if v, ok := a.num(numMin); s.min != nil && (!ok || in.min < v) {
		a.setNum(numMin, in.min)
	}
	if v, ok := a.num(numMax); s.max != nil && (!ok || in.max > v) {
		a.setNum(numMax, in.max)
	}
	if s.avg != nil {
		v := in.avg
		if old, ok := a.num(numAvg); ok {
			v = old + (in.avg-old)/float64(a.Count)
		}
		a.setNum(numAvg, v)
	}
	if s.latest != nil {
		a.Latest = in.latest
	}
}

// encodeResult returns appendResult's encoding of a in a slice of its own
// length (ok false: a needs encoding/json). It is encoded on the stack and
// copied once: a store keeps the slice, and its cache counts it by its
// capacity.
func encodeResult(a *aggState) (_ []byte, ok bool) {
	var scratch [256]byte
	enc, ok := appendResult(scratch[:0], a)
	if !ok {
		return nil, false
	}
	return append(make([]byte, 0, len(enc)), enc...), true
}

// result replaces the event with a result, keyed by the group key.
func (s *aggregateStep) result(ev *Event, a *aggState) (bool, error) {
	if string(ev.Key) != a.Key {
		ev.Key = []byte(a.Key)
	}
	enc, ok := a.enc, a.enc != nil
	if !ok {
		enc, ok = encodeResult(a)
	}
	if ok {
		ev.SetJSON(enc)
		return true, nil
	}
	m, err := a.value()
	if err != nil {
		return false, stateError(s.store, err)
	}
	ev.SetValue(m, nil) // Encode marshals m
	return true, nil
}

// value is the result as a JSON object.
func (a *aggState) value() (map[string]any, error) {
	m := map[string]any{"key": a.Key, "count": a.Count}
	for k, name := range aggNumNames {
		if v, ok := a.num(k); ok {
			m[name] = v
		}
	}
	if a.Latest != nil {
		var v any
		if err := json.Unmarshal(a.Latest, &v); err != nil {
			return nil, fmt.Errorf("decode latest: %w", err)
		}
		m["latest"] = v
	}
	if a.WindowStart != "" {
		m["window_start"], m["window_end"] = a.WindowStart, a.WindowEnd
	}
	return m, nil
}

// Punctuate implements Punctuator: windows whose end + grace the stream
// time reached are emitted (on_close) and deleted.
func (s *aggregateStep) Punctuate(t ProcessorContext, emit func(*Event) error) error {
	if s.window.kind == noWindow {
		return nil
	}
	st, err := storeOf(t, s.store)
	if err != nil {
		return err
	}
	due, err := s.clock.due(t, st, s.store)
	if err != nil {
		return err
	}
	for _, e := range due {
		if e.kind != idxWindowClose {
			continue
		}
		v, found, err := st.Get(e.key)
		if err != nil {
			return stateError(s.store, err)
		}
		if err := st.Delete(e.raw); err != nil {
			return stateError(s.store, err)
		}
		if !found {
			continue
		}
		if err := st.Delete(e.key); err != nil {
			return stateError(s.store, err)
		}
		if !s.onClose {
			continue
		}
		var a aggState
		if err := decodeAgg(v, &a); err != nil {
			return stateError(s.store, err)
		}
		ev := &Event{Key: []byte(a.Key), Timestamp: time.UnixMilli(a.end), Clock: t}
		if _, err := s.result(ev, &a); err != nil {
			return err
		}
		if err := emit(ev); err != nil {
			return err
		}
	}
	return nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (s *aggregateStep) Describe() Info {
	parts := []string{"store " + s.store}
	if s.key != nil {
		parts = append(parts, "key = "+s.key.Source())
	}
	parts = append(parts, "count")
	for _, p := range []struct {
		name string
		prg  *expr.Program
	}{{"sum", s.sum}, {"min", s.min}, {"max", s.max}, {"avg", s.avg}, {"latest", s.latest}} {
		if p.prg != nil {
			parts = append(parts, p.name+" = "+p.prg.Source())
		}
	}
	if s.window.kind != noWindow {
		parts = append(parts, "window "+s.window.String())
		if s.onClose {
			parts = append(parts, "emit on_close")
		}
	}
	if s.clock.time != nil {
		parts = append(parts, "time = "+s.clock.time.Source())
	}
	return Info{Kind: "aggregate", Arg: strings.Join(parts, ", ")}
}
