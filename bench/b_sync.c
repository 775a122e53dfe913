/*
 * b_sync - benchmarks of the synchronization primitives and channels
 * (issue 9), each next to a reference measured in the same run where there
 * is one.
 *
 * The targets:
 *   - unbuffered channel round trip between two tasks on 1 CPU <= 40 ns
 *   - uncontended sy_mutex lock+unlock                          <= 5 ns
 *   - 8 tasks incrementing one counter under a sy_mutex on 2 CPUs:
 *     throughput >= Go's (sync.Mutex, 8 goroutines, GOMAXPROCS=2)
 *   - the concurrent prime sieve, first 10,000 primes: >= 3x Go's speed
 * Go's figures come from bench/go/sync.go, the same workloads in Go (make
 * bench-go); given this program's output with --vs FILE it prints each
 * ratio to Go and whether the target is met.
 *
 *   b_sync chan1 [N]   unbuffered channel round trip, 1 CPU: task A sends to
 *                      B on one channel, B sends it back on another; ns per
 *                      round trip (N round trips, default 1M).  Reference:
 *                      two tasks doing sy_yield, ns per two switches (what a
 *                      round trip cannot do without)
 *   b_sync chan2 [N]   the same on 2 CPUs, A pinned to CPU 0, B to CPU 1
 *                      (default 200k).  Reference: the same ping-pong with
 *                      sy_sleep / sy_wakeup, ns per two wakeups
 *   b_sync buf1 [N]    channel of capacity 128, one producer, one consumer,
 *                      1 CPU; ns per element (N elements, default 10M)
 *   b_sync buf2 [N]    4 producers x 4 consumers on 2 CPUs (task i pinned
 *                      to CPU i % 2), capacity 128; ns per element
 *                      (default 10M)
 *   b_sync mutex1 [N]  uncontended sy_mutex_lock + sy_mutex_unlock in one
 *                      task, 1 CPU; ns per pair (default 20M).  Reference:
 *                      the C library's pthread_mutex_lock + unlock on a
 *                      plain thread
 *   b_sync mutex2 [N]  8 tasks on 2 CPUs (task i pinned to CPU i % 2)
 *                      incrementing one counter under a sy_mutex: ns per
 *                      increment and millions of increments per second
 *                      (N increments in all, default 10M).  Reference: 8
 *                      plain pthreads (before sy_run, on the process's first
 *                      two cores) doing the same under the C library's
 *                      pthread_mutex
 *   b_sync sieve1 [N]  the concurrent prime sieve (Go's classic: a
 *                      generator, then a chain of filter tasks, one per
 *                      prime found, on unbuffered channels) up to the N-th
 *                      prime (default 10,000): ms to the last prime, 1 CPU;
 *                      at most 3 repetitions (Go takes ~10 s for one here)
 *   b_sync sieve2 [N]  the same on 2 CPUs, tasks placed by the scheduler
 *   b_sync chan|buf|mutex|sieve   both of a kind
 *   b_sync 1cpu | 2cpu | all      every *1 | every *2 | everything
 *   Several may be given separated by commas: b_sync buf1,sieve1
 *   --tsv as in b_core (rows named switchyard / switchyard_2cpu, metrics
 *   chan_* land in the peers' section d; mutex_* have no section there).
 *
 * Run the 1-CPU ones pinned to one core, the 2-CPU ones unpinned:
 *   taskset -c 1 build/bench/b_sync 1cpu && build/bench/b_sync 2cpu
 * A benchmark that does not finish within 120 s stops the program (exit 3):
 * a hang is reported, not waited for.  Every call's result is checked, and
 * so are the values: the echoed element, the sum of the elements, the
 * counter, the N-th prime.
 */
#include "bench.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include "switchyard.h"

static int reps;

/* ------------------------------------------------------------ checking */

static void target_note(const char *what, double v, const char *unit, double target, int le)
{
    int met = le ? v <= target : v >= target;
    note("%s: median %.2f %s; target %s %g %s: %s", what, v, unit, le ? "<=" : ">=", target, unit,
         met ? "met" : "NOT met");
}

