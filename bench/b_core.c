/*
 * b_core - benchmarks of the one-CPU core, each against a reference measured
 * in the same run.
 *
 *   b_core switch [N]   raw one-way switch (sy__arch_switch) vs the floor
 *   b_core yield [N]    sy_yield between two tasks, one way through the
 *                       scheduler, vs the floor
 *   b_core spawn [N]    spawn N empty tasks, then wait for all; per task
 *   b_core mem [N]      N tasks asleep at once: RSS and address space per
 *                       task, and memory mappings per 1000 tasks
 *   b_core all          all of the above with the default counts
 *   --tsv (or BENCH_FORMAT=tsv) prints the peers' TSV instead of Go's format.
 *
 * Pin it to one core for steady numbers: taskset -c 1 build/bench/b_core all
 */
#include "bench.h"

#include <errno.h>
#include <unistd.h>

#include "internal.h"
#include "switchyard.h"

void floor_switch(void **save_sp, void *load_sp);
void floor_fp_switch(void **save_sp, void *load_sp);

static int reps;

/* ------------------------------------------------------------- the floors */

/* A floor peer's first frame (bench/arch/<isa>/floor.S): slots of 8 bytes,
 * the resume address, and the FP control state floor_fp_switch loads. */
#if defined(__x86_64__)
#define FLOOR_SLOTS 8  /* r12 r13 r14 r15 rbx rbp mxcsr:fcw resume */
#define FLOOR_RESUME 7
#define FLOOR_FPCTL 6
#define FLOOR_CALLED 1 /* as if called: sp % 16 == 8 on entry */
#else
#define FLOOR_SLOTS 22 /* x19..x30, d8..d15, fpcr, pad */
#define FLOOR_RESUME 11
#define FLOOR_FPCTL 20
#define FLOOR_CALLED 0
#endif

static void *floor_main_sp, *floor_peer_sp;
static void (*floor_fn)(void **save_sp, void *load_sp);

static void floor_peer(void)
{
    for (;;)
        floor_fn(&floor_peer_sp, floor_main_sp);
}

static double floor_ns_per_switch(void (*fn)(void **, void *), long n)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    struct arch_ctx fp;
    arch_fpctl_read(&fp);
    uint64_t *sp = (uint64_t *)(stack + sizeof stack) - FLOOR_CALLED - FLOOR_SLOTS;
    memset(sp, 0, FLOOR_SLOTS * sizeof *sp);
    sp[FLOOR_RESUME] = (uint64_t)(uintptr_t)floor_peer;
#if defined(__x86_64__)
    sp[FLOOR_FPCTL] = fp.mxcsr | (uint64_t)fp.fcw << 32;
#else
    sp[FLOOR_FPCTL] = fp.fpcr;
#endif
    floor_fn = fn;
    floor_peer_sp = sp;
    for (int i = 0; i < 1000; i++)
        fn(&floor_main_sp, floor_peer_sp);
    uint64_t t0 = now_ns();
    for (long i = 0; i < n / 2; i++)
        fn(&floor_main_sp, floor_peer_sp);
    return (double)(now_ns() - t0) / (double)n;
}

/* ------------------------------------------------------------ raw switch */

static struct arch_ctx main_ctx, peer_ctx;

/* Both sides switch through this one call site, as every task does through
 * context_switch() in the runtime: the switch resumes with a `ret` to the
 * return address of this call (see switch.S).  The extra call and return
 * count against us. */
static __attribute__((noinline)) void raw_switch(struct arch_ctx *from, struct arch_ctx *to)
{
    sy__arch_switch(from, to, NULL);
    __asm__ volatile("" ::: "memory");
}

/* ...and both run this same loop, as two yielding tasks run the same code. */
static __attribute__((noinline)) void raw_loop(struct arch_ctx *self, struct arch_ctx *other,
                                               long n)
{
    for (long i = 0; i < n; i++)
        raw_switch(self, other);
}

