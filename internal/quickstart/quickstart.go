// Package quickstart is `veltrix dev`: an embedded broker, the bundled
// example rules (or the given config), a generator of realistic e-commerce
// events, and a live progress line (events in, out, DLQ, rate, latency) until
// the context ends.
package quickstart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/broker"
	"github.com/veltrix/veltrix/examples"
	"github.com/veltrix/veltrix/internal/devgen"
	"github.com/veltrix/veltrix/internal/instance"
	"github.com/veltrix/veltrix/internal/topology"
)

// Options configures Run.
type Options struct {
	ConfigPath string        // empty: the bundled examples/ecommerce
	Rate       float64       // generated events per second (default 200)
	Every      time.Duration // progress interval (default 1s)
	Out        io.Writer     // progress (default os.Stdout)
	Log        *slog.Logger  // engine logs (default: warnings and errors to stderr)
}

// Run runs the quickstart until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Rate == 0 {
		o.Rate = 200
	}
	if o.Every == 0 {
		o.Every = time.Second
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	work, err := os.MkdirTemp("", "veltrix-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	path := o.ConfigPath
	if path == "" {
		if path, err = extractExample(work); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
	}
	cfg, topo, err := topology.Compile(path)
	if err != nil {
		return err
	}
	topics := devgen.DefaultTopics()
	b, err := broker.Start(broker.WithListen("127.0.0.1:0"), broker.WithPartitions(6),
		broker.WithTopics(topics.Orders, topics.Payments, topics.Inventory, topics.Customers))
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer b.Close()
	cfg.Kafka.Brokers = []string{b.Addr()}
	cfg.App.StateDir = filepath.Join(work, "state")
	cfg.HTTP.Listen = freeOr(cfg.HTTP.Listen)
	for _, key := range []string{"kafka.brokers", "app.state_dir", "http.listen"} {
		cfg.SetOrigin(key, "veltrix dev")
	}
	fmt.Fprintf(o.Out, "veltrix dev: embedded broker on %s, %d rules from %s, generating %.0f events/s (Ctrl-C stops)\n",
		b.Addr(), len(topo.Rules), displayPath(o.ConfigPath), o.Rate)
	fmt.Fprintf(o.Out, "  read outputs: kcat -C -b %s -t <topic> -X isolation.level=read_committed (topics: %s)\n", b.Addr(), strings.Join(topo.OutputTopics(), ", "))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	gen, err := devgen.New(devgen.WithRate(o.Rate))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := gen.Run(ctx, cl); err != nil && !errors.Is(err, context.Canceled) {
			errs <- fmt.Errorf("generator: %w", err)
			cancel()
		}
	}()
	inst := instance.New(cfg, topo, instance.WithLogger(o.Log), instance.WithHTTPBound(func(addr string) {
		fmt.Fprintf(o.Out, "  console: http://%s/  metrics: http://%s/metrics\n", addr, addr)
	}))
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := inst.Run(ctx); err != nil {
			errs <- err
			cancel()
		}
	}()
	watch := newWatcher(b.Addr(), topo)
	wg.Add(1)
	go func() {
		defer wg.Done()
		watch.run(ctx)
	}()

	tick := time.NewTicker(o.Every)
	defer tick.Stop()
	began := time.Now()
	var last progress
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			close(errs)
			p := watch.snapshot(gen.Stats().Total(), inst.Engine.Stats())
			fmt.Fprintf(o.Out, "\nstopped after %s: %s\n", time.Since(began).Round(time.Second), p.line(progress{}, 0))
			return errors.Join(slices.Collect(chanValues(errs))...)
		case <-tick.C:
			p := watch.snapshot(gen.Stats().Total(), inst.Engine.Stats())
			fmt.Fprintf(o.Out, "%5s  %s\n", time.Since(began).Round(time.Second), p.line(last, o.Every))
			last = p
		}
	}
}

func chanValues(c chan error) func(func(error) bool) {
	return func(yield func(error) bool) {
		for e := range c {
			if !yield(e) {
				return
			}
		}
	}
}

func displayPath(p string) string {
	if p == "" {
		return "the bundled examples/ecommerce"
	}
	return p
}

// freeOr returns addr if it can be listened on now, else a free port on
// 127.0.0.1, so a busy 8080 does not stop the quickstart.
func freeOr(addr string) string {
	if addr == "" {
		return ""
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	ln.Close()
	return addr
}

// extractExample writes the embedded example to dir and returns its config path.
func extractExample(dir string) (string, error) {
	root := filepath.Join(dir, "ecommerce")
	err := fs.WalkDir(examples.Ecommerce, "ecommerce", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := examples.Ecommerce.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("extract example: %w", err)
	}
	return filepath.Join(root, "veltrix.yaml"), nil
}