/* The C library's own pthread_mutex_lock/unlock, as b_hostlock's MutexLibc:
 * the reference, without the runtime's wrappers. */
static int (*libc_lock)(pthread_mutex_t *);
static int (*libc_unlock)(pthread_mutex_t *);

static void find_libc_mutex(void)
{
    libc_lock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
    libc_unlock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_unlock");
    if (!libc_lock || !libc_unlock) {
        fprintf(stderr, "b_sync: no pthread_mutex_lock after the runtime's\n");
        exit(1);
    }
}

/* --------------------------------------- unbuffered round trip (chan1/2) */

static struct {
    sy_chan *ping, *pong;
    long n;
    uint64_t t0, t1;
} rt;

static int rt_echo(void *arg)
{
    (void)arg;
    long v;
    int r;
    while ((r = sy_chan_recv(rt.ping, &v)) == 0)
        CHECK(sy_chan_send(rt.pong, &v));
    if (r != -EPIPE)
        bench_fail("sy_chan_recv (echo)", r, __LINE__);
    return 0;
}

static int rt_pinger(void *arg)
{
    (void)arg;
    long v;
    for (long i = 0; i < 1000; i++) {
        CHECK(sy_chan_send(rt.ping, &i));
        CHECK(sy_chan_recv(rt.pong, &v));
    }
    rt.t0 = now_ns();
    for (long i = 0; i < rt.n; i++) {
        CHECK(sy_chan_send(rt.ping, &i));
        CHECK(sy_chan_recv(rt.pong, &v));
        if (__builtin_expect(v != i, 0))
            bench_fail("the round trip's element", v, __LINE__);
    }
    rt.t1 = now_ns();
    CHECK(sy_chan_close(rt.ping));
    return 0;
}

static int init_rt(void *arg)
{
    int two = (int)(long)arg;
    CHECK(sy_chan_create(&rt.ping, sizeof(long), 0));
    CHECK(sy_chan_create(&rt.pong, sizeof(long), 0));
    int e = bench_start(rt_echo, NULL, two ? 1 : -1), p = bench_start(rt_pinger, NULL, two ? 0 : -1);
    bench_reap(p);
    bench_reap(e);
    CHECK(sy_chan_destroy(rt.ping));
    CHECK(sy_chan_destroy(rt.pong));
    return 0;
}

/* Reference on 1 CPU: two tasks yielding to each other, n times each: n
 * round trips of two switches. */
static long yield_n;
static uint64_t yield_t0, yield_t1;

static int yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < 1000; i++)
        sy_yield();
    if (!yield_t0)
        yield_t0 = now_ns();
    for (long i = 0; i < yield_n; i++)
        sy_yield();
    yield_t1 = now_ns();
    return 0;
}

static int init_yield(void *arg)
{
    (void)arg;
    int a = bench_start(yielder, NULL, -1), b = bench_start(yielder, NULL, -1);
    bench_reap(a);
    bench_reap(b);
    return 0;
}

/* Reference on 2 CPUs: the same ping-pong, pinned the same way, with
 * sy_sleep / sy_wakeup on a turn (as b_smp's pingpong): two wakeups a
 * round trip. */
static struct {
    sy_spinlock lk;
    int turn;
    long n;
    uint64_t t0, t1;
} wk;

static int wk_player(void *arg)
{
    int me = (int)(long)arg;
    for (long i = 0; i < 1000 + wk.n; i++) {
        if (me == 0 && i == 1000)
            wk.t0 = now_ns();
        sy_spin_lock(&wk.lk);
        while (wk.turn != me)
            CHECK(sy_sleep(&wk, &wk.lk));
        wk.turn = !me;
        sy_wakeup(&wk);
        sy_spin_unlock(&wk.lk);
    }
    if (me == 0) { /* the last round trip ends when 1 hands back */
        sy_spin_lock(&wk.lk);
        while (wk.turn != 0)
            CHECK(sy_sleep(&wk, &wk.lk));
        sy_spin_unlock(&wk.lk);
        wk.t1 = now_ns();
    }
    return 0;
}

