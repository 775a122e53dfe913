/* b_hostlock - the host's threading calls inside tasks (issue 10,
 * src/hostlock.c and src/hostsync.c) against the C library's own, each
 * reference measured in the same run.  "glibc's" below is the C library's
 * function itself, found with dlsym(RTLD_NEXT) (the program's own names are
 * the runtime's), on an object that only glibc's code ever touches.
 *
 *   b_hostlock mutex [N]   uncontended pthread_mutex_lock + unlock, ns per
 *                          pair (N pairs, default 20M), 1 CPU:
 *                            MutexLibc    glibc's, on a plain thread
 *                            MutexThread  the runtime's, on a plain thread
 *                                         (no runtime on it)
 *                            MutexTask    the runtime's, in a task
 *                          each twice: /st while the process has never had
 *                          a second thread, /mt after it made (and joined)
 *                          one; target: task / glibc <= 1.2
 *
 * Why twice: glibc's mutex, while a process has never had a second thread,
 * takes and releases it without an atomic instruction
 * (lll_mutex_lock_optimized: SINGLE_THREAD_P); from the first
 * pthread_create on, for ever, with them.  A program that runs Switchyard
 * on one CPU and starts no thread is in the first case (sy_run on 1 CPU
 * starts none), one on 2 CPUs or with a thread of its own in the second.
 *   b_hostlock sem [N]     uncontended sem_post + sem_wait (value 0 -> 1
 *                          -> 0), the same rows (Sem*), default 20M
 *   b_hostlock once [N]    pthread_once on a done once_control (the fast
 *                          path), the same rows (Once*), default 50M
 *   b_hostlock handoff [N] two tasks on 1 CPU pass a turn back and forth
 *                          through a pthread_mutex_t + pthread_cond_t
 *                          (HostCondRoundTrip/1cpu), ns per round trip (two
 *                          handoffs; N round trips, default 1M); against the
 *                          same with sy_mutex + sy_cond (SyCondRoundTrip),
 *                          and two plain threads on one core with glibc's
 *                          mutex and condition (PthreadCondRoundTrip/1core,
 *                          N/20 round trips: each is two futex wakes)
 *   b_hostlock mutex8 [N]  8 tasks on 2 CPUs (task i pinned to CPU i % 2)
 *                          incrementing one counter under one
 *                          pthread_mutex_t (HostMutex8/2cpu), ns per
 *                          increment and M increments/s (N in all, default
 *                          4M); against 8 plain threads on the process's
 *                          first two cores under glibc's mutex
 *                          (PthreadMutex8/2cores) and 8 tasks under a
 *                          sy_mutex (SyMutex8/2cpu)
 *   b_hostlock 1cpu | 2cpu | all   mutex,sem,once,handoff | mutex8 | both
 *   Several may be given separated by commas: b_hostlock mutex,once
 *
 * Run the 1-CPU ones pinned to one core, the 2-CPU one unpinned (make bench):
 *   taskset -c 1 build/bench/b_hostlock 1cpu && build/bench/b_hostlock 2cpu
 * The notes ("# ...") give the ratios of the medians.  A benchmark that
 * does not finish within 120 s stops the program (exit 3).  Every call's
 * result is checked, and so is the counter. */
#include "bench.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/single_threaded.h>
#include <unistd.h>

static int reps;

/* without the hand-off: its monitor is a thread, and the single-threaded
 * rows need a process that never had one (nothing here makes a long call
 * for it to act on) */
static void run_cpus(int ncpu, sy_fn init, void *arg)
{
    bench_run(ncpu, SY_NO_HANDOFF, init, arg);
}

static void target_note(const char *what, double v, double target)
{
    note("%s: median %.3f; target <= %g: %s", what, v, target, v <= target ? "met" : "NOT met");
}

/* ------------------------------------------------ glibc's own functions */

static struct {
    int (*mutex_lock)(pthread_mutex_t *);
    int (*mutex_unlock)(pthread_mutex_t *);
    int (*cond_wait)(pthread_cond_t *, pthread_mutex_t *);
    int (*cond_signal)(pthread_cond_t *);
    int (*sem_init)(sem_t *, int, unsigned);
    int (*sem_wait)(sem_t *);
    int (*sem_post)(sem_t *);
    int (*once)(pthread_once_t *, void (*)(void));
} libc;

