// Package devgen generates realistic e-commerce events for `veltrix dev` and
// for tests: orders and their life cycle, payments, inventory adjustments and
// a customers table, produced to Kafka with a franz-go client.
//
// The stream is deterministic for a seed (math/rand/v2, PCG): the same seed
// and options give the same keys and values, except for timestamps, which
// read the Clock (inject one with WithClock to pin them too).
//
// # Events
//
// The orders topic, keyed by order id. An order is created with its items,
// then moves along created → paid → shipped, or is cancelled (directly, or
// after a failed payment). Later events repeat the order without its items:
//
//	{"type":"order.created","order_id":"o-000001","customer_id":"c-0119","items":[{"sku":"sku-0021","qty":1,"price":22.99}],"total":22.99,"currency":"EUR","country":"FR","created_at":"2025-03-14T09:26:53.000Z","at":"2025-03-14T09:26:53.000Z"}
//	{"type":"order.paid","order_id":"o-000001","customer_id":"c-0119","total":22.99,"currency":"EUR","country":"FR","created_at":"2025-03-14T09:26:53.000Z","at":"2025-03-14T09:26:54.120Z"}
//	{"type":"order.shipped","order_id":"o-000001","customer_id":"c-0119","total":22.99,"currency":"EUR","country":"FR","created_at":"2025-03-14T09:26:53.000Z","at":"2025-03-14T09:26:57.480Z"}
//	{"type":"order.cancelled","order_id":"o-000023","customer_id":"c-0082","total":875.97,"currency":"EUR","country":"DE","created_at":"2025-03-14T09:26:53.100Z","at":"2025-03-14T09:26:55.005Z"}
//
// The payments topic, keyed by order id (so with equal partition counts a
// payment lands on its order's partition). A payment is authorized then
// captured, or fails:
//
//	{"type":"payment.authorized","payment_id":"p-000001","order_id":"o-000001","amount":22.99,"currency":"EUR","method":"card","customer_id":"c-0119","at":"2025-03-14T09:26:53.410Z"}
//	{"type":"payment.captured","payment_id":"p-000001","order_id":"o-000001","amount":22.99,"currency":"EUR","method":"card","customer_id":"c-0119","at":"2025-03-14T09:26:53.730Z"}
//	{"type":"payment.failed","payment_id":"p-000019","order_id":"o-000023","amount":875.97,"currency":"EUR","method":"paypal","customer_id":"c-0082","at":"2025-03-14T09:26:54.210Z"}
//
// The inventory topic, keyed by SKU:
//
//	{"type":"inventory.adjusted","sku":"sku-0303","delta":-2,"reason":"sale","warehouse":"lon-1","at":"2025-03-14T09:26:53.025Z"}
//
// The customers topic, keyed by customer id, written once before the stream
// (a table for joins; tiers are gold, silver or bronze):
//
//	{"customer_id":"c-0042","tier":"bronze","country":"GB"}
//
// # The mix
//
// About 15% of events are inventory adjustments and the rest follow orders.
// 5,000 customers (a few order often: Zipf) and 500 products, most under 60
// EUR with a tail up to 2,500; 2% of orders are bulk orders. The median order
// total is about 100; about 9% exceed 1,000 and under 1% exceed 5,000.
//
// Stateful rules have something to find: about 0.3% of events repeat a
// payment.captured with the same payment_id (Event.Anomaly
// "duplicate_payment"), and 0.2% capture a payment for an order that was
// never created, with an order id of the form o-9xxxxxxx ("orphan_payment").
//
// A share of records (WithMalformedRatio, default 1%) on the orders topic is
// malformed, so the dead-letter path shows: a truncated order (not JSON), an
// order wrapped in a JSON array, an order with "total":"lots", and an order
// without "total".
//
// # Use
//
//	g, err := devgen.New(devgen.WithRate(200))
//	...
//	go func() { errc <- g.Run(ctx, client) }()
//	for range ticker.C {
//		st := g.Stats() // live progress
//	}
package devgen
