package devgen

import (
	"fmt"
	"strconv"
	"time"

	"github.com/veltrix/veltrix/pkg/diag"
)

// Topics names the topics the generator writes to.
type Topics struct {
	Orders    string // default "orders"
	Payments  string // default "payments"
	Inventory string // default "inventory"
	// Customers receives the customers table once, before the event stream.
	// Default "customers"; empty means no customers table is produced.
	Customers string
}

// DefaultTopics returns the topics used when WithTopics is not given.
func DefaultTopics() Topics {
	return Topics{Orders: "orders", Payments: "payments", Inventory: "inventory", Customers: "customers"}
}

// Clock is the generator's source of time: event timestamps and rate pacing.
// Tests inject a fake one; the default reads the system clock.
type Clock interface {
	Now() time.Time
	// After delivers on the returned channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Option configures a Generator.
type Option func(*config)

type config struct {
	seed      uint64
	rate      float64
	malformed float64
	topics    Topics
	customers int
	skus      int
	limit     int64
	clock     Clock
}

func defaultConfig() config {
	return config{
		seed:      1,
		rate:      200,
		malformed: 0.01,
		topics:    DefaultTopics(),
		customers: 5000,
		skus:      500,
		clock:     systemClock{},
	}
}

// WithSeed seeds the random source (default 1). Two generators with the same
// options, seed and clock readings produce byte-identical streams.
func WithSeed(seed uint64) Option { return func(c *config) { c.seed = seed } }

// WithRate sets the pace of Run in events per second (default 200). 0 means
// as fast as the client accepts records. The customers table is not paced.
func WithRate(perSecond float64) Option { return func(c *config) { c.rate = perSecond } }

// WithMalformedRatio sets the share of malformed records, between 0 and 1
// (default 0.01).
func WithMalformedRatio(ratio float64) Option { return func(c *config) { c.malformed = ratio } }

// WithTopics sets the topic names (default DefaultTopics()). Orders, Payments
// and Inventory are required and distinct; an empty Customers skips the
// customers table.
func WithTopics(t Topics) Option { return func(c *config) { c.topics = t } }

// WithCustomers sets the number of customers c-0001... (default 5000).
func WithCustomers(n int) Option { return func(c *config) { c.customers = n } }

// WithSKUs sets the number of products sku-0001... (default 500).
func WithSKUs(n int) Option { return func(c *config) { c.skus = n } }

// WithLimit makes Run stop after n events from Next, not counting the
// customers table (default 0: no limit).
func WithLimit(n int64) Option { return func(c *config) { c.limit = n } }

// WithClock sets the clock (default: the system clock).
func WithClock(clk Clock) Option { return func(c *config) { c.clock = clk } }

// validate gathers every invalid setting. The path of each problem is the
// setting's name as the dev command exposes it.
func (c *config) validate() error {
	var l diag.List
	bad := func(path, expected, found string) {
		e := diag.Pos{Path: path}.At(diag.InvalidValue, "generator setting %s is %s, want %s", path, found, expected)
		l.Add(e.With(expected, found))
	}
	if c.rate < 0 {
		bad("rate", "events per second >= 0 (0: unpaced)", fmtFloat(c.rate))
	}
	if !(c.malformed >= 0 && c.malformed <= 1) {
		bad("malformed_ratio", "a ratio between 0 and 1", fmtFloat(c.malformed))
	}
	if c.customers < 1 {
		bad("customers", "at least 1", strconv.Itoa(c.customers))
	}
	if c.skus < 1 {
		bad("skus", "at least 1", strconv.Itoa(c.skus))
	}
	if c.limit < 0 {
		bad("limit", "a count >= 0 (0: no limit)", strconv.FormatInt(c.limit, 10))
	}
	if c.clock == nil {
		bad("clock", "a clock", "nil")
	}
	seen := map[string]string{}
	for _, t := range []struct{ path, name string }{
		{"topics.orders", c.topics.Orders},
		{"topics.payments", c.topics.Payments},
		{"topics.inventory", c.topics.Inventory},
		{"topics.customers", c.topics.Customers},
	} {
		if t.name == "" && t.path == "topics.customers" {
			continue
		}
		if msg := topicProblem(t.name); msg != "" {
			l.Add(diag.Pos{Path: t.path}.At(diag.InvalidTopic, "topic %q: %s", t.name, msg))
			continue
		}
		if other, dup := seen[t.name]; dup {
			l.Add(diag.Pos{Path: t.path}.At(diag.InvalidValue, "topic %q is also %s, want a distinct topic per role", t.name, other))
		}
		seen[t.name] = t.path
	}
	return l.Err()
}

// topicProblem says why Kafka would reject a topic name, or "".
func topicProblem(name string) string {
	switch {
	case name == "":
		return "empty name"
	case name == "." || name == "..":
		return "reserved name"
	case len(name) > 249:
		return "longer than 249 characters"
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Sprintf("character %q is not allowed (only a-z A-Z 0-9 . _ -)", r)
		}
	}
	return ""
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