static void *next_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p) {
        fprintf(stderr, "b_hostlock: no %s after the runtime's\n", name);
        exit(1);
    }
    return p;
}

static void find_libc(void)
{
    if (libc.mutex_lock)
        return;
    *(void **)&libc.mutex_lock = next_sym("pthread_mutex_lock");
    *(void **)&libc.mutex_unlock = next_sym("pthread_mutex_unlock");
    *(void **)&libc.cond_wait = next_sym("pthread_cond_wait");
    *(void **)&libc.cond_signal = next_sym("pthread_cond_signal");
    *(void **)&libc.sem_init = next_sym("sem_init");
    *(void **)&libc.sem_wait = next_sym("sem_wait");
    *(void **)&libc.sem_post = next_sym("sem_post");
    *(void **)&libc.once = next_sym("pthread_once");
}

static void *nothing(void *arg)
{
    return arg;
}

/* From here on the process has had a second thread (glibc: for ever). */
static void make_multithreaded(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, nothing, NULL));
    CHECK(pthread_join(t, NULL));
}

/* One uncontended measurement: glibc's on a plain thread, the runtime's on
 * a plain thread, the runtime's in a task, interleaved in each repetition. */
struct three {
    double libc[64], thread[64], task[64];
};

/* Its rows, suffixed /st (a single-threaded process) or /mt, and ratios. */
static void report3(const char *kind, const char *what, const char *mode, long n,
                    const struct three *r, double target)
{
    char go[64], tsv[64];
    snprintf(go, sizeof go, "%sLibc/%s", kind, mode);
    snprintf(tsv, sizeof tsv, "switchyard_%s_libc_%s", what, mode);
    report(go, tsv, "uncontended", n, r->libc, reps, "ns/op", 0);
    snprintf(go, sizeof go, "%sThread/%s", kind, mode);
    snprintf(tsv, sizeof tsv, "switchyard_%s_thread_%s", what, mode);
    report(go, tsv, "uncontended", n, r->thread, reps, "ns/op", 0);
    snprintf(go, sizeof go, "%sTask/%s", kind, mode);
    snprintf(tsv, sizeof tsv, "switchyard_%s_task_%s", what, mode);
    report(go, tsv, "uncontended", n, r->task, reps, "ns/op", 0);
    double mt = median(r->task, reps), mh = median(r->thread, reps), ml = median(r->libc, reps);
    note("%s/%s: in a task / glibc's on a plain thread = %.3f (median %.2f / %.2f ns)", what, mode,
         mt / ml, mt, ml);
    note("%s/%s: the runtime's on a plain thread / glibc's = %.3f (median %.2f / %.2f ns)", what,
         mode, mh / ml, mh, ml);
    note("%s/%s: in a task / the runtime's on a plain thread = %.3f", what, mode, mt / mh);
    if (target > 0) {
        char w[96];
        snprintf(w, sizeof w, "uncontended %s in a task / glibc's (%s)", what, mode);
        target_note(w, mt / ml, target);
    }
}

/* Runs `fn` in a task on 1 CPU; its measurement back. */
static double (*in_task_fn)(long);
static long in_task_n;
static double in_task_result;

static int in_task(void *arg)
{
    (void)arg;
    in_task_result = in_task_fn(in_task_n);
    return 0;
}

static double measure_in_task(double (*fn)(long), long n)
{
    in_task_fn = fn;
    in_task_n = n;
    run_cpus(1, in_task, NULL);
    return in_task_result;
}

/* ------------------------------------------------ uncontended mutex */

static pthread_mutex_t our_mutex = PTHREAD_MUTEX_INITIALIZER;  /* the runtime's calls only */
static pthread_mutex_t libc_mutex = PTHREAD_MUTEX_INITIALIZER; /* glibc's only */