static void raw_peer(void)
{
    for (;;)
        raw_loop(&peer_ctx, &main_ctx, 1L << 62);
}

static double raw_ns_per_switch(long n)
{
    static char stack[64 * 1024] __attribute__((aligned(16)));
    struct arch_ctx fp;
    arch_fpctl_read(&fp);
    arch_ctx_init(&peer_ctx, stack + sizeof stack, &fp);
    peer_ctx.pc = (uint64_t)(uintptr_t)raw_peer;
#if defined(__x86_64__)
    peer_ctx.sp -= 8;
#endif
    raw_loop(&main_ctx, &peer_ctx, 1000);
    uint64_t t0 = now_ns();
    raw_loop(&main_ctx, &peer_ctx, n / 2);
    return (double)(now_ns() - t0) / (double)n;
}

static void bench_switch(long n)
{
    double f[64], ffp[64], r[64];
    for (int i = 0; i < reps; i++) { /* interleaved: same conditions */
        f[i] = floor_ns_per_switch(floor_switch, n);
        ffp[i] = floor_ns_per_switch(floor_fp_switch, n);
        r[i] = raw_ns_per_switch(n);
    }
    report("Floor", "switchyard_floor", "switch", n, f, reps, "ns/op", 0);
    report("FloorFP", "switchyard_floor_fp", "switch", n, ffp, reps, "ns/op", 0);
    report("RawSwitch", "switchyard_raw", "switch", n, r, reps, "ns/op", 0);
    note("raw switch / floor with FP control state = %.3f (median %.2f / %.2f ns); target <= 1.10",
         median(r, reps) / median(ffp, reps), median(r, reps), median(ffp, reps));
    note("raw switch / floor without it = %.3f (%.2f ns)", median(r, reps) / median(f, reps),
         median(f, reps));
}

/* ----------------------------------------------------------------- yield */

static long yield_n;
static uint64_t yield_t0, yield_t1;

static int yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < 1000; i++)
        sy_yield();
    if (!yield_t0)
        yield_t0 = now_ns();
    for (long i = 0; i < yield_n / 2; i++)
        sy_yield();
    yield_t1 = now_ns();
    return 0;
}

static int init_yield(void *arg)
{
    (void)arg;
    bench_spawn_wait(yielder, 2);
    return 0;
}

static void bench_yield(long n)
{
    double f[64], y[64];
    for (int i = 0; i < reps; i++) {
        f[i] = floor_ns_per_switch(floor_fp_switch, n);
        yield_n = n;
        yield_t0 = 0;
        sy_run(NULL, init_yield, NULL);
        y[i] = (double)(yield_t1 - yield_t0) / (double)n;
    }
    report("Yield", "switchyard_yield", "switch", n, y, reps, "ns/op", 0);
    note("sy_yield / floor with FP control state = %.3f (median %.2f / %.2f ns); target <= 10 ns", median(y, reps) /
         median(f, reps), median(y, reps), median(f, reps));
}

/* ----------------------------------------------------------- spawn + wait */

static long spawn_n;
static double spawn_s[64];

static int empty(void *arg)
{
    (void)arg;
    return 0;
}

static int init_spawn(void *arg)
{
    (void)arg;
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < spawn_n; i++)
            if (sy_spawn(empty, NULL, NULL) < 0) {
                fprintf(stderr, "spawn failed at %ld\n", i);
                exit(1);
            }
        for (long i = 0; i < spawn_n; i++)
            if (sy_wait(-1, NULL, 0) < 0) {
                fprintf(stderr, "wait failed at %ld\n", i);
                exit(1);
            }
        spawn_s[r] = (double)(now_ns() - t0) / (double)spawn_n;
    }
    return 0;
}

static void bench_spawn(long n)
{
    char metric[64], go[64];
    spawn_n = n;
    sy_run(NULL, init_spawn, NULL);
    snprintf(metric, sizeof metric, "spawn_join_%ld", n);
    snprintf(go, sizeof go, "SpawnWait/%ld", n);
    report(go, "switchyard", metric, n, spawn_s, reps, "ns/task", 1);
    note("spawn+wait of %ld: median %.1f ns/task (first, cold repetition %.1f); target <= 100",
         n, median(spawn_s, reps), spawn_s[0]);
}

