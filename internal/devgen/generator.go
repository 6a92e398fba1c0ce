package devgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
)

// Shares of the well-formed stream, drawn per event. Orders (and the payments
// that follow them) take the rest. The create share is a little above what
// open orders complete per event, so the set of open orders fills up to
// maxOpenOrders and then stays there.
const (
	shareInventory = 0.15
	shareDuplicate = 0.003 // a payment.captured sent twice
	shareOrphan    = 0.002 // a payment.captured for an order never created
	shareCreate    = 0.20
	maxOpenOrders  = 1000
)

// timeLayout is RFC 3339 in UTC with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

type weighted[T any] struct {
	v T
	w int
}

var (
	countries      = []weighted[string]{{"DE", 30}, {"FR", 15}, {"GB", 12}, {"NL", 10}, {"ES", 9}, {"IT", 9}, {"AT", 5}, {"BE", 5}, {"IE", 5}}
	tiers          = []weighted[string]{{"gold", 10}, {"silver", 30}, {"bronze", 60}}
	methods        = []weighted[string]{{"card", 60}, {"paypal", 30}, {"sepa", 10}}
	itemCounts     = []weighted[int]{{1, 55}, {2, 30}, {3, 15}}
	quantities     = []weighted[int]{{1, 70}, {2, 20}, {3, 10}}
	warehouses     = []string{"ber-1", "ams-1", "mad-1", "lon-1"}
	malformedKinds = []string{KindMalformedJSON, KindMalformedArray, KindMalformedType, KindMalformedMissing}
)

func pick[T any](r *rand.Rand, choices []weighted[T]) T {
	total := 0
	for _, c := range choices {
		total += c.w
	}
	n := r.IntN(total)
	for _, c := range choices {
		if n < c.w {
			return c.v
		}
		n -= c.w
	}
	return choices[len(choices)-1].v
}

func currencyOf(country string) string {
	if country == "GB" {
		return "GBP"
	}
	return "EUR"
}

// Order life cycle: created -> authorized -> captured -> paid -> shipped, or
// created -> failed -> cancelled, or created -> cancelled.
type orderState int

const (
	stateCreated orderState = iota
	stateAuthorized
	stateCaptured
	statePaid
	stateFailed
)

type openOrder struct {
	order   Order // with Items
	state   orderState
	payment Payment
}

type product struct {
	sku   string
	cents int64
}

// Generator produces a deterministic stream of e-commerce events. Next and
// Run must not be called concurrently; Stats may be read at any time.
type Generator struct {
	cfg       config
	rng       *rand.Rand
	customer  *rand.Zipf // a few customers order often, most rarely
	customers []Customer
	products  []product

	open        []*openOrder
	orders      int // order ids handed out
	payments    int // payment ids handed out
	lastCapture *Event

	topicIndex map[string]int
	stats      counters
}

// New returns a generator, or every invalid option as a diag.List (code
// VX1104 or VX1107, path naming the setting).
func New(opts ...Option) (*Generator, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("devgen: %w", err)
	}
	g := &Generator{
		cfg: cfg,
		// Two streams of one seed: the catalogue does not shift the events
		// when only the number of customers or products changes.
		rng:        rand.New(rand.NewPCG(cfg.seed, 2)),
		topicIndex: map[string]int{},
	}
	catalogue := rand.New(rand.NewPCG(cfg.seed, 1))
	g.customer = rand.NewZipf(g.rng, 1.1, 10, uint64(cfg.customers-1))
	for i := range cfg.customers {
		g.customers = append(g.customers, Customer{
			CustomerID: fmt.Sprintf("c-%04d", i+1),
			Tier:       pick(catalogue, tiers),
			Country:    pick(catalogue, countries),
		})
	}
	for i := range cfg.skus {
		// Prices end in .99: 75% under 60, 20% up to 400, 5% up to 2,500.
		var euros int
		switch p := catalogue.Float64(); {
		case p < 0.75:
			euros = 3 + catalogue.IntN(58)
		case p < 0.95:
			euros = 60 + catalogue.IntN(341)
		default:
			euros = 400 + catalogue.IntN(2101)
		}
		g.products = append(g.products, product{sku: fmt.Sprintf("sku-%04d", i+1), cents: int64(euros)*100 - 1})
	}
	for i, t := range []string{cfg.topics.Orders, cfg.topics.Payments, cfg.topics.Inventory, cfg.topics.Customers} {
		if t != "" {
			g.topicIndex[t] = i
		}
	}
	g.stats.produced = make([]atomic.Int64, 4)
	return g, nil
}

