package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Runtime returns the process and Go runtime collectors an instance serves
// beside its own metrics (process_resident_memory_bytes,
// process_cpu_seconds_total, go_goroutines, go_memstats_*, ...): the
// dashboard's memory and CPU panels read them.
func Runtime() []prometheus.Collector {
	return []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
}