static int init_wakeup(void *arg)
{
    (void)arg;
    wk.turn = 0;
    int b = bench_start(wk_player, (void *)1L, 1), a = bench_start(wk_player, (void *)0L, 0);
    bench_reap(a);
    bench_reap(b);
    return 0;
}

static void bench_chan(long n, int ncpu)
{
    double v[64] = {0}, ref[64] = {0};
    for (int r = 0; r < reps; r++) { /* interleaved: same conditions */
        if (ncpu == 1) {
            yield_n = n;
            yield_t0 = 0;
            bench_run(1, 0, init_yield, NULL);
            ref[r] = (double)(yield_t1 - yield_t0) / (double)n;
        } else {
            memset(&wk, 0, sizeof wk);
            wk.n = n;
            bench_run(2, 0, init_wakeup, NULL);
            ref[r] = (double)(wk.t1 - wk.t0) / (double)n;
        }
        rt.n = n;
        bench_run(ncpu, 0, init_rt, (void *)(long)(ncpu == 2));
        v[r] = (double)(rt.t1 - rt.t0) / (double)n;
    }
    if (ncpu == 1) {
        report("YieldRoundTrip/1cpu", "switchyard", "chan_roundtrip_2yields", n, ref, reps,
               "ns/op", 0);
        report("ChanRoundTrip/1cpu", "switchyard", "chan_roundtrip", n, v, reps, "ns/op", 0);
        note("unbuffered round trip / two sy_yields = %.2f (median %.1f / %.1f ns)",
             median(v, reps) / median(ref, reps), median(v, reps), median(ref, reps));
        target_note("unbuffered channel round trip on 1 CPU", median(v, reps), "ns", 40, 1);
    } else {
        report("WakeupRoundTrip/2cpu", "switchyard_2cpu", "chan_roundtrip_2wakeups", n, ref,
               reps, "ns/op", 0);
        report("ChanRoundTrip/2cpu", "switchyard_2cpu", "chan_roundtrip", n, v, reps, "ns/op",
               0);
        note("unbuffered round trip across 2 CPUs / two sy_sleep+sy_wakeup handoffs = %.2f "
             "(median %.0f / %.0f ns)",
             median(v, reps) / median(ref, reps), median(v, reps), median(ref, reps));
    }
}

/* ------------------------------------------- buffered throughput (buf1/2) */

#define BUF_CAP 128

static struct {
    sy_chan *ch;
    long per;       /* elements per producer */
    int np, nc, ncpu;
    long sum[8][8]; /* per consumer, a cache line apart */
    long cnt[8][8];
    uint64_t t0, t1;
} bf;

static int bf_producer(void *arg)
{
    long base = (long)arg * bf.per;
    for (long j = 0; j < bf.per; j++) {
        long v = base + j;
        CHECK(sy_chan_send(bf.ch, &v));
    }
    return 0;
}

static int bf_consumer(void *arg)
{
    int c = (int)(long)arg;
    long v, sum = 0, cnt = 0;
    int r;
    while ((r = sy_chan_recv(bf.ch, &v)) == 0) {
        sum += v;
        cnt++;
    }
    if (r != -EPIPE)
        bench_fail("sy_chan_recv (consumer)", r, __LINE__);
    bf.sum[c][0] = sum;
    bf.cnt[c][0] = cnt;
    return 0;
}

static int init_buf(void *arg)
{
    (void)arg;
    int prod[8], cons[8];
    CHECK(sy_chan_create(&bf.ch, sizeof(long), BUF_CAP));
    bf.t0 = now_ns();
    for (int i = 0; i < bf.nc; i++)
        cons[i] = bench_start(bf_consumer, (void *)(long)i, bf.ncpu > 1 ? i % bf.ncpu : -1);
    for (int i = 0; i < bf.np; i++)
        prod[i] = bench_start(bf_producer, (void *)(long)i, bf.ncpu > 1 ? i % bf.ncpu : -1);
    for (int i = 0; i < bf.np; i++)
        bench_reap(prod[i]);
    CHECK(sy_chan_close(bf.ch));
    for (int i = 0; i < bf.nc; i++)
        bench_reap(cons[i]);
    bf.t1 = now_ns();
    CHECK(sy_chan_destroy(bf.ch));
    return 0;
}

