/*
 * b_smp - benchmarks of several CPUs, each next to a reference measured in
 * the same run.
 *
 *   b_smp pingpong [N]  one-way wakeup latency between tasks pinned to CPUs
 *                       0 and 1: target CPU spinning (default), busy (a
 *                       yielding task shares it), parked (the sender waits
 *                       until it parked); reference: two pthreads through a
 *                       futex on CPUs 0 and 1
 *   b_smp compute       CPU-bound tasks on 2 CPUs against 1: speedup
 *   b_smp spawn [N]     spawn N empty tasks and wait for all, on 2 CPUs
 *   b_smp yield [N]     64 tasks yielding: switches per second, 2 CPUs vs 1
 *   b_smp idle [S]      every task asleep for S s (default 5) on 2 CPUs: the
 *                       process's CPU use, from /proc/self/stat
 *   b_smp all
 *   --tsv as in b_core.
 */
#include "bench.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "switchyard.h"

static int reps;

static int run_cpus(int ncpu, sy_fn init, void *arg)
{
    sy_config c = {.ncpu = ncpu};
    int st = sy_run(&c, init, arg);
    if (st != 0) {
        fprintf(stderr, "sy_run: %d (%s)\n", st, st < 0 ? sy_strerror(st) : "status");
        exit(1);
    }
    return st;
}

/* ------------------------------------------------ futex reference */

static int fx_turn;
static long fx_rounds;