static double mutex_ours_ns(long n)
{
    for (long i = 0; i < 1000; i++) { /* warm */
        CHECK(pthread_mutex_lock(&our_mutex));
        CHECK(pthread_mutex_unlock(&our_mutex));
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        CHECK(pthread_mutex_lock(&our_mutex));
        CHECK(pthread_mutex_unlock(&our_mutex));
    }
    return (double)(now_ns() - t0) / (double)n;
}

static double mutex_libc_ns(long n)
{
    for (long i = 0; i < 1000; i++) {
        CHECK(libc.mutex_lock(&libc_mutex));
        CHECK(libc.mutex_unlock(&libc_mutex));
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        CHECK(libc.mutex_lock(&libc_mutex));
        CHECK(libc.mutex_unlock(&libc_mutex));
    }
    return (double)(now_ns() - t0) / (double)n;
}

static void bench_mutex(long n, struct three *r)
{
    bench_current = "mutex";
    for (int i = 0; i < reps; i++) { /* interleaved: same conditions */
        r->libc[i] = mutex_libc_ns(n);
        r->thread[i] = mutex_ours_ns(n); /* the booting thread, before sy_run: no runtime */
        r->task[i] = measure_in_task(mutex_ours_ns, n);
    }
}

/* ------------------------------------------------ uncontended semaphore */

static sem_t our_sem, libc_sem;

static double sem_ours_ns(long n)
{
    for (long i = 0; i < 1000; i++) {
        CHECK(sem_post(&our_sem));
        CHECK(sem_wait(&our_sem));
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        CHECK(sem_post(&our_sem));
        CHECK(sem_wait(&our_sem));
    }
    return (double)(now_ns() - t0) / (double)n;
}

static double sem_libc_ns(long n)
{
    for (long i = 0; i < 1000; i++) {
        CHECK(libc.sem_post(&libc_sem));
        CHECK(libc.sem_wait(&libc_sem));
    }
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        CHECK(libc.sem_post(&libc_sem));
        CHECK(libc.sem_wait(&libc_sem));
    }
    return (double)(now_ns() - t0) / (double)n;
}

static void bench_sem(long n, struct three *r)
{
    bench_current = "sem";
    for (int i = 0; i < reps; i++) {
        r->libc[i] = sem_libc_ns(n);
        r->thread[i] = sem_ours_ns(n);
        r->task[i] = measure_in_task(sem_ours_ns, n);
    }
}

/* ------------------------------------------------ pthread_once, done */

static pthread_once_t our_once = PTHREAD_ONCE_INIT, libc_once = PTHREAD_ONCE_INIT;
static int once_runs;

static void once_fn(void)
{
    once_runs++;
}

static double once_ours_ns(long n)
{
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        CHECK(pthread_once(&our_once, once_fn));
    return (double)(now_ns() - t0) / (double)n;
}

static double once_libc_ns(long n)
{
    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        CHECK(libc.once(&libc_once, once_fn));
    return (double)(now_ns() - t0) / (double)n;
}

static void bench_once(long n, struct three *r)
{
    bench_current = "once";
    for (int i = 0; i < reps; i++) {
        r->libc[i] = once_libc_ns(n);
        r->thread[i] = once_ours_ns(n);
        r->task[i] = measure_in_task(once_ours_ns, n);
    }
    EXPECT(once_runs, 2);
}

/* ------------------------------------------------ handoff on one CPU */

static struct {
    long n;
    int turn;
    pthread_mutex_t m;  /* the runtime's calls (tasks) */
    pthread_cond_t cv;
    sy_mutex sm;        /* sy_mutex + sy_cond (tasks) */
    sy_cond scv;
    pthread_mutex_t lm; /* glibc's (threads) */
    pthread_cond_t lcv;
    uint64_t t0, t1;
} ho = {.m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
        .lm = PTHREAD_MUTEX_INITIALIZER, .lcv = PTHREAD_COND_INITIALIZER};

