package devgen_test

import (
	"fmt"
	"time"

	"github.com/veltrix/veltrix/internal/devgen"
)

// stoppedClock always reads the same time, which pins the timestamps.
type stoppedClock struct{ t time.Time }

func (c stoppedClock) Now() time.Time                       { return c.t }
func (c stoppedClock) After(time.Duration) <-chan time.Time { return nil }

func ExampleGenerator_Next() {
	g, err := devgen.New(devgen.WithSeed(1), devgen.WithClock(stoppedClock{time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)}))
	if err != nil {
		panic(err)
	}
	for range 3 {
		ev := g.Next()
		fmt.Printf("%s %s %s\n", ev.Topic, ev.Key, ev.Value)
	}
	// Output:
	// orders o-000001 {"type":"order.created","order_id":"o-000001","customer_id":"c-0119","items":[{"sku":"sku-0021","qty":1,"price":22.99}],"total":22.99,"currency":"EUR","country":"FR","created_at":"2025-03-14T09:26:53.000Z","at":"2025-03-14T09:26:53.000Z"}
	// payments o-000001 {"type":"payment.authorized","payment_id":"p-000001","order_id":"o-000001","amount":22.99,"currency":"EUR","method":"card","customer_id":"c-0119","at":"2025-03-14T09:26:53.000Z"}
	// payments o-000001 {"type":"payment.captured","payment_id":"p-000001","order_id":"o-000001","amount":22.99,"currency":"EUR","method":"card","customer_id":"c-0119","at":"2025-03-14T09:26:53.000Z"}
}
