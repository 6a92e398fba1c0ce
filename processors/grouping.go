package processors

import (
	"github.com/veltrix/veltrix/pkg/expr"
)

// Grouper is implemented by a step that groups or looks up by a key: it
// needs every event of one key in one task (aggregate, dedupe, join,
// sequence). The topology adds a repartition before the step unless the
// events are known to be partitioned by that key already (see
// docs/steps.md, "Keys and repartitioning").
type Grouper interface {
	// GroupKey returns the key expression (nil: the record key, which the
	// input is partitioned by) and whether the topology may repartition
	// before the step (false when the step says repartition: false).
	GroupKey() (key *expr.Program, repartition bool)
}

// KeyEffect is what a step does to the key and value of the events that go
// on after it, so that the topology knows which key expressions those
// events are still partitioned by.
type KeyEffect struct {
	// Rekeys is true when the events go on with a new record key: the value
	// of Key evaluated on the event before the step (aggregate results are
	// keyed by their group key). A nil Key with Rekeys leaves the record
	// key as it was.
	Rekeys bool
	Key    *expr.Program
	// Replaces is true when the step replaces the event's value as a whole
	// (map, aggregate): no expression over event means what it did.
	Replaces bool
	// Fields are the top-level fields of the value the step sets, changes
	// or removes: an expression reading one of them may mean something else
	// after the step.
	Fields []string
}

// KeyEffecter is implemented by steps that declare their KeyEffect. A step
// that does not is taken to replace the value (the safe assumption).
type KeyEffecter interface {
	KeyEffect() KeyEffect
}

// RepartitionField is the optional key of a Grouper step's mapping form.
var repartitionField = Field{Name: "repartition", Type: BoolType,
	Hint: "write repartition: false to keep grouping per input partition",
	Doc:  "`false` keeps grouping per input partition on purpose: no repartition is added before the step even when its key is not the one the input is partitioned by; default true"}

// NewRepartition returns the step the topology adds before a Grouper whose
// key the input is not partitioned by: like a rekey by key, it writes the
// event keyed by key's value to topic (an internal repartition topic, in the
// same transaction), and the steps after it read that topic. before names
// the step it serves, for describe.
func NewRepartition(key *expr.Program, topic, before string) Step {
	return &rekeyStep{key: key, topic: topic, added: before}
}
