/*
 * b_handoff - what the hand-off (src/handoff.c) buys: the latency of short
 * requests on one CPU behind long ones that spend their time inside a
 * shared library, where the tick cannot preempt them.
 *
 *   b_handoff latency   one CPU: long requests (one call of zlib's
 *                       compress2 of about 100 ms each, back to back; the
 *                       C library's qsort when libz.so.1 is missing) while
 *                       short ones (about 10 us of work) arrive every 2 ms
 *                       on a fixed schedule, as b_preempt's latency
 *                       workload; p50 and p99 latency of the short ones
 *                       from their scheduled arrival, with the hand-off off
 *                       (the reference, same run), on at its default bound
 *                       (twice the 10 ms quantum: 20 ms) and on at a 1 ms
 *                       quantum (bound 2 ms).  bench/go/handoff.go is the
 *                       same in Go, with compress2 as a cgo call.
 *   --tsv as in b_core.
 */
#include "bench.h"
#include "latency.h"

#include <dlfcn.h>

#include "switchyard.h"

#define LONG_MS 100 /* long requests: 100 ms in the library */

typedef int (*compress2_fn)(unsigned char *, unsigned long *, const unsigned char *,
                            unsigned long, int);
static compress2_fn zcompress2;
static size_t call_size;
static unsigned char *src, *dst;
static size_t cap;

static void long_call(void)
{
    if (zcompress2) {
        unsigned long dl = cap;
        if (zcompress2(dst, &dl, src, call_size, 6) != 0)
            exit(1);
        return;
    }
    memcpy(dst, src, call_size * 16);
    for (size_t i = 0; i < call_size; i++)
        dst[i * 16 + 15] = 0;
    qsort(dst, call_size, 16, (int (*)(const void *, const void *))strcmp);
}

/* Sizes the call to about LONG_MS here. */
static void calibrate(void)
{
    void *z = dlopen("libz.so.1", RTLD_NOW);
    if (z)
        zcompress2 = (compress2_fn)dlsym(z, "compress2");
    size_t unit = zcompress2 ? 1 : 16, max = (256u << 20) / unit;
    size_t n = (1u << 20) / unit;
    src = malloc(max * unit);
    cap = max * unit + max * unit / 100 + 1024;
    dst = malloc(cap);
    if (!src || !dst)
        exit(1);
    unsigned seed = 7;
    for (size_t i = 0; i < max * unit; i++) {
        seed = seed * 1103515245u + 12345u;
        src[i] = (unsigned char)('a' + (seed >> 16) % 12);
    }
    call_size = n;
    uint64_t t0 = now_ns();
    long_call();
    double f = (double)LONG_MS * 1e6 / (double)(now_ns() - t0);
    call_size = (size_t)((double)n * f);
    if (call_size > max)
        call_size = max;
}

static void bench_latency(void)
{
    latency_calibrate();
    calibrate();
    lat_long = long_call;
    int n = (int)bench_count(NULL, 1000); /* 2 s of traffic */
    int reps = bench_reps();
    static const char *name[] = {"off", "on", "on-q1ms"};
    static const unsigned quantum[] = {0, 0, 1000};
    static const double bound_ms[] = {0, 20, 2};
    note("long requests: %s of %zu %s, about %d ms each", zcompress2 ? "compress2" : "qsort",
         call_size, zcompress2 ? "bytes" : "strings", LONG_MS);
    for (int k = 0; k < 3; k++) {
        double p50[64], p99[64];
        for (int r = 0; r < reps; r++) {
            sy_config c = {.ncpu = 1, .quantum_us = quantum[k], .flags = k ? 0 : SY_NO_HANDOFF};
            latency_run(&c, n, &p50[r], &p99[r]);
        }
        char go[64], tsv[64];
        snprintf(go, sizeof go, "HandoffLatency/%s/p50", name[k]);
        snprintf(tsv, sizeof tsv, "switchyard_handoff_%s", name[k]);
        report(go, tsv, "p50", nlat, p50, reps, "us", 0);
        snprintf(go, sizeof go, "HandoffLatency/%s/p99", name[k]);
        report(go, tsv, "p99", nlat, p99, reps, "us", 0);
        double m50 = median(p50, reps), m99 = median(p99, reps);
        if (bound_ms[k] > 0)
            note("hand-off %s (bound %.0f ms): p50 %.0f us, p99 %.0f us = %.2fx the bound "
                 "(target <= 3x)",
                 name[k], bound_ms[k], m50, m99, m99 / 1e3 / bound_ms[k]);
        else
            note("hand-off off: p50 %.0f us, p99 %.0f us (short requests wait for the library "
                 "call)",
                 m50, m99);
    }
}

int main(int argc, char **argv)
{
    int a = bench_args(argc, argv, "latency|all");
    if (strcmp(argv[a], "latency") && strcmp(argv[a], "all")) {
        fprintf(stderr, "%s: unknown benchmark '%s'\n", argv[0], argv[a]);
        return 2;
    }
    bench_latency();
    return 0;
}
