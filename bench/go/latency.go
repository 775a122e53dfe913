// latency.go - the b_preempt latency workload in Go, for comparison: on one
// P (GOMAXPROCS=1), 100 ms requests run back to back while short ones
// (about 10 us of work) arrive every 2 ms on a fixed schedule; p50 and p99
// of the short ones from their scheduled arrival.  Go preempts goroutines
// that run longer than 10 ms (async preemption since Go 1.14).
//
//	cd bench/go && go run latency.go shortlat.go      (or: make bench-go)
package main

import (
	"fmt"
	"runtime"
)

func main() {
	runtime.GOMAXPROCS(1)
	perUs := burnPerUs()
	const n = 1000
	p50, p99 := shortLatency(n, perUs, func() {
		burn(100000 * perUs) // 100 ms, no call into the scheduler
	})
	fmt.Printf("BenchmarkGoShortLatency/p50 \t%10d\t%12.2f us\n", n, p50)
	fmt.Printf("BenchmarkGoShortLatency/p99 \t%10d\t%12.2f us\n", n, p99)
	fmt.Printf("# Go (%s, GOMAXPROCS=1): short requests behind 100 ms ones: p50 %.0f us, p99 %.0f us\n",
		runtime.Version(), p50, p99)
}
