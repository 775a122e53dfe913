// sync.go - bench/b_sync.c's workloads in Go, for comparison: channels,
// sync.Mutex and the concurrent prime sieve, in the same Go benchmark format
// (one line per repetition) under the same names with a "Go" in front.
//
//	chan1   unbuffered chan round trip (ping on one chan, pong on another),
//	        GOMAXPROCS=1, ns per round trip
//	chan2   the same on GOMAXPROCS=2 (goroutines cannot be pinned: the
//	        runtime places them, mostly both on one P, so this is not
//	        b_sync chan2's cross-CPU round trip)
//	buf1    chan of capacity 128, 1 producer and 1 consumer, GOMAXPROCS=1,
//	        ns per element
//	buf2    the same with 4 producers and 4 consumers on GOMAXPROCS=2
//	mutex1  uncontended sync.Mutex Lock+Unlock in one goroutine,
//	        GOMAXPROCS=1, ns per pair
//	mutex2  8 goroutines incrementing one counter under a sync.Mutex,
//	        GOMAXPROCS=2: ns per increment and millions of increments per s
//	sieve1  the classic concurrent prime sieve (generator -> chain of
//	        filters on unbuffered chans) up to the first 10,000 primes,
//	        GOMAXPROCS=1, ms to the last one; at most 3 repetitions
//	sieve2  the same on GOMAXPROCS=2
//	chan, buf, mutex, sieve: both of a kind; 1cpu, 2cpu: every *1 / *2;
//	all: everything.  Several may be given separated by commas.
//
//	go run sync.go [--tsv] WHAT [N] [--vs B_SYNC_OUTPUT]
//
// N replaces the count of what runs (round trips, elements, pairs,
// increments, primes).  BENCH_REPS (default 5) and BENCH_SCALE as in the C
// benchmarks; --tsv (or BENCH_FORMAT=tsv) prints the peers' TSV lines (name
// "go", or "go_procs2" for GOMAXPROCS=2).  --vs FILE reads b_sync's output
// (Go format) and prints, for each benchmark measured in both, the ratio of
// the medians and the target where it has one.
//
// As latency.go: GO111MODULE=off go run sync.go 1cpu   (under taskset -c CPU
// for the GOMAXPROCS=1 ones; the GOMAXPROCS=2 ones need two cores).
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

var tsv bool

// What this run measured, for --vs.
type result struct {
	name, unit string
	median     float64
}

var measured []result

func reps() int {
	if s := os.Getenv("BENCH_REPS"); s != "" {
		if r, err := strconv.Atoi(s); err == nil && r >= 1 {
			if r > 64 {
				r = 64
			}
			return r
		}
	}
	return 5
}

// count is bench.h's bench_count: "1M", "100k", scaled by BENCH_SCALE.
func count(arg string, def int64) int64 {
	n := def
	if arg != "" {
		a, mul := arg, 1.0
		switch a[len(a)-1] {
		case 'k', 'K':
			mul, a = 1e3, a[:len(a)-1]
		case 'm', 'M':
			mul, a = 1e6, a[:len(a)-1]
		}
		if v, err := strconv.ParseFloat(a, 64); err == nil {
			n = int64(v * mul)
		}
	}
	if s := os.Getenv("BENCH_SCALE"); s != "" {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
			n = int64(float64(n) * f)
		}
	}
	if n < 2 {
		n = 2
	}
	return n &^ 1
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return 0.5 * (s[n/2-1] + s[n/2])
}

func minimum(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		if x < m {
			m = x
		}
	}
	return m
}

// report prints one line per repetition (Go format), or the peers' TSV
// .min/.median lines, as bench.h's report().
func report(goName, tsvName, metric string, iters int64, v []float64, unit string) {
	measured = append(measured, result{goName, unit, median(v)})
	if tsv {
		if unit == "ns/op" {
			unit = "ns"
		}
		fmt.Printf("%s\t%s.min\t%.3f\t%s\n", tsvName, metric, minimum(v), unit)
		fmt.Printf("%s\t%s.median\t%.3f\t%s\n", tsvName, metric, median(v), unit)
		return
	}
	for _, x := range v {
		fmt.Printf("Benchmark%s \t%10d\t%12.2f %s\n", goName, iters, x, unit)
	}
}

