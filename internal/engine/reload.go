package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/clustercheck"
	"github.com/veltrix/veltrix/internal/kafkaconn"
	"github.com/veltrix/veltrix/internal/topology"
)

// ShapeChangedError is a reload refused because the new topology's shape
// differs from the running one's (topology.Shape): its differences need a
// restart.
type ShapeChangedError struct {
	Differences []string
}

func (e *ShapeChangedError) Error() string {
	return "the topology's shape changed (a restart is needed): " + strings.Join(e.Differences, "; ")
}

// errSuperseded is a reload replaced by a later one before it was applied.
var errSuperseded = errors.New("reload superseded by a later one before it was applied")

// reloads hands a new topology to the processing loop.
type reloads struct {
	mu      sync.Mutex
	pending *reloadReq
}

type reloadReq struct {
	topo *topology.Topology
	err  error
	done chan struct{}
}

// Rules returns the topology records are processed with now: the one the
// engine was made with, or the last one a Reload applied.
func (e *Engine) Rules() *topology.Topology { return e.rules.Load() }

// Reload makes the engine process records with topo's rules from its next
// transaction on, keeping every task's state. topo must have the running
// topology's shape (else a *ShapeChangedError; nothing changes); output
// topics it adds are created first, as at start. Reload returns when a
// transaction boundary applied it, or with ctx's error (the reload is then
// dropped). Run must be running for a reload to be applied.
func (e *Engine) Reload(ctx context.Context, topo *topology.Topology) error {
	if diff := e.topo.Shape().Diff(topo.Shape()); len(diff) > 0 {
		return &ShapeChangedError{Differences: diff}
	}
	if err := e.prepareOutputs(ctx, topo); err != nil {
		return err
	}
	req := &reloadReq{topo: topo, done: make(chan struct{})}
	e.reloads.mu.Lock()
	prev := e.reloads.pending
	e.reloads.pending = req
	e.reloads.mu.Unlock()
	if prev != nil {
		prev.err = errSuperseded
		close(prev.done)
	}
	select {
	case <-req.done:
		return req.err
	case <-ctx.Done():
		e.reloads.mu.Lock()
		defer e.reloads.mu.Unlock()
		if e.reloads.pending != req {
			<-req.done // applied or superseded meanwhile
			return req.err
		}
		e.reloads.pending = nil
		return fmt.Errorf("reload not applied: %w", ctx.Err())
	}
}

// prepareOutputs checks topo against the cluster and creates the output
// topics it adds.
func (e *Engine) prepareOutputs(ctx context.Context, topo *topology.Topology) error {
	base, err := kafkaconn.Options(e.cfg.Kafka)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	cl, err := kgo.NewClient(append(base, e.extra...)...)
	if err != nil {
		return fmt.Errorf("reload: kafka client: %w", err)
	}
	defer cl.Close()
	if _, err := clustercheck.Prepare(ctx, kadm.NewClient(cl), e.cfg, topo); err != nil {
		return fmt.Errorf("reload: %w: %w", ErrClusterCheck, err)
	}
	return nil
}

// applyReload switches to a pending reload's rules. The loop calls it
// between transactions, with the pipeline drained, so that a transaction
// runs one version of the rules.
func (e *Engine) applyReload() {
	e.reloads.mu.Lock()
	req := e.reloads.pending
	e.reloads.pending = nil
	e.reloads.mu.Unlock()
	if req == nil {
		return
	}
	e.rules.Store(req.topo)
	e.log.Info("rules reloaded; state kept", "rules", len(req.topo.Rules))
	close(req.done)
}