static void bench_buf(long n, int ncpu, int np, int nc)
{
    double v[64] = {0};
    char go[64], metric[64];
    long total = n / np * np;
    for (int r = 0; r < reps; r++) {
        memset(&bf, 0, sizeof bf);
        bf.per = n / np;
        bf.np = np;
        bf.nc = nc;
        bf.ncpu = ncpu;
        bench_run(ncpu, 0, init_buf, NULL);
        long sum = 0, cnt = 0;
        for (int c = 0; c < nc; c++)
            sum += bf.sum[c][0], cnt += bf.cnt[c][0];
        if (cnt != total || sum != total * (total - 1) / 2) {
            fprintf(stderr, "b_sync %s: received %ld elements summing to %ld; sent %ld summing "
                    "to %ld\n", bench_current, cnt, sum, total, total * (total - 1) / 2);
            exit(1);
        }
        v[r] = (double)(bf.t1 - bf.t0) / (double)total;
    }
    snprintf(go, sizeof go, "ChanBuffered%d/%dx%d-%dcpu", BUF_CAP, np, nc, ncpu);
    snprintf(metric, sizeof metric, "chan_buffered%d_%dx%d", BUF_CAP, np, nc);
    report(go, ncpu == 1 ? "switchyard" : "switchyard_2cpu", metric, total, v, reps, "ns/elem",
           0);
    note("channel of %d, %d producer(s) x %d consumer(s) on %d CPU(s): median %.1f ns per "
         "element (%.1f M elements/s)", BUF_CAP, np, nc, ncpu, median(v, reps),
         1e3 / median(v, reps));
}

/* ------------------------------------------------ uncontended mutex (mutex1) */

static long mx_n;
static double mx_task_ns;

static int mx_uncontended(void *arg)
{
    (void)arg;
    static sy_mutex m = SY_MUTEX_INIT;
    for (long i = 0; i < 1000; i++) {
        CHECK(sy_mutex_lock(&m));
        CHECK(sy_mutex_unlock(&m));
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < mx_n; i++) {
        CHECK(sy_mutex_lock(&m));
        CHECK(sy_mutex_unlock(&m));
    }
    mx_task_ns = (double)(now_ns() - t0) / (double)mx_n;
    EXPECT(sy_mutex_owner(&m), 0);
    return 0;
}

static double pthread_uncontended_ns(long n)
{
    static pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
    for (long i = 0; i < 1000; i++) {
        libc_lock(&pm);
        libc_unlock(&pm);
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        CHECK(libc_lock(&pm));
        CHECK(libc_unlock(&pm));
    }
    return (double)(now_ns() - t0) / (double)n;
}

static void bench_mutex_uncontended(long n)
{
    double v[64] = {0}, ref[64] = {0};
    find_libc_mutex();
    mx_n = n;
    for (int r = 0; r < reps; r++) {
        ref[r] = pthread_uncontended_ns(n);
        bench_run(1, 0, mx_uncontended, NULL);
        v[r] = mx_task_ns;
    }
    report("PthreadMutexUncontended", "pthread", "mutex_uncontended", n, ref, reps, "ns/op", 0);
    report("MutexUncontended", "switchyard", "mutex_uncontended", n, v, reps, "ns/op", 0);
    note("uncontended sy_mutex lock+unlock / pthread_mutex on a plain thread = %.2f "
         "(median %.2f / %.2f ns)", median(v, reps) / median(ref, reps), median(v, reps),
         median(ref, reps));
    target_note("uncontended sy_mutex lock+unlock", median(v, reps), "ns", 5, 1);
}

/* ------------------------------------------------ contended mutex (mutex2) */

#define MX_TASKS 8

static struct {
    sy_mutex m;
    long counter;
    long per;
    pthread_mutex_t pm;
    cpu_set_t cores; /* the pthreads' two cores */
} mc;