func note(format string, a ...interface{}) {
	fmt.Printf("# "+format+"\n", a...)
}

func procsName(procs int) string {
	if procs == 1 {
		return "go"
	}
	return fmt.Sprintf("go_procs%d", procs)
}

// ------------------------------------------------------- round trip

func benchChan(n int64, procs int) {
	runtime.GOMAXPROCS(procs)
	r := reps()
	s := make([]float64, r)
	for i := 0; i < r; i++ {
		ping, pong := make(chan int64), make(chan int64)
		done := make(chan struct{})
		go func() {
			for v := range ping {
				pong <- v
			}
			close(done)
		}()
		for j := int64(0); j < 1000; j++ {
			ping <- j
			<-pong
		}
		t0 := time.Now()
		for j := int64(0); j < n; j++ {
			ping <- j
			if <-pong != j {
				panic("chan: wrong value back")
			}
		}
		s[i] = float64(time.Since(t0).Nanoseconds()) / float64(n)
		close(ping)
		<-done
	}
	report(fmt.Sprintf("GoChanRoundTrip/%dcpu", procs), procsName(procs), "chan_roundtrip", n, s,
		"ns/op")
	where := ""
	if procs > 1 {
		// b_sync pins its two tasks to different CPUs; Go readies the
		// receiver on the sender's P (runnext), so the pair mostly shares one
		where = " (not pinned: the two goroutines mostly share one P)"
	}
	note("Go unbuffered chan round trip, GOMAXPROCS=%d: median %.1f ns%s", procs, median(s), where)
}

// --------------------------------------------------------- buffered

func benchBuf(n int64, procs, np, nc int) {
	runtime.GOMAXPROCS(procs)
	r := reps()
	s := make([]float64, r)
	per := n / int64(np)
	total := per * int64(np)
	for i := 0; i < r; i++ {
		ch := make(chan int64, 128)
		var prod, cons sync.WaitGroup
		sums := make([]int64, nc*8) // one cache line apart
		t0 := time.Now()
		prod.Add(np)
		cons.Add(nc)
		for p := 0; p < np; p++ {
			go func(p int) {
				for j := int64(0); j < per; j++ {
					ch <- int64(p)*per + j
				}
				prod.Done()
			}(p)
		}
		for c := 0; c < nc; c++ {
			go func(c int) {
				var sum int64
				for v := range ch {
					sum += v
				}
				sums[c*8] = sum
				cons.Done()
			}(c)
		}
		prod.Wait()
		close(ch)
		cons.Wait()
		s[i] = float64(time.Since(t0).Nanoseconds()) / float64(total)
		var sum int64
		for c := 0; c < nc; c++ {
			sum += sums[c*8]
		}
		if sum != total*(total-1)/2 {
			panic("buffered chan: elements lost")
		}
	}
	report(fmt.Sprintf("GoChanBuffered128/%dx%d-%dcpu", np, nc, procs), procsName(procs),
		fmt.Sprintf("chan_buffered128_%dx%d", np, nc), total, s, "ns/elem")
	note("Go chan of 128, %d producers x %d consumers, GOMAXPROCS=%d: median %.1f ns per element",
		np, nc, procs, median(s))
}

// ------------------------------------------------------------ mutex

func benchMutexUncontended(n int64) {
	runtime.GOMAXPROCS(1)
	r := reps()
	s := make([]float64, r)
	var mu sync.Mutex
	for i := 0; i < r; i++ {
		for j := 0; j < 1000; j++ {
			mu.Lock()
			mu.Unlock()
		}
		t0 := time.Now()
		for j := int64(0); j < n; j++ {
			mu.Lock()
			mu.Unlock()
		}
		s[i] = float64(time.Since(t0).Nanoseconds()) / float64(n)
	}
	report("GoMutexUncontended", "go", "mutex_uncontended", n, s, "ns/op")
	note("Go uncontended sync.Mutex Lock+Unlock: median %.2f ns", median(s))
}