// Customers returns the customers table, one record per customer keyed by
// customer id, or nil when the customers topic is disabled. Run produces it
// once before the event stream. It does not advance the stream.
func (g *Generator) Customers() []Event {
	if g.cfg.topics.Customers == "" {
		return nil
	}
	evs := make([]Event, 0, len(g.customers))
	for _, c := range g.customers {
		evs = append(evs, Event{Topic: g.cfg.topics.Customers, Key: []byte(c.CustomerID), Value: marshal(c), Kind: KindCustomer})
	}
	return evs
}

// Next returns the next event of the stream. Its timestamps read the clock;
// everything else depends only on the seed and the options.
func (g *Generator) Next() Event {
	g.stats.generated.Add(1)
	at := g.cfg.clock.Now().UTC().Format(timeLayout)
	if g.rng.Float64() < g.cfg.malformed {
		return g.malformed(at)
	}
	switch r := g.rng.Float64(); {
	case r < shareInventory:
		return g.inventory(at)
	case r < shareInventory+shareDuplicate && g.lastCapture != nil:
		ev := *g.lastCapture
		ev.Key, ev.Value, ev.Anomaly = bytes.Clone(ev.Key), bytes.Clone(ev.Value), AnomalyDuplicatePayment
		return ev
	case r < shareInventory+shareDuplicate+shareOrphan:
		return g.orphanPayment(at)
	case len(g.open) == 0 || r < shareInventory+shareDuplicate+shareOrphan+shareCreate && len(g.open) < maxOpenOrders:
		o := &openOrder{order: g.newOrder(at)}
		g.open = append(g.open, o)
		return g.orderEvent(o, KindOrderCreated, at)
	default:
		return g.advance(at)
	}
}

// newOrder draws a new order with its items and total, at time at.
func (g *Generator) newOrder(at string) Order {
	g.orders++
	c := g.customers[g.customer.Uint64()]
	bulk := g.rng.Float64() < 0.02
	var items []Item
	var cents int64
	for range pick(g.rng, itemCounts) {
		p := g.products[g.rng.IntN(len(g.products))]
		qty := pick(g.rng, quantities)
		if bulk {
			qty = 10 + g.rng.IntN(31)
		}
		items = append(items, Item{SKU: p.sku, Qty: qty, Price: float64(p.cents) / 100})
		cents += int64(qty) * p.cents
	}
	return Order{
		OrderID:    fmt.Sprintf("o-%06d", g.orders),
		CustomerID: c.CustomerID,
		Items:      items,
		Total:      float64(cents) / 100,
		Currency:   currencyOf(c.Country),
		Country:    c.Country,
		CreatedAt:  at,
	}
}

// advance moves a random open order one step along its life cycle.
func (g *Generator) advance(at string) Event {
	i := g.rng.IntN(len(g.open))
	o := g.open[i]
	done := func() {
		last := len(g.open) - 1
		g.open[i], g.open[last] = g.open[last], nil
		g.open = g.open[:last]
	}
	switch o.state {
	case stateCreated:
		r := g.rng.Float64()
		if r < 0.04 {
			done()
			return g.orderEvent(o, KindOrderCancelled, at)
		}
		g.payments++
		o.payment = Payment{
			PaymentID:  fmt.Sprintf("p-%06d", g.payments),
			OrderID:    o.order.OrderID,
			Amount:     o.order.Total,
			Currency:   o.order.Currency,
			Method:     pick(g.rng, methods),
			CustomerID: o.order.CustomerID,
		}
		if r < 0.10 {
			o.state = stateFailed
			return g.paymentEvent(&o.payment, KindPaymentFailed, at)
		}
		o.state = stateAuthorized
		return g.paymentEvent(&o.payment, KindPaymentAuthorized, at)
	case stateAuthorized:
		o.state = stateCaptured
		ev := g.paymentEvent(&o.payment, KindPaymentCaptured, at)
		g.lastCapture = &ev
		return ev
	case stateCaptured:
		o.state = statePaid
		return g.orderEvent(o, KindOrderPaid, at)
	case statePaid:
		done()
		return g.orderEvent(o, KindOrderShipped, at)
	default: // stateFailed
		done()
		return g.orderEvent(o, KindOrderCancelled, at)
	}
}