static int mc_task(void *arg)
{
    (void)arg;
    for (long i = 0; i < mc.per; i++) {
        CHECK(sy_mutex_lock(&mc.m));
        mc.counter++;
        CHECK(sy_mutex_unlock(&mc.m));
    }
    return 0;
}

static uint64_t mc_elapsed;

static int init_mc(void *arg)
{
    (void)arg;
    int pids[MX_TASKS];
    CHECK(sy_mutex_init(&mc.m));
    uint64_t t0 = now_ns();
    for (int i = 0; i < MX_TASKS; i++)
        pids[i] = bench_start(mc_task, NULL, i % 2);
    for (int i = 0; i < MX_TASKS; i++)
        bench_reap(pids[i]);
    mc_elapsed = now_ns() - t0;
    CHECK(sy_mutex_destroy(&mc.m));
    return 0;
}

static void *mc_thread(void *arg)
{
    (void)arg;
    pthread_setaffinity_np(pthread_self(), sizeof mc.cores, &mc.cores);
    for (long i = 0; i < mc.per; i++) {
        CHECK(libc_lock(&mc.pm));
        mc.counter++;
        CHECK(libc_unlock(&mc.pm));
    }
    return NULL;
}

static uint64_t pthread_contended(void)
{
    pthread_t t[MX_TASKS];
    pthread_mutex_init(&mc.pm, NULL);
    uint64_t t0 = now_ns();
    for (int i = 0; i < MX_TASKS; i++)
        if (pthread_create(&t[i], NULL, mc_thread, NULL)) {
            perror("pthread_create");
            exit(1);
        }
    for (int i = 0; i < MX_TASKS; i++)
        pthread_join(t[i], NULL);
    uint64_t d = now_ns() - t0;
    pthread_mutex_destroy(&mc.pm);
    return d;
}

static void bench_mutex_contended(long n)
{
    double v[64] = {0}, vt[64] = {0}, ref[64] = {0}, reft[64] = {0};
    char go[64];
    find_libc_mutex();
    long per = n / MX_TASKS, total = per * MX_TASKS;
    /* the pthreads get the first two cores the process may use, as many as
     * Switchyard's two CPUs */
    cpu_set_t all;
    CPU_ZERO(&mc.cores);
    if (sched_getaffinity(0, sizeof all, &all) == 0)
        for (int c = 0, k = 0; c < CPU_SETSIZE && k < 2; c++)
            if (CPU_ISSET(c, &all))
                CPU_SET(c, &mc.cores), k++;
    if (CPU_COUNT(&mc.cores) < 2)
        note("fewer than two cores to run on: the 2-CPU figures share one");
    for (int r = 0; r < reps; r++) {
        mc.per = per;
        mc.counter = 0;
        uint64_t d = pthread_contended();
        if (mc.counter != total)
            bench_fail("the pthreads' counter", mc.counter, __LINE__);
        ref[r] = (double)d / (double)total;
        reft[r] = (double)total / ((double)d / 1e9) / 1e6;
        mc.counter = 0;
        bench_run(2, 0, init_mc, NULL);
        if (mc.counter != total)
            bench_fail("the tasks' counter", mc.counter, __LINE__);
        v[r] = (double)mc_elapsed / (double)total;
        vt[r] = (double)total / ((double)mc_elapsed / 1e9) / 1e6;
    }
    snprintf(go, sizeof go, "PthreadMutex%d/2cores", MX_TASKS);
    report(go, "pthread_2cores", "mutex_contended_8", total, ref, reps, "ns/op", 0);
    snprintf(go, sizeof go, "PthreadMutex%dThroughput/2cores", MX_TASKS);
    report(go, "pthread_2cores", "mutex_contended_8_throughput", total, reft, reps, "Mops/s", 0);
    snprintf(go, sizeof go, "Mutex%d/2cpu", MX_TASKS);
    report(go, "switchyard_2cpu", "mutex_contended_8", total, v, reps, "ns/op", 0);
    snprintf(go, sizeof go, "Mutex%dThroughput/2cpu", MX_TASKS);
    report(go, "switchyard_2cpu", "mutex_contended_8_throughput", total, vt, reps, "Mops/s", 0);
    note("%d tasks on 2 CPUs incrementing one counter under a sy_mutex: median %.1f ns/op, "
         "%.2f M ops/s; %d pthreads under pthread_mutex on 2 cores: %.1f ns/op, %.2f M ops/s; "
         "Switchyard / pthreads throughput = %.2f", MX_TASKS, median(v, reps), median(vt, reps),
         MX_TASKS, median(ref, reps), median(reft, reps), median(vt, reps) / median(reft, reps));
    note("target: throughput >= Go's (bench/go/sync.go mutex2; its --vs prints the ratio)");
}

