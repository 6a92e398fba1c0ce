package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/veltrix/veltrix/broker"
)

// cluster is a broker the scenarios run against and may break.
type cluster interface {
	// Addr is the bootstrap address list (comma-separated).
	Addr() string
	// Kill ends broker node n (1-based) abruptly, as kill -9 does.
	Kill(ctx context.Context, node int) error
	// Restart starts node n again on its data.
	Restart(ctx context.Context, node int) error
	// Fake is the in-process kfake cluster for request faults, or nil.
	Fake() *kfake.Cluster
	// Close stops the whole cluster.
	Close()
	// Describe names the broker for reports ("dev", "dev (process)", "kafka x3").
	Describe() string
}

// inProcDev is the dev broker inside this process: request faults can be
// injected through kfake, but it cannot be killed (use procDev for that).
type inProcDev struct{ b *broker.Broker }

func startInProcDev(partitions int) (*inProcDev, error) {
	b, err := broker.Start(broker.WithListen("127.0.0.1:0"), broker.WithPartitions(partitions))
	if err != nil {
		return nil, err
	}
	return &inProcDev{b: b}, nil
}

func (d *inProcDev) Addr() string         { return d.b.Addr() }
func (d *inProcDev) Fake() *kfake.Cluster { return d.b.Cluster() }
func (d *inProcDev) Close()               { d.b.Close() }
func (d *inProcDev) Describe() string     { return "dev" }
func (d *inProcDev) Kill(context.Context, int) error {
	return fmt.Errorf("the in-process dev broker cannot be killed")
}
func (d *inProcDev) Restart(context.Context, int) error {
	return fmt.Errorf("the in-process dev broker cannot be restarted")
}

// procDev is `veltrix broker --data-dir` as a process on a fixed port: kill -9
// and a restart on the same data dir and port.
type procDev struct {
	bin, dir, addr string
	partitions     int
	cmd            *exec.Cmd
	done           chan struct{}
}

func startProcDev(ctx context.Context, bin, dir string, partitions int) (*procDev, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	d := &procDev{bin: bin, dir: dir, partitions: partitions, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	if err := d.Restart(ctx, 1); err != nil {
		return nil, err
	}
	return d, nil
}

var listeningRE = regexp.MustCompile(`listening on (\S+)`)

func (d *procDev) Addr() string         { return d.addr }
func (d *procDev) Fake() *kfake.Cluster { return nil }
func (d *procDev) Describe() string     { return "dev" }

func (d *procDev) Restart(ctx context.Context, _ int) error {
	if d.cmd != nil {
		return fmt.Errorf("dev broker: already running")
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(d.dir, "..", "broker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.Command(d.bin, "broker", "--listen", d.addr, "--data-dir", d.dir, "--partitions", strconv.Itoa(d.partitions))
		cmd.Stdout = logf
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd.Stderr = pw
		if err := cmd.Start(); err != nil {
			pw.Close()
			pr.Close()
			return fmt.Errorf("dev broker: %w", err)
		}
		pw.Close()
		ok := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(pr)
			sent := false
			for sc.Scan() {
				fmt.Fprintln(logf, sc.Text())
				if !sent && listeningRE.MatchString(sc.Text()) {
					ok <- true
					sent = true
				}
			}
			if !sent {
				ok <- false
			}
		}()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case good := <-ok:
			if good {
				d.cmd, d.done = cmd, done
				return nil
			}
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return ctx.Err()
		}
		<-done
		// The port may still be held by the killed broker's sockets: retry.
		if time.Now().After(deadline) {
			return fmt.Errorf("dev broker did not start on %s (log %s)", d.addr, filepath.Join(d.dir, "..", "broker.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (d *procDev) Kill(context.Context, int) error {
	if d.cmd == nil {
		return fmt.Errorf("dev broker: not running")
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
	d.cmd = nil
	return nil
}

func (d *procDev) Close() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
}

// kafkaCluster is Apache Kafka run by deploy/kafka/kafka.sh.
type kafkaCluster struct {
	script, dir string
	port, nodes int
}

func startKafka(ctx context.Context, script, dir string, nodes int) (*kafkaCluster, error) {
	port, err := kafkaPorts(nodes)
	if err != nil {
		return nil, err
	}
	k := &kafkaCluster{script: script, dir: dir, port: port, nodes: nodes}
	if _, err := k.run(ctx, "start", dir, strconv.Itoa(port), strconv.Itoa(nodes)); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

// kafkaPorts finds 2*nodes consecutive free ports below Linux's ephemeral
// range (the brokers' and the controllers'), as with-kafka.sh does.
func kafkaPorts(nodes int) (int, error) {
	for try := 0; try < 100; try++ {
		p := 20000 + int(time.Now().UnixNano()%12000)
		ok := true
		for i := 0; i < 2*nodes && ok; i++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+i)))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free ports for Kafka")
}

func (k *kafkaCluster) run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.script, args...)
	// A loaded machine starts Kafka slowly: kafka.sh waits up to 4 minutes.
	cmd.Env = append(os.Environ(), "KAFKA_READY_TIMEOUT=240")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kafka.sh %s: %w\n%s", strings.Join(args, " "), err, tailLines(string(out), 30))
	}
	return string(out), nil
}

func (k *kafkaCluster) Addr() string {
	var addrs []string
	for i := 0; i < k.nodes; i++ {
		addrs = append(addrs, net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port+i)))
	}
	return strings.Join(addrs, ",")
}
func (k *kafkaCluster) Fake() *kfake.Cluster { return nil }
func (k *kafkaCluster) Describe() string {
	if k.nodes == 1 {
		return "kafka"
	}
	return fmt.Sprintf("kafka x%d", k.nodes)
}
func (k *kafkaCluster) Kill(ctx context.Context, node int) error {
	_, err := k.run(ctx, "kill", k.dir, strconv.Itoa(node))
	return err
}
func (k *kafkaCluster) Restart(ctx context.Context, node int) error {
	_, err := k.run(ctx, "restart", k.dir, strconv.Itoa(node))
	return err
}
func (k *kafkaCluster) Close() {
	_, _ = k.run(context.Background(), "stop", k.dir)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