static void *fx_peer(void *arg)
{
    int me = (int)(long)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(me, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    for (long i = 0; i < fx_rounds; i++) {
        while (__atomic_load_n(&fx_turn, __ATOMIC_ACQUIRE) != me)
            syscall(SYS_futex, &fx_turn, FUTEX_WAIT_PRIVATE, !me, NULL, NULL, 0);
        __atomic_store_n(&fx_turn, !me, __ATOMIC_RELEASE);
        syscall(SYS_futex, &fx_turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    return NULL;
}

static double futex_one_way_ns(long rounds)
{
    pthread_t a, b;
    fx_turn = 0;
    fx_rounds = rounds;
    uint64_t t0 = now_ns();
    pthread_create(&a, NULL, fx_peer, (void *)0L);
    pthread_create(&b, NULL, fx_peer, (void *)1L);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    return (double)(now_ns() - t0) / (2.0 * (double)rounds);
}

/* ----------------------------------------------- cross-CPU ping-pong */

static struct {
    sy_spinlock lk;
    int turn;
    long rounds;
    uint64_t park_wait_ns; /* parked mode: sender waits this long first */
    uint64_t sent_ns;      /* when the last wakeup was sent */
    uint64_t lat_sum;      /* parked mode: sum of wakeup-to-run latencies */
    int stop_busy;
} pp;

static int pp_player(void *arg)
{
    int me = (int)(long)arg;
    for (long i = 0; i < pp.rounds; i++) {
        sy_spin_lock(&pp.lk);
        while (pp.turn != me)
            sy_sleep(&pp, &pp.lk);
        if (pp.park_wait_ns && pp.sent_ns)
            pp.lat_sum += now_ns() - pp.sent_ns;
        sy_spin_unlock(&pp.lk);
        if (pp.park_wait_ns) { /* let the other CPU park before waking it */
            uint64_t until = now_ns() + pp.park_wait_ns;
            while (now_ns() < until)
                ;
        }
        sy_spin_lock(&pp.lk);
        pp.turn = !me;
        pp.sent_ns = now_ns();
        sy_wakeup(&pp);
        sy_spin_unlock(&pp.lk);
    }
    return 0;
}

static int pp_busy(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&pp.stop_busy, __ATOMIC_RELAXED))
        sy_yield();
    return 0;
}

static uint64_t pp_elapsed;
static int pp_mode; /* 0 spinning, 1 busy, 2 parked */

static int init_pingpong(void *arg)
{
    (void)arg;
    sy_attr a0 = {.flags = SY_ATTR_PIN, .cpu = 0}, a1 = {.flags = SY_ATTR_PIN, .cpu = 1};
    int busy = 0;
    pp.stop_busy = 0;
    if (pp_mode == 1) /* keep CPU 1 busy: the wakeup lands on a running CPU */
        busy = sy_spawn(pp_busy, NULL, &a1);
    pp.turn = 0;
    uint64_t t0 = now_ns();
    int p0 = sy_spawn(pp_player, (void *)0L, &a0), p1 = sy_spawn(pp_player, (void *)1L, &a1);
    sy_wait(p0, NULL, 0);
    sy_wait(p1, NULL, 0);
    pp_elapsed = now_ns() - t0;
    pp.stop_busy = 1;
    if (busy)
        sy_wait(busy, NULL, 0);
    return 0;
}

static void bench_pingpong(long n)
{
    static const char *names[] = {"PingPongSpinning", "PingPongBusy", "PingPongParked"};
    static const char *tsv[] = {"switchyard_xcpu_spinning", "switchyard_xcpu_busy",
                                "switchyard_xcpu_parked"};
    double fx[64];
    for (int r = 0; r < reps; r++)
        fx[r] = futex_one_way_ns(n / 50 > 2000 ? 2000 : n / 50);
    report("FutexPthreads", "pthread_futex_crosscore", "handoff", n / 50, fx, reps, "ns/op", 0);
    for (pp_mode = 0; pp_mode < 3; pp_mode++) {
        double v[64] = {0};
        long rounds = pp_mode == 2 ? (n / 100 > 1000 ? 1000 : n / 100) : n;
        for (int r = 0; r < reps; r++) {
            memset(&pp, 0, sizeof pp);
            pp.rounds = rounds;
            pp.park_wait_ns = pp_mode == 2 ? 300000 : 0; /* > the 50 us idle spin */
            run_cpus(2, init_pingpong, NULL);
            v[r] = pp_mode == 2 ? (double)pp.lat_sum / (double)(2 * rounds - 1)
                                : (double)pp_elapsed / (double)(2 * rounds);
        }
        report(names[pp_mode], tsv[pp_mode], "handoff", rounds, v, reps, "ns/op", 0);
        note("cross-CPU wakeup, target %s: median %.0f ns one way (futex pthreads %.0f ns)%s",
             pp_mode == 0 ? "spinning" : pp_mode == 1 ? "busy" : "parked", median(v, reps),
             median(fx, reps), pp_mode == 2 ? "" : "; target <= 1000 ns");
    }
}

/* ------------------------------------------------------- compute */

static long work_iters;

static int worker(void *arg)
{
    (void)arg;
    bench_burn(work_iters);
    return 0;
}

static int init_compute(void *arg)
{
    bench_spawn_wait(worker, (int)(long)arg);
    return 0;
}

static void bench_compute(void)
{
    double one[64], two[64], sp[64];
    work_iters = 20000000; /* about 20-40 ms per task */
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        run_cpus(1, init_compute, (void *)16L);
        one[r] = (double)(now_ns() - t0) / 1e6;
        t0 = now_ns();
        run_cpus(2, init_compute, (void *)16L);
        two[r] = (double)(now_ns() - t0) / 1e6;
        sp[r] = one[r] / two[r];
    }
    report("Compute16/1cpu", "switchyard_compute_1cpu", "wall", 16, one, reps, "ms", 0);
    report("Compute16/2cpu", "switchyard_compute_2cpu", "wall", 16, two, reps, "ms", 0);
    report("Compute16/speedup", "switchyard_compute", "speedup_2cpu", 16, sp, reps, "x", 0);
    note("16 CPU-bound tasks: 2 CPUs %.2fx faster than 1 (median); target >= 1.9",
         median(sp, reps));
}

/* --------------------------------------------------------- spawn */

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
            if (sy_spawn(empty, NULL, NULL) < 0)
                exit(1);
        for (long i = 0; i < spawn_n; i++)
            if (sy_wait(-1, NULL, 0) < 0)
                exit(1);
        spawn_s[r] = (double)(now_ns() - t0) / (double)spawn_n;
    }
    return 0;
}