func benchMutexContended(n int64, procs, g int) {
	runtime.GOMAXPROCS(procs)
	r := reps()
	ns := make([]float64, r)
	mops := make([]float64, r)
	per := n / int64(g)
	total := per * int64(g)
	for i := 0; i < r; i++ {
		var mu sync.Mutex
		var counter int64
		var wg sync.WaitGroup
		wg.Add(g)
		t0 := time.Now()
		for k := 0; k < g; k++ {
			go func() {
				for j := int64(0); j < per; j++ {
					mu.Lock()
					counter++
					mu.Unlock()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		d := time.Since(t0)
		if counter != total {
			panic("mutex: increments lost")
		}
		ns[i] = float64(d.Nanoseconds()) / float64(total)
		mops[i] = float64(total) / d.Seconds() / 1e6
	}
	name := fmt.Sprintf("GoMutex%d/%dcpu", g, procs)
	tput := fmt.Sprintf("GoMutex%dThroughput/%dcpu", g, procs)
	report(name, procsName(procs), fmt.Sprintf("mutex_contended_%d", g), total, ns, "ns/op")
	report(tput, procsName(procs), fmt.Sprintf("mutex_contended_%d_throughput", g), total, mops,
		"Mops/s")
	note("Go sync.Mutex, %d goroutines incrementing one counter, GOMAXPROCS=%d: median %.1f ns/op, %.2f M ops/s",
		g, procs, median(ns), median(mops))
}

// ------------------------------------------------------------ sieve

// nthPrime: the n-th prime by a plain sieve of Eratosthenes (untimed): the
// generator's bound, so that the chain drains and ends by itself, and the
// check of the answer.
func nthPrime(n int64) int64 {
	for lim := int64(64); ; lim *= 2 {
		comp := make([]bool, lim+1)
		k := int64(0)
		for i := int64(2); i <= lim; i++ {
			if comp[i] {
				continue
			}
			if k++; k == n {
				return i
			}
			for j := i * i; j <= lim; j += i {
				comp[j] = true
			}
		}
	}
}

// The classic (golang.org/doc/play/sieve.go), with a generator that stops
// at the n-th prime and filters that close their output when their input
// closes: the same channel operations up to the n-th prime, and nothing
// left behind.
func generate(ch chan<- int64, last int64) {
	for i := int64(2); i <= last; i++ {
		ch <- i
	}
	close(ch)
}

func filter(in <-chan int64, out chan<- int64, prime int64) {
	for i := range in {
		if i%prime != 0 {
			out <- i
		}
	}
	close(out)
}

func benchSieve(n int64, procs int) {
	runtime.GOMAXPROCS(procs)
	last := nthPrime(n)
	r := reps()
	if r > 3 {
		r = 3 // ~10 s each here
	}
	s := make([]float64, r)
	for i := 0; i < r; i++ {
		t0 := time.Now()
		ch := make(chan int64)
		go generate(ch, last)
		var p int64
		for k := int64(0); k < n; k++ {
			p = <-ch
			if k == n-1 {
				break
			}
			ch1 := make(chan int64)
			go filter(ch, ch1, p)
			ch = ch1
		}
		s[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
		if _, ok := <-ch; ok || p != last {
			panic(fmt.Sprintf("sieve: prime %d is %d, want %d", n, p, last))
		}
	}
	report(fmt.Sprintf("GoSieve%d/%dcpu", n, procs), procsName(procs),
		fmt.Sprintf("chan_sieve_%d", n), n, s, "ms")
	note("Go prime sieve, first %d primes, GOMAXPROCS=%d: median %.1f ms", n, procs, median(s))
}

// ----------------------------------------------- ratios to b_sync's

type target struct {
	what  string
	ratio float64
}

// What the issue asks, as Switchyard's advantage over Go (Go's time /
// Switchyard's, or Switchyard's throughput / Go's).
var targets = map[string]target{
	"Mutex8Throughput/2cpu": {"throughput >= Go's", 1},
	"Sieve10000/1cpu":       {">= 3x Go's speed", 3},
}

func compare(path string) {
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sync.go:", err)
		os.Exit(1)
	}
	defer f.Close()
	theirs := map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || !strings.HasPrefix(fs[0], "Benchmark") {
			continue
		}
		if v, err := strconv.ParseFloat(fs[2], 64); err == nil {
			k := strings.TrimPrefix(fs[0], "Benchmark")
			theirs[k] = append(theirs[k], v)
		}
	}
	for _, g := range measured {
		name := strings.TrimPrefix(g.name, "Go")
		sy, ok := theirs[name]
		if !ok {
			continue
		}
		a, b := median(sy), g.median
		adv := b / a // times: Go's / Switchyard's
		if strings.HasSuffix(g.unit, "/s") {
			adv = a / b
		}
		t := ""
		if tg, ok := targets[name]; ok {
			t = fmt.Sprintf("; target %s (%.2fx): %s", tg.what, tg.ratio,
				map[bool]string{true: "met", false: "NOT met"}[adv >= tg.ratio])
		}
		note("%s: Switchyard %.2f, Go %.2f %s (medians): Switchyard is %.2fx as fast%s", name, a, b,
			g.unit, adv, t)
	}
}

// -------------------------------------------------------------- main

func main() {
	var what, cnt, vs string
	args := os.Args[1:]
	tsv = os.Getenv("BENCH_FORMAT") == "tsv"
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--tsv":
			tsv = true
		case args[i] == "--vs" && i+1 < len(args):
			vs = args[i+1]
			i++
		case what == "":
			what = args[i]
		case cnt == "":
			cnt = args[i]
		}
	}
	if what == "" {
		fmt.Fprintln(os.Stderr, "usage: go run sync.go [--tsv] "+
			"chan1|chan2|buf1|buf2|mutex1|mutex2|sieve1|sieve2|chan|buf|mutex|sieve|1cpu|2cpu|all[,...] [N] [--vs FILE]")
		os.Exit(2)
	}
	groups := map[string][]string{
		"chan": {"chan1", "chan2"}, "buf": {"buf1", "buf2"}, "mutex": {"mutex1", "mutex2"},
		"sieve": {"sieve1", "sieve2"},
		"1cpu":  {"chan1", "buf1", "mutex1", "sieve1"},
		"2cpu":  {"chan2", "buf2", "mutex2", "sieve2"},
		"all":   {"chan1", "buf1", "mutex1", "sieve1", "chan2", "buf2", "mutex2", "sieve2"},
	}
	var list []string
	for _, w := range strings.Split(what, ",") {
		if g, ok := groups[w]; ok {
			list = append(list, g...)
		} else {
			list = append(list, w)
		}
	}
	if !tsv {
		note("%s on %s/%s, %d CPUs", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	}
	for _, w := range list {
		switch w {
		case "chan1":
			benchChan(count(cnt, 1000000), 1)
		case "chan2":
			benchChan(count(cnt, 200000), 2)
		case "buf1":
			benchBuf(count(cnt, 10000000), 1, 1, 1)
		case "buf2":
			benchBuf(count(cnt, 10000000), 2, 4, 4)
		case "mutex1":
			benchMutexUncontended(count(cnt, 20000000))
		case "mutex2":
			benchMutexContended(count(cnt, 10000000), 2, 8)
		case "sieve1":
			benchSieve(count(cnt, 10000), 1)
		case "sieve2":
			benchSieve(count(cnt, 10000), 2)
		default:
			fmt.Fprintln(os.Stderr, "sync.go: unknown benchmark", w)
			os.Exit(2)
		}
	}
	if vs != "" {
		compare(vs)
	}
}