/* ---------------------------------------------------------------- memory */

static long mem_n;
static int park_chan;

static int parker(void *arg)
{
    (void)arg;
    sy_sleep(&park_chan, NULL);
    return 0;
}

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, ch;
    while (f && (ch = fgetc(f)) != EOF)
        n += ch == '\n';
    if (f)
        fclose(f);
    return n;
}

static int init_mem(void *arg)
{
    (void)arg;
    long rss0 = status_kib("VmRSS"), vsz0 = status_kib("VmSize");
    int maps0 = count_maps();
    uint64_t t0 = now_ns();
    for (long i = 0; i < mem_n; i++)
        if (sy_spawn(parker, NULL, NULL) < 0) {
            fprintf(stderr, "spawn failed at %ld\n", i);
            exit(1);
        }
    sy_yield(); /* every parker runs once and falls asleep */
    double secs = (double)(now_ns() - t0) / 1e9;
    long rss1 = status_kib("VmRSS"), vsz1 = status_kib("VmSize");
    int maps1 = count_maps();
    char go[64], m[64];
    snprintf(go, sizeof go, "MemAsleep/%ld", mem_n);
    report1(go, "switchyard", "mem_rss_per_task", mem_n, (double)(rss1 - rss0) / (double)mem_n,
            "KiB");
    report1(go, "switchyard", "mem_vsz_per_task", mem_n, (double)(vsz1 - vsz0) / (double)mem_n,
            "KiB");
    snprintf(m, sizeof m, "mem_maps_per_1000_tasks");
    report1(go, "switchyard", m, mem_n, 1000.0 * (maps1 - maps0) / (double)mem_n, "maps");
    report1(go, "switchyard", "mem_hwm_total", mem_n, (double)status_kib("VmHWM"), "KiB");
    note("%ld tasks asleep at once: RSS %.2f KiB/task (target <= 4.5), %d new mappings, "
         "spawned and asleep in %.2f s", mem_n, (double)(rss1 - rss0) / (double)mem_n,
         maps1 - maps0, secs);
    int woken = sy_wakeup(&park_chan);
    long reaped = 0;
    while (sy_wait(-1, NULL, 0) > 0)
        reaped++;
    if (woken != mem_n || reaped != mem_n) {
        fprintf(stderr, "woke %d, reaped %ld of %ld\n", woken, reaped, mem_n);
        exit(1);
    }
    return 0;
}

static void bench_mem(long n)
{
    mem_n = n;
    int st = sy_run(NULL, init_mem, NULL);
    if (st != 0) {
        fprintf(stderr, "mem: sy_run: %d\n", st);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int a = bench_args(argc, argv, "switch|yield|spawn|mem|all [N]");
    reps = bench_reps();
    const char *what = argv[a], *cnt = a + 1 < argc ? argv[a + 1] : NULL;
    int all = !strcmp(what, "all");
    if (all || !strcmp(what, "switch"))
        bench_switch(bench_count(cnt, 20000000));
    if (all || !strcmp(what, "yield"))
        bench_yield(bench_count(cnt, 20000000));
    if (all || !strcmp(what, "spawn")) {
        if (all)
            bench_spawn(bench_count(NULL, 100000));
        bench_spawn(bench_count(cnt, 1000000));
    }
    if (all || !strcmp(what, "mem")) {
        bench_mem(bench_count(cnt, 100000));
        if (all)
            bench_mem(bench_count(NULL, 1000000));
    }
    if (!all && strcmp(what, "switch") && strcmp(what, "yield") && strcmp(what, "spawn") &&
        strcmp(what, "mem")) {
        fprintf(stderr, "%s: unknown benchmark '%s'\n", argv[0], what);
        return 2;
    }
    return 0;
}
