// handoff.go - b_handoff's workload in Go, for comparison: on one P
// (GOMAXPROCS=1), long requests that are one cgo call of zlib's compress2
// (about 100 ms each, back to back) while short ones (about 10 us of work)
// arrive every 2 ms on a fixed schedule; p50 and p99 of the short ones from
// their scheduled arrival.  A goroutine in a cgo call keeps its M; sysmon
// retakes its P (after 20 us to 10 ms) and hands it to another M, which runs
// the short requests: Go's hand-off, which src/handoff.c follows.
//
//	cd bench/go && go run handoff.go shortlat.go   (or: make bench-go; needs zlib1g-dev)
package main

/*
#cgo LDFLAGS: -lz
#include <zlib.h>
#include <stdlib.h>

static int long_call(unsigned char *dst, unsigned long cap, const unsigned char *src,
                     unsigned long n)
{
    unsigned long dl = cap;
    return compress2(dst, &dl, src, n, 6);
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"
)

const maxSize = 256 << 20

var src, dst unsafe.Pointer
var dcap C.ulong

func longCall(n int) {
	if C.long_call((*C.uchar)(dst), dcap, (*C.uchar)(src), C.ulong(n)) != 0 {
		panic("compress2")
	}
}

func main() {
	runtime.GOMAXPROCS(1)
	perUs := burnPerUs()

	src = C.malloc(maxSize)
	dcap = C.ulong(maxSize + maxSize/100 + 1024)
	dst = C.malloc(C.size_t(dcap))
	s := unsafe.Slice((*byte)(src), maxSize)
	seed := uint32(7)
	for i := range s {
		seed = seed*1103515245 + 12345
		s[i] = byte('a' + (seed>>16)%12)
	}
	n := 1 << 20
	t := time.Now()
	longCall(n)
	n = int(float64(n) * 100e6 / float64(time.Since(t).Nanoseconds()))
	if n > maxSize {
		n = maxSize
	}

	const count = 1000
	p50, p99 := shortLatency(count, perUs, func() {
		longCall(n) // about 100 ms inside zlib
	})
	fmt.Printf("BenchmarkGoHandoffLatency/p50 \t%10d\t%12.2f us\n", count, p50)
	fmt.Printf("BenchmarkGoHandoffLatency/p99 \t%10d\t%12.2f us\n", count, p99)
	fmt.Printf("# Go (%s, GOMAXPROCS=1): short requests behind 100 ms cgo calls of compress2 (%d bytes): p50 %.0f us, p99 %.0f us\n",
		runtime.Version(), n, p50, p99)
}
