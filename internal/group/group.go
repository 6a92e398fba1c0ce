// Package group is how the instances of one application share work and find
// each other through their consumer group, with no other coordination.
//
// Work is shared by task: a task is a partition number, and every input topic's
// partition p belongs to the same instance (as in Kafka Streams), so the stores
// of task p see all co-partitioned inputs (a join's stream and table). Balancer
// assigns tasks with franz-go's cooperative-sticky algorithm over a virtual
// topic of tasks, then expands each task to the real topics.
//
// Each instance advertises its HTTP address in its group member metadata, and
// any instance can ask the group coordinator which member owns which
// partition (Owners), to answer interactive queries for keys it does not own.
// The address rides in the user data of the consumer protocol metadata:
//
//	"vx1" | uvarint(len(addr)) | addr | sticky user data
package group

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var magic = []byte("vx1")

// Balancer returns the task-aligned cooperative-sticky group balancer that
// advertises addr.
func Balancer(addr string, opts ...BalancerOpt) kgo.GroupBalancer {
	b := &balancer{inner: kgo.CooperativeStickyBalancer(), addr: addr}
	for _, o := range opts {
		o(b)
	}
	return b
}

// BalancerOpt configures Balancer.
type BalancerOpt func(*balancer)

// OnSync calls fn with this member's whole assignment each time it joins
// the group and syncs, before franz-go compares it with the last one and
// calls the OnPartitions callbacks (which a transactional session may skip:
// see engine). fn must not block.
func OnSync(fn func(assigned map[string][]int32)) BalancerOpt {
	return func(b *balancer) { b.onSync = fn }
}

// tasksTopic is the virtual topic whose partitions are the tasks.
const tasksTopic = "__veltrix_tasks"

type balancer struct {
	inner  kgo.GroupBalancer
	addr   string
	onSync func(map[string][]int32)
}

func (b *balancer) ProtocolName() string { return b.inner.ProtocolName() }
func (b *balancer) IsCooperative() bool  { return b.inner.IsCooperative() }

func (b *balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	m, err := b.inner.ParseSyncAssignment(assignment)
	if err == nil && b.onSync != nil {
		c := make(map[string][]int32, len(m))
		for t, ps := range m {
			c[t] = slices.Clone(ps)
		}
		b.onSync(c)
	}
	return m, err
}

func (b *balancer) JoinGroupMetadata(topics []string, current map[string][]int32, generation int32) []byte {
	raw := b.inner.JoinGroupMetadata(topics, current, generation)
	var meta kmsg.ConsumerMemberMetadata
	if err := meta.ReadFrom(raw); err != nil {
		return raw
	}
	meta.UserData = wrap(b.addr, meta.UserData)
	return meta.AppendTo(nil)
}

// MemberBalancer balances tasks: each member's metadata is rewritten to an
// interest in the virtual tasks topic, owning the partition numbers it owns in
// any real topic, and the sticky balancer (with its cooperative adjustment)
// assigns those; Balance expands each task to every real topic.
func (b *balancer) MemberBalancer(members []kmsg.JoinGroupResponseMember) (kgo.GroupMemberBalancer, map[string]struct{}, error) {
	stripped := make([]kmsg.JoinGroupResponseMember, len(members))
	for i, m := range members {
		stripped[i] = m
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.ProtocolMetadata); err != nil {
			continue
		}
		if _, rest, ok := unwrap(meta.UserData); ok {
			meta.UserData = rest
			stripped[i].ProtocolMetadata = meta.AppendTo(nil)
		}
	}
	real, err := kgo.NewConsumerBalancer(noBalance{}, stripped)
	if err != nil {
		return nil, nil, err
	}
	var virtual []kmsg.JoinGroupResponseMember
	real.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		owned := map[int32]bool{}
		for _, o := range meta.OwnedPartitions {
			for _, p := range o.Partitions {
				owned[p] = true
			}
		}
		vm := kmsg.NewConsumerMemberMetadata()
		vm.Version = meta.Version
		vm.Topics = []string{tasksTopic}
		vm.Generation = meta.Generation
		vm.Rack = meta.Rack
		if len(owned) > 0 {
			op := kmsg.NewConsumerMemberMetadataOwnedPartition()
			op.Topic = tasksTopic
			op.Partitions = slices.Sorted(maps.Keys(owned))
			vm.OwnedPartitions = []kmsg.ConsumerMemberMetadataOwnedPartition{op}
		}
		vmember := *m
		vmember.ProtocolMetadata = vm.AppendTo(nil)
		virtual = append(virtual, vmember)
	})
	inner, ok := b.inner.(kgo.ConsumerBalancerBalance)
	if !ok {
		return nil, nil, fmt.Errorf("balancer %s cannot balance consumer members", b.inner.ProtocolName())
	}
	vb, err := kgo.NewConsumerBalancer(inner, virtual)
	if err != nil {
		return nil, nil, err
	}
	return &taskBalancer{real: real, virtual: vb}, real.MemberTopics(), nil
}

// noBalance only parses members' metadata; balancing happens on the tasks.
type noBalance struct{}

func (noBalance) Balance(*kgo.ConsumerBalancer, map[string]int32) kgo.IntoSyncAssignment { return nil }

// taskBalancer balances the virtual tasks topic and expands the plan.
type taskBalancer struct {
	real, virtual *kgo.ConsumerBalancer
}