/* ------------------------------------------------------ prime sieve */

static struct {
    long n, last;   /* primes wanted, the n-th of them */
    sy_chan **chans; /* every channel of the chain, for destroying */
    long nchans;
    uint64_t t0, t1;
} sv;

struct filter {
    sy_chan *in, *out;
    long prime;
};

static int sv_generate(void *arg)
{
    sy_chan *ch = arg;
    for (long i = 2; i <= sv.last; i++)
        CHECK(sy_chan_send(ch, &i));
    CHECK(sy_chan_close(ch));
    return 0;
}

static int sv_filter(void *arg)
{
    struct filter *f = arg;
    long v;
    int r;
    while ((r = sy_chan_recv(f->in, &v)) == 0)
        if (v % f->prime != 0)
            CHECK(sy_chan_send(f->out, &v));
    if (r != -EPIPE)
        bench_fail("sy_chan_recv (filter)", r, __LINE__);
    CHECK(sy_chan_close(f->out));
    return 0;
}

/* The classic (golang.org/doc/play/sieve.go) with a generator that stops
 * at the n-th prime and filters that close their output when their input
 * is closed: the same channel operations up to the n-th prime, and the
 * chain then drains and ends by itself.  The time is to the n-th prime, as
 * Go's; tearing down is not timed. */
static int init_sieve(void *arg)
{
    (void)arg;
    struct filter *fs = malloc(sizeof *fs * (size_t)sv.n);
    if (!fs)
        exit(1);
    sv.nchans = 0;
    sv.t0 = now_ns();
    sy_chan *ch;
    CHECK(sy_chan_create(&ch, sizeof(long), 0));
    sv.chans[sv.nchans++] = ch;
    bench_start(sv_generate, ch, -1);
    long p = 0;
    for (long k = 0; k < sv.n; k++) {
        CHECK(sy_chan_recv(ch, &p));
        if (k == sv.n - 1)
            break;
        sy_chan *ch1;
        CHECK(sy_chan_create(&ch1, sizeof(long), 0));
        sv.chans[sv.nchans++] = ch1;
        fs[k] = (struct filter){ch, ch1, p};
        bench_start(sv_filter, &fs[k], -1);
        ch = ch1;
    }
    sv.t1 = now_ns();
    if (p != sv.last)
        bench_fail("the sieve's last prime", p, __LINE__);
    long v;
    EXPECT(sy_chan_recv(ch, &v), -EPIPE); /* the chain drains and closes */
    int st, pid;
    while ((pid = sy_wait(-1, &st, 0)) > 0)
        if (st != 0)
            bench_fail("a sieve task's exit status", st, __LINE__);
    if (pid != -ECHILD)
        bench_fail("sy_wait", pid, __LINE__);
    for (long i = 0; i < sv.nchans; i++)
        CHECK(sy_chan_destroy(sv.chans[i]));
    free(fs);
    return 0;
}

static long nth_prime(long n)
{
    for (long lim = 64;; lim *= 2) {
        char *comp = calloc((size_t)lim + 1, 1);
        long k = 0;
        if (!comp)
            exit(1);
        for (long i = 2; i <= lim; i++) {
            if (comp[i])
                continue;
            if (++k == n) {
                free(comp);
                return i;
            }
            for (long j = i * i; j <= lim; j += i)
                comp[j] = 1;
        }
        free(comp);
    }
}