/* Player `me` (0 or 1): waits for its turn, passes it, n times. */
static int ho_host(void *arg)
{
    int me = (int)(long)arg;
    for (long i = 0; i < ho.n; i++) {
        CHECK(pthread_mutex_lock(&ho.m));
        while (ho.turn != me)
            CHECK(pthread_cond_wait(&ho.cv, &ho.m));
        ho.turn = !me;
        CHECK(pthread_cond_signal(&ho.cv));
        CHECK(pthread_mutex_unlock(&ho.m));
    }
    return 0;
}

static int ho_sy(void *arg)
{
    int me = (int)(long)arg;
    for (long i = 0; i < ho.n; i++) {
        CHECK(sy_mutex_lock(&ho.sm));
        while (ho.turn != me)
            CHECK(sy_cond_wait(&ho.scv, &ho.sm));
        ho.turn = !me;
        CHECK(sy_cond_signal(&ho.scv));
        CHECK(sy_mutex_unlock(&ho.sm));
    }
    return 0;
}

static void *ho_libc(void *arg)
{
    int me = (int)(long)arg;
    for (long i = 0; i < ho.n; i++) {
        CHECK(libc.mutex_lock(&ho.lm));
        while (ho.turn != me)
            CHECK(libc.cond_wait(&ho.lcv, &ho.lm));
        ho.turn = !me;
        CHECK(libc.cond_signal(&ho.lcv));
        CHECK(libc.mutex_unlock(&ho.lm));
    }
    return NULL;
}

static int init_handoff(void *arg)
{
    sy_fn fn = (sy_fn)arg;
    ho.turn = 0;
    ho.t0 = now_ns();
    int a = bench_start(fn, (void *)0L, -1), b = bench_start(fn, (void *)1L, -1);
    bench_reap(a);
    bench_reap(b);
    ho.t1 = now_ns();
    return 0;
}

static void bench_handoff(long n)
{
    double host[64], sy[64], lib[64];
    long nl = n / 20 < 2 ? 2 : n / 20;
    bench_current = "handoff";
    CHECK(sy_mutex_init(&ho.sm));
    CHECK(sy_cond_init(&ho.scv));
    for (int i = 0; i < reps; i++) {
        ho.n = n;
        run_cpus(1, init_handoff, (void *)ho_host);
        host[i] = (double)(ho.t1 - ho.t0) / (double)n;
        run_cpus(1, init_handoff, (void *)ho_sy);
        sy[i] = (double)(ho.t1 - ho.t0) / (double)n;
        ho.n = nl;
        ho.turn = 0;
        pthread_t t[2];
        uint64_t t0 = now_ns();
        for (long k = 0; k < 2; k++)
            CHECK(pthread_create(&t[k], NULL, ho_libc, (void *)k));
        for (int k = 0; k < 2; k++)
            CHECK(pthread_join(t[k], NULL));
        lib[i] = (double)(now_ns() - t0) / (double)nl;
    }
    report("HostCondRoundTrip/1cpu", "switchyard", "pthread_cond_roundtrip", n, host, reps, "ns/op",
           0);
    report("SyCondRoundTrip/1cpu", "switchyard", "sy_cond_roundtrip", n, sy, reps, "ns/op", 0);
    report("PthreadCondRoundTrip/1core", "pthread", "pthread_cond_roundtrip", nl, lib, reps,
           "ns/op", 0);
    double mh = median(host, reps), ms = median(sy, reps), ml = median(lib, reps);
    note("handoff through pthread_mutex_t + pthread_cond_t between two tasks on 1 CPU / the same "
         "with sy_mutex + sy_cond = %.2f (median %.1f / %.1f ns per round trip)", mh / ms, mh, ms);
    note("... / two plain threads on one core with glibc's = %.3f (median %.1f / %.1f ns)",
         mh / ml, mh, ml);
}

/* ------------------------------------------------ 8 sharing one mutex, 2 CPUs */

#define MX_TASKS 8

static struct {
    pthread_mutex_t m;  /* the runtime's calls (tasks) */
    pthread_mutex_t lm; /* glibc's (threads) */
    sy_mutex sm;
    long counter;
    long per;
    cpu_set_t cores;
    uint64_t elapsed;
} mc = {.m = PTHREAD_MUTEX_INITIALIZER, .lm = PTHREAD_MUTEX_INITIALIZER};

