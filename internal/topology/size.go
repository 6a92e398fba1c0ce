package topology

import (
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// recordOverhead is what a record adds to its key, value and headers in a
// Kafka record batch at most (lengths, offsets and timestamps as varints,
// and the batch header when it is alone in a batch).
const recordOverhead = 128

// maxMessageChars bounds the error message in a DLQ record's
// veltrix.error.message header: a message that quotes the input (a huge
// number, a long string) must not make the DLQ record itself too large.
const maxMessageChars = 512

// RecordSize is the size a record takes in a batch at most: key, value,
// headers and the record's overhead.
func RecordSize(key, value []byte, headers []kgo.RecordHeader) int {
	n := len(key) + len(value) + recordOverhead
	for _, h := range headers {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

// oversized returns the first output larger than limit as a VX5006 error
// (nil when all fit, or when limit is 0).
func oversized(outs []processors.Output, limit int) error {
	if limit <= 0 {
		return nil
	}
	for _, o := range outs {
		if n := RecordSize(o.Key, o.Value, o.Headers); n > limit {
			return &diag.Error{Code: diag.RecordTooLarge,
				Message: fmt.Sprintf("output to %s is %d bytes, over kafka.max_record_bytes %d", o.Topic, n, limit),
				Hint:    "shorten what the rule writes (drop large fields), or raise kafka.max_record_bytes and the topic's max.message.bytes"}
		}
	}
	return nil
}

// shortMessage cuts a message to maxMessageChars (at a rune boundary),
// saying how much was cut.
func shortMessage(m string) string {
	if len(m) <= maxMessageChars {
		return m
	}
	cut := maxMessageChars
	for cut > 0 && !utf8.RuneStart(m[cut]) {
		cut--
	}
	return m[:cut] + "… (" + strconv.Itoa(len(m)-cut) + " more bytes)"
}

// fitDLQ shortens a DLQ record to limit: first the value (to a prefix), then
// the original headers (dropped), then the key (to a prefix); the veltrix.*
// headers always stay. It says what it cut in a veltrix.dlq.truncated
// header (the original value, header and key sizes).
func fitDLQ(key, value []byte, orig, ours []kgo.RecordHeader, limit int) ([]byte, []byte, []kgo.RecordHeader) {
	all := append(append(make([]kgo.RecordHeader, 0, len(orig)+len(ours)+1), orig...), ours...)
	if limit <= 0 || RecordSize(key, value, all) <= limit {
		return key, value, all
	}
	note := kgo.RecordHeader{Key: HeaderDLQTruncated,
		Value: fmt.Appendf(nil, "value=%d headers=%d key=%d", len(value), len(orig), len(key))}
	ours = append(ours, note)
	if room := limit - RecordSize(key, nil, append(append([]kgo.RecordHeader(nil), orig...), ours...)); room >= 0 {
		return key, value[:min(room, len(value))], append(orig, ours...)
	}
	if room := limit - RecordSize(key, nil, ours); room >= 0 {
		return key, value[:min(room, len(value))], ours
	}
	room := max(limit-RecordSize(nil, nil, ours), 0)
	return key[:min(room, len(key))], nil, ours
}
