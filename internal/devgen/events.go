package devgen

// Event is one generated record: where it goes, its key and value, and what it
// is. Value is JSON (or deliberately broken JSON when Malformed is set).
type Event struct {
	Topic string
	Key   []byte
	Value []byte
	// Kind is the event's "type" field (KindOrderCreated, KindPaymentCaptured,
	// ...), KindCustomer for rows of the customers table, or one of the
	// KindMalformed... kinds.
	Kind string
	// Malformed is set on records a processor must reject (invalid JSON, a
	// JSON array, a total of the wrong type, a missing total).
	Malformed bool
	// Anomaly names a well-formed event that a stateful rule should flag:
	// AnomalyDuplicatePayment or AnomalyOrphanPayment; empty otherwise.
	Anomaly string
}

// Kinds of events. The well-formed ones are also the value of the "type" field.
const (
	KindOrderCreated   = "order.created"
	KindOrderPaid      = "order.paid"
	KindOrderShipped   = "order.shipped"
	KindOrderCancelled = "order.cancelled"

	KindPaymentAuthorized = "payment.authorized"
	KindPaymentCaptured   = "payment.captured"
	KindPaymentFailed     = "payment.failed"

	KindInventoryAdjusted = "inventory.adjusted"

	// KindCustomer marks a row of the customers table (it has no "type" field).
	KindCustomer = "customer"

	KindMalformedJSON    = "malformed.invalid_json"  // a truncated order: not JSON at all
	KindMalformedArray   = "malformed.array"         // an order wrapped in a JSON array
	KindMalformedType    = "malformed.wrong_type"    // an order with "total":"lots"
	KindMalformedMissing = "malformed.missing_field" // an order without "total"
)

// Anomalies carried by well-formed events.
const (
	// AnomalyDuplicatePayment is a payment.captured sent a second time with the
	// same payment_id, key and value.
	AnomalyDuplicatePayment = "duplicate_payment"
	// AnomalyOrphanPayment is a payment.captured for an order id that no
	// order.created ever carried (ids of the form o-9xxxxxxx).
	AnomalyOrphanPayment = "orphan_payment"
)

// Order is the value of every event on the orders topic, keyed by OrderID.
// order.created carries Items; the later order.paid, order.shipped and
// order.cancelled events repeat the order's header without them.
type Order struct {
	Type       string  `json:"type"`
	OrderID    string  `json:"order_id"`
	CustomerID string  `json:"customer_id"`
	Items      []Item  `json:"items,omitempty"`
	Total      float64 `json:"total"`
	Currency   string  `json:"currency"`
	Country    string  `json:"country"`
	CreatedAt  string  `json:"created_at"`
	At         string  `json:"at"`
}

// Item is one line of an order: Qty units of SKU at the unit Price.
type Item struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

// Payment is the value of every event on the payments topic. It is keyed by
// OrderID (not PaymentID) so that payments and orders of one order land on
// the same partition when both topics have the same partition count.
type Payment struct {
	Type       string  `json:"type"`
	PaymentID  string  `json:"payment_id"`
	OrderID    string  `json:"order_id"`
	Amount     float64 `json:"amount"`
	Currency   string  `json:"currency"`
	Method     string  `json:"method"`
	CustomerID string  `json:"customer_id"`
	At         string  `json:"at"`
}

// InventoryAdjustment is the value of events on the inventory topic, keyed by
// SKU. Delta is negative for stock leaving a warehouse (Reason "sale" or
// "shrinkage"), positive for stock coming in ("return" or "restock").
type InventoryAdjustment struct {
	Type      string `json:"type"`
	SKU       string `json:"sku"`
	Delta     int    `json:"delta"`
	Reason    string `json:"reason"`
	Warehouse string `json:"warehouse"`
	At        string `json:"at"`
}

// Customer is one row of the customers table, keyed by CustomerID.
type Customer struct {
	CustomerID string `json:"customer_id"`
	Tier       string `json:"tier"`
	Country    string `json:"country"`
}