static int mc_host(void *arg)
{
    (void)arg;
    for (long i = 0; i < mc.per; i++) {
        CHECK(pthread_mutex_lock(&mc.m));
        mc.counter++;
        CHECK(pthread_mutex_unlock(&mc.m));
    }
    return 0;
}

static int mc_sy(void *arg)
{
    (void)arg;
    for (long i = 0; i < mc.per; i++) {
        CHECK(sy_mutex_lock(&mc.sm));
        mc.counter++;
        CHECK(sy_mutex_unlock(&mc.sm));
    }
    return 0;
}

static int init_mc(void *arg)
{
    sy_fn fn = (sy_fn)arg;
    int pids[MX_TASKS];
    uint64_t t0 = now_ns();
    for (int i = 0; i < MX_TASKS; i++)
        pids[i] = bench_start(fn, NULL, i % 2);
    for (int i = 0; i < MX_TASKS; i++)
        bench_reap(pids[i]);
    mc.elapsed = now_ns() - t0;
    return 0;
}

static void *mc_thread(void *arg)
{
    (void)arg;
    pthread_setaffinity_np(pthread_self(), sizeof mc.cores, &mc.cores);
    for (long i = 0; i < mc.per; i++) {
        CHECK(libc.mutex_lock(&mc.lm));
        mc.counter++;
        CHECK(libc.mutex_unlock(&mc.lm));
    }
    return NULL;
}

static void bench_mutex8(long n)
{
    double host[64], hostt[64], sy[64], syt[64], lib[64], libt[64];
    bench_current = "mutex8";
    long per = n / MX_TASKS, total = per * MX_TASKS;
    cpu_set_t all;
    CPU_ZERO(&mc.cores);
    if (sched_getaffinity(0, sizeof all, &all) == 0)
        for (int c = 0, k = 0; c < CPU_SETSIZE && k < 2; c++)
            if (CPU_ISSET(c, &all))
                CPU_SET(c, &mc.cores), k++;
    if (CPU_COUNT(&mc.cores) < 2)
        note("fewer than two cores to run on: the 2-CPU figures share one");
    CHECK(sy_mutex_init(&mc.sm));
    mc.per = per;
    for (int r = 0; r < reps; r++) {
        pthread_t t[MX_TASKS];
        mc.counter = 0;
        uint64_t t0 = now_ns();
        for (int i = 0; i < MX_TASKS; i++)
            CHECK(pthread_create(&t[i], NULL, mc_thread, NULL));
        for (int i = 0; i < MX_TASKS; i++)
            CHECK(pthread_join(t[i], NULL));
        uint64_t d = now_ns() - t0;
        EXPECT(mc.counter, total);
        lib[r] = (double)d / (double)total;
        libt[r] = (double)total / ((double)d / 1e9) / 1e6;

        mc.counter = 0;
        run_cpus(2, init_mc, (void *)mc_host);
        EXPECT(mc.counter, total);
        host[r] = (double)mc.elapsed / (double)total;
        hostt[r] = (double)total / ((double)mc.elapsed / 1e9) / 1e6;

        mc.counter = 0;
        run_cpus(2, init_mc, (void *)mc_sy);
        EXPECT(mc.counter, total);
        sy[r] = (double)mc.elapsed / (double)total;
        syt[r] = (double)total / ((double)mc.elapsed / 1e9) / 1e6;
    }
    report("PthreadMutex8/2cores", "pthread_2cores", "mutex_contended_8", total, lib, reps, "ns/op",
           0);
    report("PthreadMutex8Throughput/2cores", "pthread_2cores", "mutex_contended_8_throughput",
           total, libt, reps, "Mops/s", 0);
    report("HostMutex8/2cpu", "switchyard_2cpu", "host_mutex_contended_8", total, host, reps,
           "ns/op", 0);
    report("HostMutex8Throughput/2cpu", "switchyard_2cpu", "host_mutex_contended_8_throughput",
           total, hostt, reps, "Mops/s", 0);
    report("SyMutex8/2cpu", "switchyard_2cpu", "mutex_contended_8", total, sy, reps, "ns/op", 0);
    report("SyMutex8Throughput/2cpu", "switchyard_2cpu", "mutex_contended_8_throughput", total,
           syt, reps, "Mops/s", 0);
    note("8 tasks on 2 CPUs under one pthread_mutex_t: median %.2f M ops/s; 8 plain threads on 2 "
         "cores under glibc's: %.2f M ops/s; 8 tasks under a sy_mutex: %.2f M ops/s",
         median(hostt, reps), median(libt, reps), median(syt, reps));
    note("throughput pthread_mutex_t in tasks / glibc's in threads = %.2f; / sy_mutex in tasks = "
         "%.2f", median(hostt, reps) / median(libt, reps),
         median(hostt, reps) / median(syt, reps));
}

