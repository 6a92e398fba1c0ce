// Package clustercheck checks a topology against a live cluster before
// anything runs — the classic runtime "configuration mismatch" caught early:
// every input topic exists, every output topic exists or may be created, and
// topics that must be co-partitioned have equal partition counts.
//
// Check is read-only (veltrix validate --brokers); Prepare runs the same
// checks and then creates the missing output topics (veltrix run).
package clustercheck

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/veltrix/veltrix/config"
	"github.com/veltrix/veltrix/pkg/diag"
	"github.com/veltrix/veltrix/topology"
)

// Result is what the checks found out about the topology's topics.
type Result struct {
	Problems      diag.List
	Partitions    map[string]int32 // existing topics of the topology
	MissingOutput []string         // output topics that do not exist yet (but may be created)
}

// Check inspects the cluster, read-only. Problems carry codes VX4001 (input
// topic missing), VX4002 (co-partitioning), VX4004 (an output topic that
// neither exists nor may be created) and VX4005 (cluster unreachable).
func Check(ctx context.Context, adm *kadm.Client, cfg *config.Config, topo *topology.Topology) Result {
	res := Result{Partitions: map[string]int32{}}
	inputs, outputs := topo.InputTopics(), topo.OutputTopics()
	all := append(slices.Clone(inputs), outputs...)
	details, err := adm.ListTopics(ctx, all...)
	if err != nil {
		res.Problems.Add(&diag.Error{Code: diag.ClusterUnreachable, Path: "kafka.brokers",
			Message: fmt.Sprintf("cannot read topic metadata from %s: %v", strings.Join(cfg.Kafka.Brokers, ","), err),
			Hint:    "check kafka.brokers (or VELTRIX_KAFKA_BROKERS), TLS and SASL settings, and that the cluster is up"})
		return res
	}
	exists := func(t string) bool {
		d, ok := details[t]
		return ok && d.Err == nil
	}
	for t, d := range details {
		if d.Err == nil {
			res.Partitions[t] = int32(len(d.Partitions))
		}
	}
	repartitions := topo.Repartitions()
	for _, t := range inputs {
		if !exists(t) && !slices.Contains(repartitions, t) {
			res.Problems.Add(inputPos(cfg, t).At(diag.TopicMissing, "input topic %q does not exist", t).
				WithHint("create it (e.g. kafka-topics.sh --create --topic %s), or fix the name", t))
		}
	}
	for _, t := range outputs {
		if !exists(t) {
			res.MissingOutput = append(res.MissingOutput, t)
		}
	}
	if len(res.MissingOutput) > 0 {
		resp, err := adm.ValidateCreateTopics(ctx, -1, -1, nil, res.MissingOutput...)
		if err != nil {
			var ke *kerr.Error
			if !errors.As(err, &ke) {
				res.Problems.Add(&diag.Error{Code: diag.ClusterUnreachable, Path: "kafka.brokers",
					Message: fmt.Sprintf("cannot check whether output topics may be created: %v", err)})
				return res
			}
		}
		for _, t := range res.MissingOutput {
			if r, ok := resp[t]; ok && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				res.Problems.Add(outputPos(cfg, topo, t).At(diag.OutputUnavailable,
					"output topic %q does not exist and cannot be created: %v", t, r.Err).
					WithHint("create the topic, or grant this client CREATE on it"))
			}
		}
	}
	for _, group := range topo.CoPartitioned() {
		var counts []string
		first := int32(-1)
		equal := true
		for _, t := range group {
			n, ok := res.Partitions[t]
			if !ok {
				equal = false // reported above as missing
				continue
			}
			if first == -1 {
				first = n
			} else if n != first {
				equal = false
			}
			counts = append(counts, fmt.Sprintf("%s=%d", t, n))
		}
		if !equal && len(counts) == len(group) {
			res.Problems.Add(inputPos(cfg, group[0]).At(diag.CoPartition,
				"topics %s must have the same partition count (%s)", strings.Join(group, ", "), strings.Join(counts, ", ")).
				WithHint("repartition one of them (or rekey before the join) so both have the same partition count"))
		}
	}
	return res
}

