package logging_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/logging"
)

func TestNew(t *testing.T) {
	tests := []struct {
		format, level string
		wantErr       bool
		logged        []string // of debug, info, warn, error
	}{
		{"text", "info", false, []string{"info", "warn", "error"}},
		{"json", "info", false, []string{"info", "warn", "error"}},
		{"", "", false, []string{"info", "warn", "error"}},
		{"text", "debug", false, []string{"debug", "info", "warn", "error"}},
		{"json", "warn", false, []string{"warn", "error"}},
		{"text", "error", false, []string{"error"}},
		{"xml", "info", true, nil},
		{"text", "trace", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+tt.level, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := logging.New(&buf, config.Log{Format: tt.format, Level: tt.level})
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			l.Debug("m-debug", "topic", "t")
			l.Info("m-info", "topic", "t")
			l.Warn("m-warn", "topic", "t")
			l.Error("m-error", "topic", "t", "partition", int32(3), "offset", int64(7))
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != len(tt.logged) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tt.logged), buf.String())
			}
			for i, line := range lines {
				if !strings.Contains(line, "m-"+tt.logged[i]) {
					t.Errorf("line %d = %s, want m-%s", i, line, tt.logged[i])
				}
				if tt.format == "json" {
					var v map[string]any
					if err := json.Unmarshal([]byte(line), &v); err != nil {
						t.Errorf("line %q is not JSON: %v", line, err)
					}
					if v["msg"] != "m-"+tt.logged[i] || v["topic"] != "t" {
						t.Errorf("line %q: msg or topic missing", line)
					}
				}
			}
		})
	}
}

func TestKgo(t *testing.T) {
	var buf bytes.Buffer
	l, err := logging.New(&buf, config.Log{Format: "json", Level: "debug"})
	if err != nil {
		t.Fatal(err)
	}
	k := logging.Kgo(l, slog.LevelWarn)
	if k.Level() != kgo.LogLevelWarn {
		t.Errorf("Level = %v, want warn", k.Level())
	}
	k.Log(kgo.LogLevelInfo, "chatter", "broker", 1)
	k.Log(kgo.LogLevelWarn, "retrying", "broker", 1, "err", "refused")
	k.Log(kgo.LogLevelError, "failed", "broker", 1)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2 (warn and error):\n%s", len(lines), buf.String())
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &v); err != nil {
		t.Fatal(err)
	}
	if v["msg"] != "retrying" || v["level"] != "WARN" || v["component"] != "kafka" || v["err"] != "refused" {
		t.Errorf("line = %v", v)
	}
}
