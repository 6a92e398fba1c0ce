package topology

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

func TestOversized(t *testing.T) {
	small := processors.Output{Topic: "out", Key: []byte("k"), Value: []byte(`{"a":1}`)}
	big := processors.Output{Topic: "big", Key: []byte("k"), Value: bytes.Repeat([]byte("x"), 2000)}
	for _, tc := range []struct {
		name  string
		outs  []processors.Output
		limit int
		want  string // "" for no error, else the topic named
	}{
		{"all fit", []processors.Output{small, small}, 1024, ""},
		{"one too large", []processors.Output{small, big}, 1024, "big"},
		{"headers count", []processors.Output{{Topic: "h", Value: bytes.Repeat([]byte("x"), 800),
			Headers: []kgo.RecordHeader{{Key: "h", Value: bytes.Repeat([]byte("y"), 200)}}}}, 1024, "h"},
		{"no limit", []processors.Output{big}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := oversized(tc.outs, tc.limit)
			var d *diag.Error
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("oversized = %v, want nil", err)
			case tc.want != "" && (!errors.As(err, &d) || d.Code != diag.RecordTooLarge || !strings.Contains(d.Message, "output to "+tc.want+" ")):
				t.Fatalf("oversized = %v, want VX5006 naming %s", err, tc.want)
			}
		})
	}
}

func TestShortMessage(t *testing.T) {
	if got := shortMessage("short"); got != "short" {
		t.Errorf("shortMessage(short) = %q", got)
	}
	long := strings.Repeat("9", 600_000)
	if got := shortMessage(long); len(got) > maxMessageChars+40 || !strings.HasSuffix(got, "(599488 more bytes)") {
		t.Errorf("shortMessage of 600,000 bytes = %d bytes ending %q", len(got), got[len(got)-30:])
	}
	// Never cuts inside a UTF-8 sequence.
	multi := strings.Repeat("é", 400) // 800 bytes
	if got := shortMessage(multi); !strings.HasPrefix(got, strings.Repeat("é", 256)+"…") {
		t.Errorf("shortMessage cut a rune: %q", got[:20])
	}
}

func TestFitDLQ(t *testing.T) {
	ours := []kgo.RecordHeader{{Key: HeaderErrorCode, Value: []byte("VX5006")}, {Key: HeaderRule, Value: []byte("r")}}
	orig := []kgo.RecordHeader{{Key: "trace", Value: bytes.Repeat([]byte("t"), 300)}}
	value := bytes.Repeat([]byte("v"), 5000)
	key := []byte("order-1")
	for _, tc := range []struct {
		name       string
		key, value []byte
		orig       []kgo.RecordHeader
		limit      int
		keepOrig   bool
		keyLen     int
		truncated  bool
	}{
		{"fits as it is", key, value[:100], orig, 2000, true, len(key), false},
		{"value cut to a prefix", key, value, orig, 2000, true, len(key), true},
		{"original headers dropped", key, value, orig, 400, false, len(key), true},
		{"key cut too", bytes.Repeat([]byte("k"), 3000), value, orig, 400, false, -1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, v, hs := fitDLQ(tc.key, tc.value, tc.orig, ours, tc.limit)
			if n := RecordSize(k, v, hs); n > tc.limit {
				t.Fatalf("DLQ record is %d bytes, over %d", n, tc.limit)
			}
			var hasOrig, hasNote bool
			for _, h := range hs {
				hasOrig = hasOrig || h.Key == "trace"
				hasNote = hasNote || h.Key == HeaderDLQTruncated
			}
			for _, h := range ours {
				if !containsHeader(hs, h.Key) {
					t.Errorf("header %s lost", h.Key)
				}
			}
			if hasOrig != tc.keepOrig || hasNote != tc.truncated {
				t.Errorf("original headers kept %v (want %v), truncation noted %v (want %v)", hasOrig, tc.keepOrig, hasNote, tc.truncated)
			}
			if !bytes.HasPrefix(tc.value, v) || (tc.keyLen >= 0 && len(k) != tc.keyLen) || !bytes.HasPrefix(tc.key, k) {
				t.Errorf("key %d bytes, value %d bytes: not prefixes of the original, or the key was cut", len(k), len(v))
			}
			if tc.truncated && len(v) == len(tc.value) && len(k) == len(tc.key) && hasOrig {
				t.Errorf("nothing was cut")
			}
		})
	}
}

func containsHeader(hs []kgo.RecordHeader, key string) bool {
	for _, h := range hs {
		if h.Key == key {
			return true
		}
	}
	return false
}
