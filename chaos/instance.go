package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// instance is one `veltrix run` process: its own state dir, HTTP port and log
// file (appended to across restarts, so one file tells an instance's story).
type instance struct {
	name     string
	bin      string
	cfg      string
	brokers  func() string
	stateDir string
	logPath  string
	httpAddr string
	extraEnv []string // e.g. VELTRIX_APP_INSTANCE_ID

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
	paused  bool
	starts  int
	exits   int // exits nobody asked for (not kill -9, not SIGTERM)
	killing bool
}

func newInstance(name, bin, cfg, dir string, brokers func() string) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return &instance{
		name:     name,
		bin:      bin,
		cfg:      cfg,
		brokers:  brokers,
		stateDir: filepath.Join(dir, name, "state"),
		logPath:  filepath.Join(dir, name+".log"),
		httpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
	}, nil
}

// start runs the process; it must not be running.
func (in *instance) start() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd != nil {
		return fmt.Errorf("start %s: already running", in.name)
	}
	if err := os.MkdirAll(filepath.Dir(in.stateDir), 0o755); err != nil {
		return fmt.Errorf("start %s: %w", in.name, err)
	}
	logf, err := os.OpenFile(in.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", in.name, err)
	}
	fmt.Fprintf(logf, "=== chaos: start %d at %s\n", in.starts+1, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(in.bin, "run", "-c", in.cfg)
	cmd.Env = append(os.Environ(),
		"VELTRIX_KAFKA_BROKERS="+in.brokers(),
		"VELTRIX_APP_STATE_DIR="+in.stateDir,
		"VELTRIX_HTTP_LISTEN="+in.httpAddr,
	)
	cmd.Env = append(cmd.Env, in.extraEnv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", in.name, err)
	}
	in.starts++
	in.cmd, in.paused, in.killing = cmd, false, false
	done := make(chan struct{})
	in.done = done
	go func() {
		err := cmd.Wait()
		logf.Close()
		in.mu.Lock()
		if !in.killing {
			in.exits++
		}
		in.exitErr = err
		in.cmd = nil
		in.mu.Unlock()
		close(done)
	}()
	return nil
}

// running reports whether the process is alive (paused counts as alive).
func (in *instance) running() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cmd != nil
}

// signal sends sig and, for SIGKILL and SIGTERM, waits for the exit (up to
// wait; then SIGKILL).
func (in *instance) signal(sig syscall.Signal, wait time.Duration) error {
	in.mu.Lock()
	cmd, done := in.cmd, in.done
	if cmd == nil {
		in.mu.Unlock()
		return nil
	}
	if sig == syscall.SIGKILL || sig == syscall.SIGTERM {
		in.killing = true
	}
	if in.paused && sig == syscall.SIGTERM {
		_ = cmd.Process.Signal(syscall.SIGCONT)
	}
	in.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: signal %v: %w", in.name, sig, err)
	}
	switch sig {
	case syscall.SIGSTOP, syscall.SIGCONT:
		in.mu.Lock()
		in.paused = sig == syscall.SIGSTOP
		in.mu.Unlock()
		return nil
	}
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("%s: still running %v after %v: killed", in.name, wait, sig)
	}
}

// kill9 ends the process at once: no commit, no abort, no group leave.
func (in *instance) kill9() error { return in.signal(syscall.SIGKILL, 10*time.Second) }

// stop asks for a clean stop (SIGTERM).
func (in *instance) stop() error { return in.signal(syscall.SIGTERM, 45*time.Second) }

// wipe deletes the state dir (the instance must be stopped).
func (in *instance) wipe() error {
	if err := os.RemoveAll(in.stateDir); err != nil {
		return fmt.Errorf("wipe %s: %w", in.name, err)
	}
	return nil
}

// ready polls /readyz until it answers 200, for at most timeout.
func (in *instance) ready(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cl := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.httpAddr+"/readyz", nil)
		if resp, err := cl.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !in.running() {
			return fmt.Errorf("%s exited before it was ready (log: %s)", in.name, in.logPath)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %v (log: %s)", in.name, timeout, in.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lastLogLine is the last line of the instance's log (its exit reason after
// a failed start).
func (in *instance) lastLogLine() string {
	b, err := os.ReadFile(in.logPath)
	if err != nil {
		return ""
	}
	return tailLines(string(b), 1)
}

func (in *instance) unexpectedExits() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.exits
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
