/*
 * b_preempt - what preemption costs and what it buys.
 *
 *   b_preempt overhead   two CPU-bound tasks on one CPU: wall time with
 *                        preemption off (reference, same run) and with a
 *                        10 ms, 1 ms and 100 us quantum; ratio to off
 *   b_preempt latency    one CPU: 100 ms requests run back to back while
 *                        short ones (about 10 us of work) arrive every 2 ms
 *                        on a fixed schedule; p50 and p99 latency of the
 *                        short ones, from their scheduled arrival (so a late
 *                        generator counts), with preemption off, at 10 ms
 *                        (the default, as Go's), 1 ms and 100 us.
 *                        bench/go/latency.go is the same in Go.
 *   b_preempt fair       the peers' section f: two call-free spinners on
 *                        one CPU for 2 s, default quantum: CPU shares and
 *                        the mean slice
 *   b_preempt all
 *   --tsv as in b_core.
 */
#include "bench.h"
#include "latency.h"

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "switchyard.h"

static int reps;

/* ------------------------------------------------------------ overhead */

static long work_iters;

static int worker(void *arg)
{
    (void)arg;
    bench_burn(work_iters);
    return 0;
}

static int init_two_workers(void *arg)
{
    (void)arg;
    bench_spawn_wait(worker, 2);
    return 0;
}

static double run_workers_ms(unsigned quantum_us)
{
    sy_config c = {.ncpu = 1, .quantum_us = quantum_us, .flags = quantum_us ? 0 : SY_NO_PREEMPT};
    uint64_t t0 = now_ns();
    if (sy_run(&c, init_two_workers, NULL) != 0)
        exit(1);
    return (double)(now_ns() - t0) / 1e6;
}

/* The platform's share: the same work on a plain thread, with and without a
 * bare timer signal (empty handler) at the quantum's period, from the same
 * kind of timer the runtime arms (CLOCK_MONOTONIC below 4 ms, the thread's
 * CPU clock above).  What a signal costs depends on the host: in a VM a
 * signal delivery can cost 20 us, and no user-space runtime can preempt for
 * less than that.  The runtime's own share is the difference. */
static void empty_handler(int sig)
{
    (void)sig;
}

static double bare_ms(unsigned period_us)
{
    timer_t t;
    if (period_us) {
        struct sigaction sa = {.sa_handler = empty_handler, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR2, &sa, NULL);
        struct sigevent ev = {.sigev_notify = SIGEV_THREAD_ID, .sigev_signo = SIGUSR2};
        ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
        clockid_t clk = period_us < 4000 ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
        if (timer_create(clk, &ev, &t) != 0)
            exit(1);
        long ns = (long)period_us * 1000;
        struct itimerspec its = {{ns / 1000000000, ns % 1000000000},
                                 {ns / 1000000000, ns % 1000000000}};
        timer_settime(t, 0, &its, NULL);
    }
    uint64_t t0 = now_ns();
    worker(NULL);
    worker(NULL);
    double ms = (double)(now_ns() - t0) / 1e6;
    if (period_us)
        timer_delete(t);
    return ms;
}

static void bench_overhead(void)
{
    static const unsigned q[] = {10000, 1000, 100};
    static const char *go[] = {"PreemptOverhead/10ms", "PreemptOverhead/1ms",
                               "PreemptOverhead/100us"};
    static const char *tsv[] = {"switchyard_preempt_10ms", "switchyard_preempt_1ms",
                                "switchyard_preempt_100us"};
    double off[64] = {0}, on[3][64] = {{0}}, ratio[3][64] = {{0}};
    double plain[64] = {0}, bare_ratio[3][64] = {{0}};
    work_iters = 300000000; /* about 0.4 s per task */
    for (int r = 0; r < reps; r++) { /* interleaved, so noise hits all alike */
        off[r] = run_workers_ms(0);
        plain[r] = bare_ms(0);
        for (int k = 0; k < 3; k++) {
            on[k][r] = run_workers_ms(q[k]);
            ratio[k][r] = on[k][r] / off[r];
            bare_ratio[k][r] = bare_ms(q[k]) / plain[r];
        }
    }
    report("PreemptOverhead/off", "switchyard_preempt_off", "wall", 2, off, reps, "ms", 0);
    for (int k = 0; k < 3; k++) {
        report(go[k], tsv[k], "wall", 2, on[k], reps, "ms", 0);
        double ours = (median(ratio[k], reps) - 1) * 100;
        double bare = (median(bare_ratio[k], reps) - 1) * 100;
        note("CPU-bound work, quantum %u us: %.2f%% slower than without preemption (median "
             "of ratios)%s; a bare timer signal at that period costs a plain thread %.2f%%, "
             "so the runtime's own share is %.2f%%",
             q[k], ours, q[k] == 1000 ? " (target <= 1%)" : "", bare, ours - bare);
    }
}