static void bench_sieve(long n, int ncpu)
{
    double v[64] = {0};
    char go[64], metric[64];
    int r3 = reps < 3 ? reps : 3;
    sv.n = n;
    sv.last = nth_prime(n);
    sv.chans = malloc(sizeof *sv.chans * (size_t)n);
    if (!sv.chans)
        exit(1);
    for (int r = 0; r < r3; r++) {
        bench_run(ncpu, 0, init_sieve, NULL);
        v[r] = (double)(sv.t1 - sv.t0) / 1e6;
    }
    free(sv.chans);
    snprintf(go, sizeof go, "Sieve%ld/%dcpu", n, ncpu);
    snprintf(metric, sizeof metric, "chan_sieve_%ld", n);
    report(go, ncpu == 1 ? "switchyard" : "switchyard_2cpu", metric, n, v, r3, "ms", 0);
    note("prime sieve, first %ld primes (the last %ld) on %d CPU(s): median %.1f ms%s", n,
         sv.last, ncpu, median(v, r3),
         ncpu == 1 ? "; target >= 3x Go's speed (bench/go/sync.go sieve1; --vs prints it)" : "");
}

/* -------------------------------------------------------------- main */

static const struct {
    const char *name;
    long def;
} benches[] = {
    {"chan1", 1000000}, {"chan2", 200000},  {"buf1", 10000000}, {"buf2", 10000000},
    {"mutex1", 20000000}, {"mutex2", 10000000}, {"sieve1", 10000}, {"sieve2", 10000},
};
#define NBENCH (int)(sizeof benches / sizeof benches[0])

static const struct {
    const char *name;
    const char *members;
} groups[] = {
    {"chan", "chan1,chan2"},
    {"buf", "buf1,buf2"},
    {"mutex", "mutex1,mutex2"},
    {"sieve", "sieve1,sieve2"},
    {"1cpu", "chan1,buf1,mutex1,sieve1"},
    {"2cpu", "chan2,buf2,mutex2,sieve2"},
    {"all", "chan1,buf1,mutex1,sieve1,chan2,buf2,mutex2,sieve2"},
};

static void run_one(int b, const char *cnt)
{
    long n = bench_count(cnt, benches[b].def);
    bench_current = benches[b].name;
    alarm(120);
    switch (b) {
    case 0: bench_chan(n, 1); break;
    case 1: bench_chan(n, 2); break;
    case 2: bench_buf(n, 1, 1, 1); break;
    case 3: bench_buf(n, 2, 4, 4); break;
    case 4: bench_mutex_uncontended(n); break;
    case 5: bench_mutex_contended(n); break;
    case 6: bench_sieve(n, 1); break;
    case 7: bench_sieve(n, 2); break;
    }
    alarm(0);
}

int main(int argc, char **argv)
{
    static const char usage[] = "chan1|chan2|buf1|buf2|mutex1|mutex2|sieve1|sieve2|"
                                "chan|buf|mutex|sieve|1cpu|2cpu|all[,...] [N]";
    int a = bench_args(argc, argv, usage);
    reps = bench_reps();
    const char *cnt = a + 1 < argc ? argv[a + 1] : NULL;
    bench_watchdog();

    /* expand groups, then check every name before running anything */
    char list[512] = "", *save = NULL;
    char *arg = strdup(argv[a]);
    for (char *w = strtok_r(arg, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        const char *add = w;
        for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
            if (!strcmp(w, groups[g].name))
                add = groups[g].members;
        if (strlen(list) + strlen(add) + 2 > sizeof list)
            break;
        if (*list)
            strcat(list, ",");
        strcat(list, add);
    }
    free(arg);
    int todo[64], ntodo = 0;
    save = NULL;
    for (char *w = strtok_r(list, ",", &save); w && ntodo < 64; w = strtok_r(NULL, ",", &save)) {
        int b = 0;
        while (b < NBENCH && strcmp(w, benches[b].name))
            b++;
        if (b == NBENCH) {
            fprintf(stderr, "%s: unknown benchmark '%s'\nusage: %s [--tsv] %s\n", argv[0], w,
                    argv[0], usage);
            return 2;
        }
        todo[ntodo++] = b;
    }
    for (int i = 0; i < ntodo; i++)
        run_one(todo[i], cnt);
    return 0;
}
