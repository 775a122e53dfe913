/* latency.h - the short-request latency workload that b_preempt and
 * b_handoff share: on one CPU, long requests run back to back (each a call
 * of `lat_long`, then a yield, as a cooperative server would) while short
 * ones (about 10 us of work) arrive every 2 ms on a fixed schedule; the
 * latency of each short one from its scheduled arrival (so a late generator
 * counts).  bench/go/latency.go and bench/go/handoff.go are the same in Go. */
#ifndef SY_BENCH_LATENCY_H
#define SY_BENCH_LATENCY_H

#include "bench.h"

#define SHORT_PERIOD_NS 2000000ull /* a short request every 2 ms */
#define MAX_SHORT 4096

static void (*lat_long)(void); /* one long request */
static uint64_t spin_iters_per_us;
static uint64_t lat[MAX_SHORT];
static int nlat, nshort;
static volatile int lat_stop;

static int short_req(void *arg)
{
    uint64_t due = (uint64_t)(uintptr_t)arg;
    bench_burn((long)(10 * spin_iters_per_us)); /* about 10 us */
    if (nlat < MAX_SHORT)
        lat[nlat++] = now_ns() - due;
    return 0;
}

static int long_reqs(void *arg)
{
    (void)arg;
    while (!lat_stop) {
        lat_long();
        sy_yield(); /* between requests, as a cooperative server would */
    }
    return 0;
}

/* Spawns the short requests on a fixed schedule, and reaps them. */
static int generator(void *arg)
{
    (void)arg;
    uint64_t t0 = now_ns() + 10000000;
    for (int k = 0; k < nshort; k++) {
        uint64_t due = t0 + (uint64_t)k * SHORT_PERIOD_NS, now = now_ns();
        if (due > now)
            sy_nanosleep(due - now);
        sy_spawn(short_req, (void *)(uintptr_t)due, NULL);
        while (sy_wait(-1, NULL, SY_WNOHANG) > 0)
            ;
    }
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    lat_stop = 1;
    return 0;
}

static int init_latency(void *arg)
{
    (void)arg;
    sy_spawn(long_reqs, NULL, NULL);
    sy_spawn(generator, NULL, NULL);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Calibrate the spin loop of the short requests. */
static void latency_calibrate(void)
{
    uint64_t t0 = now_ns();
    bench_burn(100000000);
    spin_iters_per_us = 100000000ull * 1000 / (now_ns() - t0);
}

/* One run of `n` short requests under configuration `c`: p50 and p99, us. */
static void latency_run(const sy_config *c, int n, double *p50, double *p99)
{
    nshort = n > MAX_SHORT ? MAX_SHORT : n;
    nlat = 0;
    lat_stop = 0;
    if (sy_run(c, init_latency, NULL) != 0)
        exit(1);
    qsort(lat, (size_t)nlat, sizeof lat[0], cmp_u64);
    *p50 = (double)lat[nlat / 2] / 1e3;
    *p99 = (double)lat[nlat * 99 / 100] / 1e3;
}

#endif