// Prepare runs Check and, when it found no problem, creates the missing
// repartition topics (with the partition count of the topics they are
// co-partitioned with, else of their rule's inputs) and the missing output
// topics (with the cluster's default partition count and replication
// factor). It returns what Check found, with the created topics'
// partition counts.
func Prepare(ctx context.Context, adm *kadm.Client, cfg *config.Config, topo *topology.Topology) (Result, error) {
	res := Check(ctx, adm, cfg, topo)
	if len(res.Problems) > 0 {
		return res, res.Problems.Err()
	}
	var problems diag.List
	for _, it := range topo.InternalTopics() {
		if it.Kind != "repartition" || !slices.Contains(res.MissingOutput, it.Topic) {
			continue
		}
		n := repartitionCount(topo, it, res.Partitions)
		resp, err := adm.CreateTopic(ctx, n, -1, nil, it.Topic)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			problems.Add(outputPos(cfg, topo, it.Topic).At(diag.OutputUnavailable, "create repartition topic %q: %v", it.Topic, err))
			continue
		}
		res.Partitions[it.Topic] = max(resp.NumPartitions, n)
		res.MissingOutput = slices.DeleteFunc(res.MissingOutput, func(t string) bool { return t == it.Topic })
	}
	if len(problems) > 0 || len(res.MissingOutput) == 0 {
		return res, problems.Err()
	}
	resp, err := adm.CreateTopics(ctx, -1, -1, nil, res.MissingOutput...)
	if err != nil {
		return res, fmt.Errorf("create output topics %v: %w", res.MissingOutput, err)
	}
	for _, t := range res.MissingOutput {
		if r, ok := resp[t]; ok && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			problems.Add(outputPos(cfg, topo, t).At(diag.OutputUnavailable, "create output topic %q: %v", t, r.Err))
		} else if ok && r.Err == nil {
			res.Partitions[t] = r.NumPartitions
		}
	}
	return res, problems.Err()
}

// Tasks is the number of tasks of the topology: the largest partition count
// of its input topics.
func (r Result) Tasks(topo *topology.Topology) int32 {
	return r.MaxPartitions(topo.InputTopics())
}

// MaxPartitions is the largest partition count among topics.
func (r Result) MaxPartitions(topics []string) int32 {
	var n int32
	for _, t := range topics {
		n = max(n, r.Partitions[t])
	}
	return n
}

// repartitionCount is the partition count a missing repartition topic gets:
// that of an existing topic it must be co-partitioned with, else the
// largest of its rule's inputs.
func repartitionCount(topo *topology.Topology, it topology.InternalTopic, partitions map[string]int32) int32 {
	for _, group := range topo.CoPartitioned() {
		if !slices.Contains(group, it.Topic) {
			continue
		}
		for _, t := range group {
			if n, ok := partitions[t]; ok && t != it.Topic {
				return n
			}
		}
	}
	var n int32
	if r := topo.Rule(it.Rule); r != nil {
		for _, t := range r.From {
			n = max(n, partitions[t])
		}
	}
	if n == 0 {
		n = -1 // the cluster's default
	}
	return n
}

func inputPos(cfg *config.Config, topic string) diag.Pos {
	for _, r := range cfg.Rules {
		for i, t := range r.From {
			if t == topic && i < len(r.FromPos) {
				return r.FromPos[i]
			}
		}
	}
	return diag.Pos{File: cfg.File}
}

func outputPos(cfg *config.Config, topo *topology.Topology, topic string) diag.Pos {
	for _, r := range topo.Rules {
		if slices.Contains(r.Outputs, topic) || r.DLQ == topic {
			for _, rc := range cfg.Rules {
				if rc.Name == r.Name {
					return rc.Pos
				}
			}
		}
	}
	return diag.Pos{File: cfg.File}
}
