package group

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/veltrix/veltrix/internal/testbroker"
)

func TestWrapUnwrap(t *testing.T) {
	for _, tc := range []struct {
		addr string
		data []byte
	}{
		{"127.0.0.1:8080", []byte{1, 2, 3}},
		{"", nil},
		{"h:1", []byte("vx1 looks like magic")},
	} {
		addr, rest, ok := unwrap(wrap(tc.addr, tc.data))
		if !ok || addr != tc.addr || string(rest) != string(tc.data) {
			t.Errorf("unwrap(wrap(%q, %q)) = %q, %q, %v", tc.addr, tc.data, addr, rest, ok)
		}
	}
	if _, rest, ok := unwrap([]byte{9, 9}); ok || len(rest) != 2 {
		t.Errorf("unwrap of foreign user data: ok=%v rest=%v", ok, rest)
	}
}

// Both topics' partition p (task p) go to one member, and the owners map
// sees both members and every partition.
func TestTasksStayTogetherAndOwnersAreFound(t *testing.T) {
	c := testbroker.New(t, testbroker.WithTopics(6, "in", "table"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrs := []string{"10.0.0.1:8080", "10.0.0.2:8080"}
	for _, a := range addrs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumerGroup("g"),
			kgo.ConsumeTopics("in", "table"), kgo.Balancers(Balancer(a)))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		go func() {
			for ctx.Err() == nil {
				cl.PollFetches(ctx)
			}
		}()
	}
	o := NewOwners(c.Admin(), "g", 0)
	for {
		if ctx.Err() != nil {
			t.Fatal("the two members never shared the 6 partitions")
		}
		members, err := o.Members(ctx)
		seen := map[string]int{}
		if err == nil && len(members) == 2 {
			for p := range int32(6) {
				a, err1 := o.Owner(ctx, "in", p)
				b, err2 := o.Owner(ctx, "table", p)
				if err1 == nil && err2 == nil {
					if a != b {
						t.Fatalf("task %d split: in[%d] on %s, table[%d] on %s", p, p, a, p, b)
					}
					seen[a]++
				}
			}
		}
		if seen[addrs[0]]+seen[addrs[1]] == 6 && seen[addrs[0]] > 0 && seen[addrs[1]] > 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"[::1]:8080", true},
		{"node-1.veltrix.svc.cluster.local:8080", true},
		{"my_host:1", true},
		{"h:65535", true},
		{"", false},
		{"h", false},
		{":8080", false},
		{"h:0", false},
		{"h:65536", false},
		{"h:+80", false},
		{"h:http", false},
		{"http://h:80", false},
		{"h:80/v1", false},
		{"user@h:80", false},
		{"h:80?x=1", false},
		{"h:80#f", false},
		{"evil.example/x?:80", false},
		{"h/../x:80", false},
		{"h%0d%0a:80", false},
		{"h x:80", false},
		{"[fe80::1%eth0]:80", false},
	} {
		err := CheckAddr(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

// A member that advertises something other than a plain host:port (any
// client that can join the group can) is neither a member nor an owner to
// Owners: its address never reaches a URL.
func TestOwnersSkipForgedAddresses(t *testing.T) {
	c := testbroker.New(t, testbroker.WithTopics(4, "in"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const good, forged = "10.0.0.1:8080", "evil.example/steal?x=:80"
	for _, a := range []string{good, forged} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ConsumerGroup("g-forged"),
			kgo.ConsumeTopics("in"), kgo.Balancers(Balancer(a)))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		go func() {
			for ctx.Err() == nil {
				cl.PollFetches(ctx)
			}
		}()
	}
	o := NewOwners(c.Admin(), "g-forged", 0)
	for {
		if ctx.Err() != nil {
			t.Fatal("the two members never shared the partitions")
		}
		groups, err := c.Admin().DescribeGroups(ctx, "g-forged")
		assigned := 0
		if err == nil {
			for _, m := range groups["g-forged"].Members {
				if asg, ok := m.Assigned.AsConsumer(); ok && len(asg.Topics) > 0 && len(asg.Topics[0].Partitions) > 0 {
					assigned++
				}
			}
		}
		if assigned == 2 { // both members own partitions
			members, err := o.Members(ctx)
			if err == nil && (len(members) != 1 || members[0] != good) {
				t.Fatalf("Members = %q, want only %q", members, good)
			}
			owned := 0
			for p := range int32(4) {
				addr, err := o.Owner(ctx, "in", p)
				if err == nil && addr != good {
					t.Fatalf("Owner(in, %d) = %q, want %q or an error", p, addr, good)
				}
				if err == nil {
					owned++
				}
			}
			if err == nil && owned > 0 && owned < 4 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}
