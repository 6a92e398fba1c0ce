// Package logging builds the process's structured logger from the log
// settings (log.format, log.level) and adapts it for the Kafka client, so
// that franz-go's own messages come out in the same format and stream.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/config"
)

// New returns a logger writing to w in cfg.Format (text or json) at
// cfg.Level and above. An unknown format or level is an error (the config
// loader rejects them first).
func New(w io.Writer, cfg config.Log) (*slog.Logger, error) {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.Format {
	case config.LogText, "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case config.LogJSON:
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("logging: unknown log.format %q (want text or json)", cfg.Format)
	}
}

// ParseLevel parses debug, info, warn or error ("" is info).
func ParseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logging: unknown log.level %q (want debug, info, warn or error)", s)
}

// Kgo adapts l for kgo.WithLogger, passing on the client's messages at min
// and above (Veltrix uses warn: the client's info and debug messages are
// per-request chatter). Each line carries component=kafka.
func Kgo(l *slog.Logger, min slog.Level) kgo.Logger {
	return &kgoLogger{l: l.With("component", "kafka"), min: min}
}

type kgoLogger struct {
	l   *slog.Logger
	min slog.Level
}

func (k *kgoLogger) Level() kgo.LogLevel {
	switch {
	case k.min <= slog.LevelDebug:
		return kgo.LogLevelDebug
	case k.min <= slog.LevelInfo:
		return kgo.LogLevelInfo
	case k.min <= slog.LevelWarn:
		return kgo.LogLevelWarn
	default:
		return kgo.LogLevelError
	}
}

func (k *kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var l slog.Level
	switch level {
	case kgo.LogLevelError:
		l = slog.LevelError
	case kgo.LogLevelWarn:
		l = slog.LevelWarn
	case kgo.LogLevelInfo:
		l = slog.LevelInfo
	case kgo.LogLevelDebug:
		l = slog.LevelDebug
	default:
		return
	}
	if l < k.min {
		return
	}
	k.l.Log(context.Background(), l, msg, keyvals...)
}