/* ------------------------------------------------------------- main */

static int wanted(const char *list, const char *name, const char *group)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save))
        if (!strcmp(w, name) || !strcmp(w, group) || !strcmp(w, "all"))
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    int a = bench_args(argc, argv, "mutex|sem|once|handoff|mutex8|1cpu|2cpu|all[,...] [N]");
    reps = bench_reps();
    const char *what = argv[a], *cnt = a + 1 < argc ? argv[a + 1] : NULL;
    static const char *const known[] = {"mutex", "sem", "once", "handoff", "mutex8",
                                        "1cpu",  "2cpu", "all"};
    char buf[256];
    snprintf(buf, sizeof buf, "%s", what);
    for (char *save, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            ok |= !strcmp(w, known[i]);
        if (!ok) {
            fprintf(stderr, "%s: unknown benchmark '%s'\n", argv[0], w);
            return 2;
        }
    }
    bench_watchdog();
    find_libc();
    CHECK(libc.sem_init(&libc_sem, 0, 0));
    CHECK(sem_init(&our_sem, 0, 0));
    CHECK(libc.once(&libc_once, once_fn));
    CHECK(pthread_once(&our_once, once_fn));
    EXPECT(once_runs, 2);
    /* the uncontended rows twice: while the process has had no second
     * thread (the top says why), then after one */
    static struct three r[2][3];
    static const char *const mode[2] = {"st", "mt"};
    long nm = bench_count(cnt, 20000000), ns = bench_count(cnt, 20000000),
         no = bench_count(cnt, 50000000);
    int m0 = __libc_single_threaded ? 0 : 1;
    if (m0 && wanted(what, "mutex", "1cpu"))
        note("the process had a second thread at start: no single-threaded rows");
    for (int m = m0; m < 2; m++) {
        if (m == 1)
            make_multithreaded();
        alarm(120);
        if (wanted(what, "mutex", "1cpu"))
            bench_mutex(nm, &r[m][0]);
        if (wanted(what, "sem", "1cpu"))
            bench_sem(ns, &r[m][1]);
        if (wanted(what, "once", "1cpu"))
            bench_once(no, &r[m][2]);
        if (m == 0 && !__libc_single_threaded) {
            fprintf(stderr, "b_hostlock: sy_run on 1 CPU made a thread: the single-threaded "
                            "rows are not\n");
            exit(1);
        }
    }
    for (int m = m0; m < 2; m++)
        if (wanted(what, "mutex", "1cpu"))
            report3("Mutex", "mutex", mode[m], nm, &r[m][0], 1.2);
    for (int m = m0; m < 2; m++)
        if (wanted(what, "sem", "1cpu"))
            report3("Sem", "sem", mode[m], ns, &r[m][1], 0);
    for (int m = m0; m < 2; m++)
        if (wanted(what, "once", "1cpu"))
            report3("Once", "once", mode[m], no, &r[m][2], 0);
    if (wanted(what, "handoff", "1cpu")) {
        alarm(120);
        bench_handoff(bench_count(cnt, 1000000));
    }
    if (wanted(what, "mutex8", "2cpu")) {
        alarm(120);
        bench_mutex8(bench_count(cnt, 4000000));
    }
    alarm(0);
    return 0;
}
