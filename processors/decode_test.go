package processors_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/processors"
)

// A record value that downstream strict JSON readers would reject is
// malformed (VX5001) here, with a message that quotes little of it.
func TestDecodeRejectsWhatStrictReadersReject(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		want        string // in the message; "" for a valid value
	}{
		{"valid", `{"name":"Zoë","n":1}`, ""},
		{"invalid UTF-8 in a string", "{\"name\":\"Zo\xff\"}", "not valid UTF-8 at byte 11"},
		{"a lone continuation byte", "{\"name\":\"\x80\"}", "not valid UTF-8 at byte 9"},
		{"truncated UTF-8 at the end of a string", "{\"a\":\"\xc3\"}", "not valid UTF-8"},
		{"a 600,000-digit number", `{"n":1` + strings.Repeat("0", 600_000) + `}`, "(600001 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev processors.Event
			err := processors.DecodeInto(&ev, &kgo.Record{Topic: "in", Value: []byte(tc.value)})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("DecodeInto = %v, want nil", err)
				}
				return
			}
			var d *diag.Error
			if !errors.As(err, &d) || d.Code != diag.MalformedEvent || !strings.Contains(d.Message, tc.want) {
				t.Fatalf("DecodeInto = %v, want VX5001 with %q", err, tc.want)
			}
			if len(d.Message) > 300 {
				t.Errorf("message is %d bytes: it quotes too much of the input", len(d.Message))
			}
		})
	}
}
