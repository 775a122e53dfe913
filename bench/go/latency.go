// latency.go - the b_preempt latency workload in Go, for comparison: on one
// P (GOMAXPROCS=1), 100 ms requests run back to back while short ones
// (about 10 us of work) arrive every 2 ms on a fixed schedule; p50 and p99
// of the short ones from their scheduled arrival.  Go preempts goroutines
// that run longer than 10 ms (async preemption since Go 1.14).
//
//   go run bench/go/latency.go      (or: make bench-go)
package main

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

var sink float64

func burn(n int64) {
	x := 1.0
	for i := int64(0); i < n; i++ {
		x = x*1.0000001 + 1e-9
	}
	sink = x
}

func main() {
	runtime.GOMAXPROCS(1)
	t := time.Now()
	burn(100000000)
	perUs := int64(100000000) * 1000 / time.Since(t).Nanoseconds()

	var stop atomic.Bool
	go func() {
		for !stop.Load() {
			burn(100000 * perUs) // 100 ms, no call into the scheduler
			runtime.Gosched()    // between requests, as b_preempt's
		}
	}()
	const n = 1000
	lat := make([]time.Duration, 0, n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	t0 := time.Now().Add(10 * time.Millisecond)
	for k := 0; k < n; k++ {
		due := t0.Add(time.Duration(k) * 2 * time.Millisecond)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(due time.Time) {
			burn(10 * perUs)
			l := time.Since(due)
			mu.Lock()
			lat = append(lat, l)
			mu.Unlock()
			wg.Done()
		}(due)
	}
	wg.Wait()
	stop.Store(true)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50 := float64(lat[len(lat)/2].Nanoseconds()) / 1e3
	p99 := float64(lat[len(lat)*99/100].Nanoseconds()) / 1e3
	fmt.Printf("BenchmarkGoShortLatency/p50 \t%10d\t%12.2f us\n", len(lat), p50)
	fmt.Printf("BenchmarkGoShortLatency/p99 \t%10d\t%12.2f us\n", len(lat), p99)
	fmt.Printf("# Go (%s, GOMAXPROCS=1): short requests behind 100 ms ones: p50 %.0f us, p99 %.0f us\n",
		runtime.Version(), p50, p99)
}
