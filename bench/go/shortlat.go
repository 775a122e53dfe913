// shortlat.go - the short-request latency workload that latency.go and
// handoff.go share (bench/latency.h in C): on one P, long requests run back
// to back (longReq, then a Gosched, as a cooperative server would) while
// short ones (about 10 us of work) arrive every 2 ms on a fixed schedule;
// p50 and p99 of the short ones from their scheduled arrival.  Run with the
// file that has main: go run latency.go shortlat.go.
package main

import (
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

// burnPerUs calibrates burn: iterations per microsecond.
func burnPerUs() int64 {
	t := time.Now()
	burn(100000000)
	return int64(100000000) * 1000 / time.Since(t).Nanoseconds()
}

// shortLatency runs n short requests behind longReq; p50 and p99 in us.
func shortLatency(n int, perUs int64, longReq func()) (p50, p99 float64) {
	var stop atomic.Bool
	go func() {
		for !stop.Load() {
			longReq()
			runtime.Gosched() // between requests
		}
	}()
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
	p50 = float64(lat[len(lat)/2].Nanoseconds()) / 1e3
	p99 = float64(lat[len(lat)*99/100].Nanoseconds()) / 1e3
	return
}