func (g *Generator) orderEvent(o *openOrder, kind, at string) Event {
	v := o.order
	v.Type, v.At = kind, at
	if kind != KindOrderCreated {
		v.Items = nil
	}
	return Event{Topic: g.cfg.topics.Orders, Key: []byte(v.OrderID), Value: marshal(v), Kind: kind}
}

func (g *Generator) paymentEvent(p *Payment, kind, at string) Event {
	p.Type, p.At = kind, at
	return Event{Topic: g.cfg.topics.Payments, Key: []byte(p.OrderID), Value: marshal(p), Kind: kind}
}

// orphanPayment is a capture for an order id of the form o-9xxxxxxx, which
// the order sequence reaches only after 90 million orders.
func (g *Generator) orphanPayment(at string) Event {
	g.payments++
	c := g.customers[g.customer.Uint64()]
	p := Payment{
		PaymentID:  fmt.Sprintf("p-%06d", g.payments),
		OrderID:    fmt.Sprintf("o-9%07d", g.rng.IntN(10_000_000)),
		Amount:     float64(1000+g.rng.IntN(50_000)) / 100,
		Currency:   currencyOf(c.Country),
		Method:     pick(g.rng, methods),
		CustomerID: c.CustomerID,
	}
	ev := g.paymentEvent(&p, KindPaymentCaptured, at)
	ev.Anomaly = AnomalyOrphanPayment
	return ev
}

func (g *Generator) inventory(at string) Event {
	v := InventoryAdjustment{
		Type:      KindInventoryAdjusted,
		SKU:       g.products[g.rng.IntN(len(g.products))].sku,
		Warehouse: warehouses[g.rng.IntN(len(warehouses))],
		At:        at,
	}
	switch r := g.rng.Float64(); {
	case r < 0.55:
		v.Delta, v.Reason = -(1 + g.rng.IntN(5)), "sale"
	case r < 0.65:
		v.Delta, v.Reason = -(1 + g.rng.IntN(3)), "shrinkage"
	case r < 0.75:
		v.Delta, v.Reason = 1+g.rng.IntN(2), "return"
	default:
		v.Delta, v.Reason = 10+g.rng.IntN(191), "restock"
	}
	return Event{Topic: g.cfg.topics.Inventory, Key: []byte(v.SKU), Value: marshal(v), Kind: KindInventoryAdjusted}
}

// malformed breaks a fresh order.created in one of four ways. The order
// never enters the life cycle: no payment or later event follows it.
func (g *Generator) malformed(at string) Event {
	o := g.newOrder(at)
	o.Type, o.At = KindOrderCreated, at
	kind := malformedKinds[g.rng.IntN(len(malformedKinds))]
	good := marshal(o)
	var v []byte
	switch kind {
	case KindMalformedJSON:
		v = good[:len(good)/2]
	case KindMalformedArray:
		v = append(append([]byte{'['}, good...), ']')
	default:
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			panic(fmt.Sprintf("devgen: decoding a generated order: %v", err))
		}
		if kind == KindMalformedType {
			m["total"] = "lots"
		} else {
			delete(m, "total")
		}
		v = marshal(m)
	}
	return Event{Topic: g.cfg.topics.Orders, Key: []byte(o.OrderID), Value: v, Kind: kind, Malformed: true}
}

// marshal encodes the generator's own value types, which cannot fail to
// encode; a failure is a bug in this package.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("devgen: encoding %T: %v", v, err))
	}
	return b
}
