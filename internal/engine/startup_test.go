package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/config"
	"github.com/veltrix/veltrix/internal/engine"
	"github.com/veltrix/veltrix/internal/logging"
	"github.com/veltrix/veltrix/internal/testlog"
)

// closedAddr returns an address on 127.0.0.1 where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// With nothing listening, Run retries (logging each attempt with its error
// and the next delay) until kafka.startup_timeout, then returns
// ErrClusterUnreachable, not a configuration error.
func TestStartupUnreachableTimesOut(t *testing.T) {
	cfg, topo := loadTopology(t, closedAddr(t), "exactly_once", `rules:
  - name: r
    from: in
    steps:
      - to: out
`)
	cfg.Kafka.StartupTimeout = 1500 * time.Millisecond
	var logs testlog.Buffer
	eng := engine.New(cfg, topo, engine.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	begin := time.Now()
	err := eng.Run(ctx)
	took := time.Since(begin)
	if !errors.Is(err, engine.ErrClusterUnreachable) {
		t.Fatalf("Run = %v, want ErrClusterUnreachable", err)
	}
	if errors.Is(err, engine.ErrClusterCheck) {
		t.Errorf("Run = %v: an unreachable cluster is not a failed cluster check", err)
	}
	if took < cfg.Kafka.StartupTimeout || took > cfg.Kafka.StartupTimeout+15*time.Second {
		t.Errorf("Run returned after %v, want about kafka.startup_timeout (%v)", took, cfg.Kafka.StartupTimeout)
	}
	if n := strings.Count(logs.String(), "cluster not reachable"); n < 2 {
		t.Errorf("%d retry lines logged, want at least 2:\n%s", n, logs.String())
	}
	if !strings.Contains(err.Error(), "VX4005") {
		t.Errorf("Run = %v, want the VX4005 problem in the error", err)
	}
	if !strings.Contains(logs.String(), "retry_in=") || !strings.Contains(logs.String(), "err=") {
		t.Errorf("retry lines lack the error or the next delay:\n%s", logs.String())
	}
}

// A cancelled context ends the retries at once, with a clean stop.
func TestStartupRetryStopsOnCancel(t *testing.T) {
	cfg, topo := loadTopology(t, closedAddr(t), "exactly_once", `rules:
  - name: r
    from: in
    steps:
      - to: out
`)
	cfg.Kafka.StartupTimeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	begin := time.Now()
	err := engine.New(cfg, topo).Run(ctx)
	if err != nil {
		t.Errorf("Run after cancel during startup = %v, want nil", err)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("Run returned %v after cancel", took)
	}
}

// A missing input topic on a reachable cluster stays a configuration error
// (ErrClusterCheck), reported at once without waiting out the timeout.
func TestStartupMissingTopicIsNotRetried(t *testing.T) {
	brokers := newCluster(t)
	cfg, topo := loadTopology(t, brokers, "exactly_once", `rules:
  - name: r
    from: no-such-topic
    steps:
      - to: out
`)
	cfg.Kafka.StartupTimeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := engine.New(cfg, topo).Run(ctx)
	if !errors.Is(err, engine.ErrClusterCheck) || errors.Is(err, engine.ErrClusterUnreachable) {
		t.Fatalf("Run = %v, want ErrClusterCheck only", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Run waited for the deadline")
	}
}

// A record that stops the instance (on_error: fail) is logged with its
// rule, code, topic, partition and offset as fields; in JSON each line is a
// valid object.
func TestFailedRecordLogNamesTopicPartitionOffset(t *testing.T) {
	addr := newCluster(t, "orders")
	produce(t, addr, []*kgo.Record{{Topic: "orders", Key: []byte("x"), Value: []byte("not json")}})
	cfg, topo := loadTopology(t, addr, "exactly_once", `rules:
  - name: strict
    from: orders
    on_error: fail
    steps:
      - to: orders.out
`)
	var logs testlog.Buffer
	log, err := logging.New(&logs, config.Log{Format: config.LogJSON, Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := engine.New(cfg, topo, engine.WithLogger(log)).Run(ctx); err == nil {
		t.Fatal("Run = nil, want the record's failure")
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("log line is not JSON (%v): %s", err, line)
			continue
		}
		if v["level"] != "ERROR" || v["rule"] != "strict" {
			continue
		}
		found = true
		if v["topic"] != "orders" || v["partition"] == nil || v["offset"] == nil || v["code"] != "VX5001" {
			t.Errorf("failed-record line lacks topic, partition, offset or code: %s", line)
		}
	}
	if !found {
		t.Errorf("no error line for the failed record:\n%s", logs.String())
	}
}

// A record that fails under on_error: skip (or dlq) is logged with its rule,
// code, topic, partition and offset.
func TestSkippedRecordLogNamesTopicPartitionOffset(t *testing.T) {
	addr := newCluster(t, "orders")
	produce(t, addr, []*kgo.Record{
		{Topic: "orders", Key: []byte("x"), Value: []byte("not json")},
		{Topic: "orders", Key: []byte("y"), Value: []byte(`{"ok":true}`)},
	})
	cfg, topo := loadTopology(t, addr, "exactly_once", `rules:
  - name: lenient
    from: orders
    on_error: skip
    steps:
      - to: orders.out
`)
	var logs testlog.Buffer
	log, err := logging.New(&logs, config.Log{Format: config.LogJSON, Level: "info"})
	if err != nil {
		t.Fatal(err)
	}
	r := start(engine.New(cfg, topo, engine.WithLogger(log)))
	defer func() {
		if err := r.stop(); err != nil {
			t.Error(err)
		}
	}()
	readCommitted(t, r, addr, 1, time.Minute, "orders.out")
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("log line is not JSON (%v): %s", err, line)
			}
			if v["rule"] == "lenient" && v["code"] == "VX5001" {
				_, isPart := v["partition"].(float64)
				if v["topic"] != "orders" || !isPart || v["offset"] != float64(0) {
					t.Errorf("per-record error line lacks topic, partition or offset: %s", line)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no per-record error line:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
