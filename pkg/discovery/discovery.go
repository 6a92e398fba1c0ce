// Package discovery lets the instances of one application find each other
// through their consumer group, with no other coordination: each instance
// advertises its HTTP address in its group member metadata, and any instance
// can ask the group coordinator which member owns which partition.
//
// The address rides in the user data of the consumer protocol metadata, in
// front of the cooperative-sticky balancer's own user data:
//
//	"vx1" | uvarint(len(addr)) | addr | sticky user data
//
// Balancer wraps kgo's cooperative-sticky balancer and strips the prefix
// before the sticky balancer reads its data, so assignment is unchanged.
package discovery

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var magic = []byte("vx1")

// Balancer returns a cooperative-sticky group balancer that advertises addr.
func Balancer(addr string) kgo.GroupBalancer {
	return &balancer{inner: kgo.CooperativeStickyBalancer(), addr: addr}
}

type balancer struct {
	inner kgo.GroupBalancer
	addr  string
}

func (b *balancer) ProtocolName() string { return b.inner.ProtocolName() }
func (b *balancer) IsCooperative() bool  { return b.inner.IsCooperative() }

func (b *balancer) ParseSyncAssignment(assignment []byte) (map[string][]int32, error) {
	return b.inner.ParseSyncAssignment(assignment)
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
	return b.inner.MemberBalancer(stripped)
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
		if !ok {
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