static void bench_spawn(long n)
{
    char go[64], m[64];
    spawn_n = n;
    run_cpus(2, init_spawn, NULL);
    snprintf(go, sizeof go, "SpawnWait2cpu/%ld", n);
    snprintf(m, sizeof m, "spawn_join_%ld", n);
    report(go, "switchyard_2cpu", m, n, spawn_s, reps, "ns/task", 1);
    note("spawn+wait of %ld on 2 CPUs: median %.1f ns/task (cold %.1f); target <= 100", n,
         median(spawn_s, reps), spawn_s[0]);
}

/* --------------------------------------------------------- yield */

static long yield_n;

static int yielder(void *arg)
{
    (void)arg;
    for (long i = 0; i < yield_n; i++)
        sy_yield();
    return 0;
}

static int init_yield(void *arg)
{
    (void)arg;
    bench_spawn_wait(yielder, 64);
    return 0;
}

static void bench_yield(long n)
{
    double one[64], two[64], ratio[64];
    yield_n = n / 64;
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = now_ns();
        run_cpus(1, init_yield, NULL);
        one[r] = (double)n / ((double)(now_ns() - t0) / 1e9) / 1e6;
        t0 = now_ns();
        run_cpus(2, init_yield, NULL);
        two[r] = (double)n / ((double)(now_ns() - t0) / 1e9) / 1e6;
        ratio[r] = two[r] / one[r];
    }
    report("Yield64/1cpu", "switchyard_yield64_1cpu", "throughput", n, one, reps, "Mswitch/s", 0);
    report("Yield64/2cpu", "switchyard_yield64_2cpu", "throughput", n, two, reps, "Mswitch/s", 0);
    note("64 tasks yielding: %.1f M switches/s on 2 CPUs, %.1f on 1 (x%.2f)", median(two, reps),
         median(one, reps), median(ratio, reps));
}

/* ---------------------------------------------------------- idle */

static double idle_secs;

static long proc_cpu_ticks(void)
{
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[1024];
    long ut = 0, st = 0;
    if (f && fgets(buf, sizeof buf, f)) {
        char *p = strrchr(buf, ')'); /* fields after the command name */
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut, &st) != 2)
            ut = st = 0;
    }
    if (f)
        fclose(f);
    return ut + st;
}

static int sleepy(void *arg)
{
    (void)arg;
    sy_nanosleep((uint64_t)(idle_secs * 1e9));
    return 0;
}

static int init_idle(void *arg)
{
    double *pct = arg;
    for (int i = 0; i < 8; i++)
        sy_spawn(sleepy, NULL, NULL);
    sy_nanosleep(100000000); /* everyone asleep, CPUs settled */
    long t0 = proc_cpu_ticks();
    uint64_t w0 = now_ns();
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    long t1 = proc_cpu_ticks();
    double wall = (double)(now_ns() - w0) / 1e9, hz = (double)sysconf(_SC_CLK_TCK);
    *pct = 100.0 * (double)(t1 - t0) / hz / wall;
    return 0;
}

static void bench_idle(double secs)
{
    double pct;
    idle_secs = secs;
    run_cpus(2, init_idle, &pct);
    report1("IdleAsleep2cpu", "switchyard_idle", "cpu_percent", (long)secs, pct, "%");
    note("2 CPUs, every task asleep for %.0f s: the process used %.2f%% of one CPU; target < 1",
         secs, pct);
}

int main(int argc, char **argv)
{
    int a = bench_args(argc, argv, "pingpong|compute|spawn|yield|idle|all [N]");
    reps = bench_reps();
    const char *w = argv[a], *cnt = a + 1 < argc ? argv[a + 1] : NULL;
    int all = !strcmp(w, "all"), known = all;
    if (all || !strcmp(w, "pingpong"))
        known = 1, bench_pingpong(bench_count(cnt, 200000));
    if (all || !strcmp(w, "compute"))
        known = 1, bench_compute();
    if (all || !strcmp(w, "spawn"))
        known = 1, bench_spawn(bench_count(cnt, 1000000));
    if (all || !strcmp(w, "yield"))
        known = 1, bench_yield(bench_count(cnt, 20000000));
    if (all || !strcmp(w, "idle"))
        known = 1, bench_idle(cnt ? atof(cnt) : 5);
    if (!known) {
        fprintf(stderr, "%s: unknown benchmark '%s'\n", argv[0], w);
        return 2;
    }
    return 0;
}
