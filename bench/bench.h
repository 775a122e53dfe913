/* bench.h - helpers shared by Switchyard's benchmarks.
 *
 * Output: Go's benchmark format, one line per repetition, so benchstat can
 * compare runs:
 *     BenchmarkYield 	20000000	         5.21 ns/op
 * With BENCH_FORMAT=tsv (or --tsv) the same results print as the TSV lines
 * of ../shared/peers (name<TAB>metric<TAB>value<TAB>unit, with .min/.median
 * and .cold), so Switchyard lands in the peers' table.
 * BENCH_REPS (default 5) and BENCH_SCALE (default 1) as in the peers. */
#ifndef SY_BENCH_H
#define SY_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "switchyard.h"

static int bench_tsv;

/* The command line all benchmarks share: [--tsv] WHAT [N].  Sets the output
 * format (--tsv or BENCH_FORMAT=tsv); returns the index of WHAT, or prints
 * the usage and exits 2 when it is missing. */
static inline int bench_args(int argc, char **argv, const char *whats)
{
    int a = 1;
    const char *fmt = getenv("BENCH_FORMAT");
    bench_tsv = fmt && !strcmp(fmt, "tsv");
    if (a < argc && !strcmp(argv[a], "--tsv")) {
        bench_tsv = 1;
        a++;
    }
    if (a >= argc) {
        fprintf(stderr, "usage: %s [--tsv] %s\n", argv[0], whats);
        exit(2);
    }
    return a;
}

/* ---- checked runs (b_sync, b_hostlock): a call that returns what it must
 * not stops the benchmark with the line and the benchmark's name, and a
 * benchmark that does not end in 120 s is reported as a hang (arm with
 * bench_watchdog(), then alarm(120) around each one). */
static const char *bench_current = "?"; /* the benchmark running */

static inline void bench_fail(const char *what, long got, int line)
{
    fprintf(stderr, "%s %s: line %d: %s returned %ld (%s)\n", program_invocation_short_name,
            bench_current, line, what, got, got < 0 ? sy_strerror((int)got) : "unexpected");
    exit(1);
}

/* A call that must return `want` (CHECK: 0). */
#define EXPECT(call, want)                     \
    do {                                       \
        long r_ = (call);                      \
        if (__builtin_expect(r_ != (want), 0)) \
            bench_fail(#call, r_, __LINE__);   \
    } while (0)
#define CHECK(call) EXPECT(call, 0)

static inline void bench_on_alarm(int sig)
{
    (void)sig;
    static const char m1[] = ": ", m2[] = " did not finish in 120 s: a hang?\n";
    const char *prog = program_invocation_short_name;
    ssize_t r = write(2, prog, strlen(prog));
    r = write(2, m1, sizeof m1 - 1);
    r = write(2, bench_current, strlen(bench_current));
    r = write(2, m2, sizeof m2 - 1);
    (void)r;
    _exit(3);
}

static inline void bench_watchdog(void)
{
    struct sigaction sa = {.sa_handler = bench_on_alarm};
    sigaction(SIGALRM, &sa, NULL);
}

/* sy_run on ncpu CPUs (flags: sy_config's), which must return 0. */
static inline void bench_run(int ncpu, unsigned flags, sy_fn init, void *arg)
{
    sy_config c = {.ncpu = ncpu, .flags = flags};
    int st = sy_run(&c, init, arg);
    if (st != 0) {
        fprintf(stderr, "%s %s: sy_run: %d (%s)\n", program_invocation_short_name, bench_current,
                st, st < 0 ? sy_strerror(st) : "init's status");
        exit(1);
    }
}

/* In a task: spawn fn(arg), named after the benchmark, pinned to CPU
 * pin_cpu unless it is negative; its pid. */
static inline int bench_start(sy_fn fn, void *arg, int pin_cpu)
{
    sy_attr a = {.name = bench_current, .flags = pin_cpu >= 0 ? SY_ATTR_PIN : 0,
                 .cpu = pin_cpu >= 0 ? pin_cpu : 0};
    int pid = sy_spawn(fn, arg, &a);
    if (pid <= 0)
        bench_fail("sy_spawn", pid, __LINE__);
    return pid;
}

/* In a task: wait for child pid, which must exit with status 0. */
static inline void bench_reap(int pid)
{
    int st = -1;
    EXPECT(sy_wait(pid, &st, 0), pid);
    if (st != 0)
        bench_fail("a task's exit status", st, __LINE__);
}

/* In a task: spawn n children running fn(NULL), then reap every child. */
static inline void bench_spawn_wait(sy_fn fn, int n)
{
    for (int i = 0; i < n; i++)
        sy_spawn(fn, NULL, NULL);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int bench_reps(void)
{
    const char *s = getenv("BENCH_REPS");
    int r = s ? atoi(s) : 5;
    return r < 1 ? 1 : r > 64 ? 64 : r;
}

static inline long bench_count(const char *arg, long def)
{
    long n = def;
    if (arg && *arg) {
        char *end;
        double v = strtod(arg, &end);
        if (*end == 'k' || *end == 'K')
            v *= 1e3;
        if (*end == 'm' || *end == 'M')
            v *= 1e6;
        n = (long)v;
    }
    const char *s = getenv("BENCH_SCALE");
    if (s && atof(s) > 0)
        n = (long)((double)n * atof(s));
    return n < 2 ? 2 : n & ~1L;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double median(const double *v, int n)
{
    double s[64] = {0};
    memcpy(s, v, sizeof(double) * (size_t)n);
    qsort(s, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static inline double minimum(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

/* Report `n` repetitions of one measurement.
 *   go:   one "Benchmark<go_name> <iters> <value> <unit>" line per rep
 *   tsv:  <tsv_name> <metric>.min / .median (and .cold if cold) */
static inline void report(const char *go_name, const char *tsv_name, const char *metric,
                          long iters, const double *v, int n, const char *unit, int cold)
{
    if (bench_tsv) {
        if (!strcmp(unit, "ns/op"))
            unit = "ns"; /* the peers' unit for a switch */
        if (cold)
            printf("%s\t%s.cold\t%.3f\t%s\n", tsv_name, metric, v[0], unit);
        printf("%s\t%s.min\t%.3f\t%s\n", tsv_name, metric, minimum(v, n), unit);
        printf("%s\t%s.median\t%.3f\t%s\n", tsv_name, metric, median(v, n), unit);
    } else {
        for (int i = 0; i < n; i++)
            printf("Benchmark%s \t%10ld\t%12.2f %s\n", go_name, iters, v[i], unit);
    }
    fflush(stdout);
}

/* One value, no repetitions (memory). */
static inline void report1(const char *go_name, const char *tsv_name, const char *metric,
                           long iters, double v, const char *unit)
{
    if (bench_tsv)
        printf("%s\t%s\t%.3f\t%s\n", tsv_name, metric, v, unit);
    else
        printf("Benchmark%s \t%10ld\t%12.2f %s\n", go_name, iters, v, unit);
    fflush(stdout);
}

/* CPU-bound work that makes no call: n steps of a floating-point
 * recurrence, about 1 ns each here. */
static volatile double bench_sink;
static inline void bench_burn(long n)
{
    double x = 1;
    for (long i = 0; i < n; i++)
        x = x * 1.0000001 + 1e-9;
    bench_sink = x;
}

/* A comment line: "# ..." in both formats (benchstat and summarize.py skip it). */
#define note(...)                 \
    do {                          \
        printf("# " __VA_ARGS__); \
        printf("\n");             \
        fflush(stdout);           \
    } while (0)

static inline long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t fl = strlen(field);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

#endif
