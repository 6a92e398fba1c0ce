package state

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A broker that has not yet learnt of a topic another broker just created
// answers its config with UNKNOWN_TOPIC_OR_PARTITION (seen on a three-node
// Apache Kafka when two instances created a changelog at once): the check
// asks again instead of failing the start. The fault is injected into an
// in-process kfake, on every broker suite.
func TestEnsureChangelogsWaitsForATopicToBeKnown(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "app.s.changelog"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	unknown := 2
	c.ControlKey(kmsg.DescribeConfigs.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if unknown == 0 {
			return nil, nil, false
		}
		unknown--
		r := req.(*kmsg.DescribeConfigsRequest)
		resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
		for _, rr := range r.Resources {
			res := kmsg.NewDescribeConfigsResponseResource()
			res.ResourceType, res.ResourceName = rr.ResourceType, rr.ResourceName
			res.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Resources = append(resp.Resources, res)
		}
		return resp, nil, true
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	compact := "compact"
	if _, err := adm.AlterTopicConfigs(testCtx(t), []kadm.AlterConfig{{Name: "cleanup.policy", Value: &compact}}, "app.s.changelog"); err != nil {
		t.Fatal(err)
	}
	if err := EnsureChangelogs(testCtx(t), adm, map[string]int32{"app.s.changelog": 3}); err != nil {
		t.Fatalf("EnsureChangelogs: %v", err)
	}
	if unknown != 0 {
		t.Fatalf("%d injected answers left: the config was not asked again", unknown)
	}
}