func (t *taskBalancer) Balance(topics map[string]int32) kgo.IntoSyncAssignment {
	plan, _ := t.BalanceOrError(topics)
	return plan
}

func (t *taskBalancer) BalanceOrError(topics map[string]int32) (kgo.IntoSyncAssignment, error) {
	var tasks int32
	for _, n := range topics {
		tasks = max(tasks, n)
	}
	into, err := t.virtual.BalanceOrError(map[string]int32{tasksTopic: tasks})
	if err != nil {
		return nil, err
	}
	vplan, ok := into.(*kgo.BalancePlan)
	if !ok {
		return nil, fmt.Errorf("unexpected plan type %T", into)
	}
	byMember := vplan.AsMemberIDMap()
	plan := t.real.NewPlan()
	t.real.EachMember(func(m *kmsg.JoinGroupResponseMember, meta *kmsg.ConsumerMemberMetadata) {
		for _, task := range byMember[m.MemberID][tasksTopic] {
			for _, topic := range meta.Topics {
				if n, ok := topics[topic]; ok && task < n {
					plan.AddPartition(m, topic, task)
				}
			}
		}
	})
	return plan, nil
}

func wrap(addr string, userData []byte) []byte {
	out := append([]byte{}, magic...)
	out = binary.AppendUvarint(out, uint64(len(addr)))
	out = append(out, addr...)
	return append(out, userData...)
}

func unwrap(data []byte) (addr string, rest []byte, ok bool) {
	if !bytes.HasPrefix(data, magic) {
		return "", data, false
	}
	data = data[len(magic):]
	n, w := binary.Uvarint(data)
	if w <= 0 || uint64(len(data)-w) < n {
		return "", data, false
	}
	return string(data[w : w+int(n)]), data[w+int(n):], true
}

// CheckAddr reports whether addr is a plain host:port an instance may
// advertise and peers may call: a host name or IP address (IPv6 in
// brackets) and a port 1-65535, with no scheme, user info, path, query or
// fragment. Addresses read from the group pass it before they are used.
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: want host:port: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("address %q: port %q is not a number 1-65535", addr, port)
	}
	if host == "" {
		return fmt.Errorf("address %q: no host", addr)
	}
	if ip := net.ParseIP(host); ip != nil {
		return nil
	}
	if len(host) > 253 {
		return fmt.Errorf("address %q: host name longer than 253 characters", addr)
	}
	for _, c := range host {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == '_':
		default:
			return fmt.Errorf("address %q: host %q has %q: want a host name or IP address", addr, host, c)
		}
	}
	return nil
}

// Owners maps each topic partition to the HTTP address of the member that
// owns it, from the group coordinator, cached for a short time.
type Owners struct {
	adm   *kadm.Client
	group string
	ttl   time.Duration

	mu      sync.Mutex
	fetched time.Time
	owners  map[string]map[int32]string // topic -> partition -> addr
	members []string                    // every advertised address
}

// NewOwners looks up owners of group's partitions through adm; answers are
// cached for ttl (a rebalance makes them stale until then).
func NewOwners(adm *kadm.Client, group string, ttl time.Duration) *Owners {
	return &Owners{adm: adm, group: group, ttl: ttl}
}

// Owner returns the address of the member owning topic/partition.
func (o *Owners) Owner(ctx context.Context, topic string, partition int32) (string, error) {
	if err := o.refresh(ctx); err != nil {
		return "", err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	addr, ok := o.owners[topic][partition]
	if !ok {
		return "", fmt.Errorf("no member of group %s owns %s[%d] (rebalancing?)", o.group, topic, partition)
	}
	return addr, nil
}

// Members returns the advertised addresses of every member.
func (o *Owners) Members(ctx context.Context) ([]string, error) {
	if err := o.refresh(ctx); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.members...), nil
}

// Invalidate drops the cache (after a rebalance).
func (o *Owners) Invalidate() {
	o.mu.Lock()
	o.fetched = time.Time{}
	o.mu.Unlock()
}

func (o *Owners) refresh(ctx context.Context) error {
	o.mu.Lock()
	fresh := time.Since(o.fetched) < o.ttl
	o.mu.Unlock()
	if fresh {
		return nil
	}
	groups, err := o.adm.DescribeGroups(ctx, o.group)
	if err != nil {
		return fmt.Errorf("describe group %s: %w", o.group, err)
	}
	g, ok := groups[o.group]
	if !ok || g.Err != nil {
		return fmt.Errorf("describe group %s: %v", o.group, g.Err)
	}
	owners := map[string]map[int32]string{}
	var members []string
	for _, m := range g.Members {
		meta, ok := m.Join.AsConsumer()
		if !ok {
			continue
		}
		addr, _, ok := unwrap(meta.UserData)
		if !ok || CheckAddr(addr) != nil {
			// Any client that can join the group writes this metadata:
			// an address that is not a plain host:port is never used
			// to build a URL.
			continue
		}
		members = append(members, addr)
		asg, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range asg.Topics {
			if owners[t.Topic] == nil {
				owners[t.Topic] = map[int32]string{}
			}
			for _, p := range t.Partitions {
				owners[t.Topic][p] = addr
			}
		}
	}
	o.mu.Lock()
	o.owners, o.members, o.fetched = owners, members, time.Now()
	o.mu.Unlock()
	return nil
}