/* ------------------------------------------------------------- latency */

#define LONG_NS 100000000ull /* long requests: 100 ms of work */

static void long_burn(void)
{
    bench_burn((long)(LONG_NS / 1000 * spin_iters_per_us)); /* 100 ms, no runtime call */
}

static void bench_latency(void)
{
    latency_calibrate();
    lat_long = long_burn;
    static const unsigned q[] = {0, 10000, 1000, 100};
    static const char *name[] = {"off", "10ms", "1ms", "100us"};
    for (int k = 0; k < 4; k++) {
        sy_config c = {.ncpu = 1, .quantum_us = q[k], .flags = q[k] ? 0 : SY_NO_PREEMPT};
        double p50, p99;
        latency_run(&c, 1000, &p50, &p99); /* 2 s of traffic */
        char go[64], tsv[64];
        snprintf(go, sizeof go, "ShortLatency/%s/p50", name[k]);
        snprintf(tsv, sizeof tsv, "switchyard_latency_%s", name[k]);
        report1(go, tsv, "p50", nlat, p50, "us");
        snprintf(go, sizeof go, "ShortLatency/%s/p99", name[k]);
        report1(go, tsv, "p99", nlat, p99, "us");
        note("short requests behind 100 ms ones, preemption %s: p50 %.0f us, p99 %.0f us (%d "
             "requests)", name[k], p50, p99, nlat);
    }
}

/* ---------------------------------------------------------------- fair */

/* The peers' section f: two call-free spinners on one CPU for 2 s at the
 * default quantum; each one's share of the iterations, and the mean slice
 * (every 64Ki iterations a spinner notes whether the other ran since). */
static volatile int fair_stop, fair_last = -1;
static unsigned long fair_iters[2], fair_slices[2];

static int fair_spinner(void *arg)
{
    int id = (int)(long)arg;
    unsigned long c = 0, sl = 0;
    for (;;) {
        c++;
        if ((c & 0xFFFF) == 0) {
            if (fair_stop)
                break;
            if (fair_last != id) {
                fair_last = id;
                sl++;
            }
        }
    }
    fair_iters[id] = c;
    fair_slices[id] = sl;
    return 0;
}

static long fair_secs = 2;

static int init_fair(void *arg)
{
    (void)arg;
    fair_stop = 0;
    sy_spawn(fair_spinner, (void *)0L, NULL);
    sy_spawn(fair_spinner, (void *)1L, NULL);
    sy_nanosleep((uint64_t)fair_secs * 1000000000ull); /* init needs the tick to get back */
    fair_stop = 1;
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    return 0;
}

static void bench_fair(void)
{
    sy_config c = {.ncpu = 1};
    if (sy_run(&c, init_fair, NULL) != 0)
        exit(1);
    double tot = (double)(fair_iters[0] + fair_iters[1]);
    double s0 = 100.0 * (double)fair_iters[0] / tot, s1 = 100.0 * (double)fair_iters[1] / tot;
    unsigned long sl = fair_slices[0] + fair_slices[1];
    double slice = sl ? 1000.0 * (double)fair_secs / (double)sl : 0;
    report1("Fair/task0", "switchyard", "fair_share_task0", 1, s0, "%");
    report1("Fair/task1", "switchyard", "fair_share_task1", 1, s1, "%");
    report1("Fair/meanslice", "switchyard", "fair_mean_slice", (long)sl, slice, "ms");
    note("two call-free spinners on one CPU for %ld s, default quantum: %.1f%% / %.1f%%, mean "
         "slice %.1f ms", fair_secs, s0, s1, slice);
}

int main(int argc, char **argv)
{
    int a = bench_args(argc, argv, "overhead|latency|fair|all");
    reps = bench_reps();
    int all = !strcmp(argv[a], "all"), known = all;
    if (all || !strcmp(argv[a], "overhead"))
        known = 1, bench_overhead();
    if (all || !strcmp(argv[a], "latency"))
        known = 1, bench_latency();
    if (all || !strcmp(argv[a], "fair"))
        known = 1, bench_fair();
    if (!known) {
        fprintf(stderr, "%s: unknown benchmark '%s'\n", argv[0], argv[a]);
        return 2;
    }
    return 0;
}
