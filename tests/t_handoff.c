/* The hand-off (src/handoff.c): a task stuck in a long library call or a
 * blocking system call the runtime does not know no longer holds its CPU.
 *
 * The long library call is zlib's compress2 when libz.so.1 can be opened
 * (dlopen: the AArch64 cross build has no arm64 zlib), else the C
 * library's qsort of fixed-size strings with strcmp as the comparator: the
 * whole call stays in the C library either way.  Its size is calibrated in
 * the same run, so that one call takes about LONG_CALL_MS of this machine's
 * time (under valgrind or qemu too); every bound below is a fraction of
 * that call, measured beside it, never an absolute figure.
 *
 * ThreadSanitizer delivers a signal to a thread blocked in a system call it
 * intercepts (read) only once the call returns: there a blocked thread is
 * never probed, so the cases that block in read are skipped, and the
 * stress makes no blocking reads (the long computations are handed off:
 * zlib and qsort call intercepted functions, where it delivers them). */
#include "test.h"
#include "internal.h" /* rt.handoff_ns */

#include <dlfcn.h>
#include <fenv.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define LONG_CALL_MS 600

#if defined(__SANITIZE_THREAD__)
#define NO_BLOCKED_PROBE 1
#pragma GCC diagnostic ignored "-Wunused-function" /* the cases it skips */
#endif

#include "longcall.h"

/* ------------------------------------------- a sleeper behind long calls */

static atomic_int stop_long;
static _Atomic uint64_t longest_call; /* ns, the longest single call seen */
static atomic_int long_seen;          /* some task showed as LONGCALL in sy_ps */

static int long_worker(void *arg)
{
    (void)arg;
    struct buf b;
    buf_init(&b, call_size);
    int calls = 0;
    while (!atomic_load(&stop_long) || calls == 0) {
        uint64_t t0 = mono_ns();
        long_call(&b, call_size);
        uint64_t dt = mono_ns() - t0;
        if (dt > atomic_load(&longest_call))
            atomic_store(&longest_call, dt);
        calls++;
    }
    buf_free(&b);
    return calls > 0 ? 0 : 1;
}

static int count_long(void)
{
    sy_task_info v[64];
    int n = sy_ps(v, 64), k = 0;
    for (int i = 0; i < n && i < 64; i++)
        if (v[i].long_call_ns) {
            CHECK_EQ(v[i].state, SY_RUNNING);
            k++;
        }
    return k;
}

static _Atomic uint64_t worst_late; /* ns */

static int sleeper(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8; i++) {
        uint64_t t0 = mono_ns();
        CHECK_EQ(sy_nanosleep(10000000), 0);
        uint64_t late = mono_ns() - t0 - 10000000;
        if (late > atomic_load(&worst_late))
            atomic_store(&worst_late, late);
        if (count_long() > 0)
            atomic_store(&long_seen, 1);
    }
    return 0;
}

static int init_sleeper(void *arg)
{
    int nlong = (int)(long)arg;
    atomic_store(&stop_long, 0);
    int pids[8];
    for (int i = 0; i < nlong; i++) { /* one on each CPU: the sleeper has none free */
        sy_attr a = {.flags = SY_ATTR_PIN, .cpu = i};
        pids[i] = sy_spawn(long_worker, NULL, &a);
    }
    sy_nanosleep(1000000); /* the workers are in their calls */
    int s = sy_spawn(sleeper, NULL, NULL);
    int st;
    CHECK_EQ(sy_wait(s, &st, 0), s);
    CHECK_EQ(st, 0);
    atomic_store(&stop_long, 1);
    for (int i = 0; i < nlong; i++) {
        CHECK_EQ(sy_wait(pids[i], &st, 0), pids[i]);
        CHECK_EQ(st, 0);
    }
    return 0;
}

/* On one CPU, then on two with a long worker per CPU: a 10 ms sleeper is
 * never late by more than half of one long call (without the hand-off it
 * waits for the call to end: up to all of it). */
static void sleeper_case(int ncpu)
{
    atomic_store(&worst_late, 0);
    atomic_store(&longest_call, 0);
    atomic_store(&long_seen, 0);
    sy_config c = {.ncpu = ncpu};
    CHECK_EQ(sy_run(&c, init_sleeper, (void *)(long)ncpu), 0);
    uint64_t late = atomic_load(&worst_late), call = atomic_load(&longest_call);
    if (late * 2 >= call)
        fprintf(stderr, "\n%d CPUs: sleeper late by %.1f ms, a long call %.1f ms\n", ncpu,
                late / 1e6, call / 1e6);
    CHECK(late * 2 < call);
    CHECK(atomic_load(&long_seen));
}

static void test_sleeper_1cpu(void)
{
    sleeper_case(1);
}

static void test_sleeper_2cpu(void)
{
    sleeper_case(2);
}

/* --------------------------------------- a read on a pipe nobody writes */

static int pipe_fd[2];
static atomic_int workers_done, rescued;
static int reader_pid;
static double idle_cpu_share;

static void *rescue(void *arg)
{
    /* the test's own way out: without the hand-off nothing would ever
     * write the pipe (the workers could not run) */
    uint64_t until = mono_ns() + (uint64_t)(long)arg * 1000000ull;
    while (mono_ns() < until && !atomic_load(&workers_done))
        usleep(10000);
    if (!atomic_load(&workers_done)) {
        atomic_store(&rescued, 1);
        CHECK_EQ(write(pipe_fd[1], "r", 1), 1);
    }
    return NULL;
}

static int reader(void *arg)
{
    (void)arg;
    int me = sy_self();
    CHECK_EQ(fesetround(FE_UPWARD), 0);
    errno = EDOM;
    char ch = 0;
    ssize_t r = read(pipe_fd[0], &ch, 1); /* blocks its host thread */
    CHECK_EQ(errno, EDOM);                /* invisible: errno, FP state, pid */
    CHECK_EQ(fegetround(), FE_UPWARD);
    CHECK_EQ(sy_self(), me);
    CHECK_EQ(r, 1);
    CHECK_EQ(ch, 'w');
    return 0;
}

static int pipe_worker(void *arg)
{
    long *work = arg;
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(sy_nanosleep(1000000), 0);
        (*work)++;
    }
    return 0;
}

static uint64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int init_pipe(void *arg)
{
    (void)arg;
    /* the reader and the workers on CPU 0: the workers run only if CPU 0
     * goes on while the reader blocks its host thread in read() */
    sy_attr cpu0 = {.flags = SY_ATTR_PIN, .cpu = 0};
    reader_pid = sy_spawn(reader, NULL, &cpu0);
    long work[4] = {0};
    int w[4];
    for (int i = 0; i < 4; i++)
        w[i] = sy_spawn(pipe_worker, &work[i], &cpu0);
    for (int i = 0; i < 4; i++) {
        int st;
        CHECK_EQ(sy_wait(w[i], &st, 0), w[i]);
        CHECK_EQ(st, 0);
        CHECK_EQ(work[i], 20);
    }
    /* the reader shows as in a long call; with every task asleep the
     * process uses (almost) no CPU while it waits */
    sy_task_info ti = task_info(reader_pid);
    CHECK_EQ(ti.state, SY_RUNNING);
    CHECK(ti.long_call_ns > 0);
    uint64_t c0 = process_cpu_ns(), t0 = mono_ns();
    CHECK_EQ(sy_nanosleep(300000000), 0);
    idle_cpu_share = (double)(process_cpu_ns() - c0) / (double)(mono_ns() - t0);
    atomic_store(&workers_done, 1);
    CHECK_EQ(write(pipe_fd[1], "w", 1), 1);
    int st;
    CHECK_EQ(sy_wait(reader_pid, &st, 0), reader_pid);
    CHECK_EQ(st, 0);
    return 0;
}

static void pipe_case(int ncpu)
{
    CHECK_EQ(pipe(pipe_fd), 0);
    atomic_store(&workers_done, 0);
    atomic_store(&rescued, 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, rescue, (void *)(long)(LONG_CALL_MS * 30)), 0);
    sy_config c = {.ncpu = ncpu};
    CHECK_EQ(sy_run(&c, init_pipe, NULL), 0);
    pthread_join(th, NULL);
    CHECK(!atomic_load(&rescued));
    if (idle_cpu_share >= 0.5)
        fprintf(stderr, "\nCPU share while waiting: %.2f\n", idle_cpu_share);
    CHECK(idle_cpu_share < 0.5);
    close(pipe_fd[0]);
    close(pipe_fd[1]);
}

static void test_pipe_read_1cpu(void)
{
    pipe_case(1);
}

static void test_pipe_read_2cpu(void)
{
    pipe_case(2);
}

static int reader_d(void *arg)
{
    (void)arg;
    char ch;
    CHECK_EQ(read(pipe_fd[0], &ch, 1), 1);
    CHECK_EQ(ch, 'd');
    return 0;
}

/* -------------------------------------- many long calls: the bound */

#define NREADERS 6
#define BOUND 2
static int pipes[NREADERS][2];
static atomic_int max_long, readers_done;

static int bound_reader(void *arg)
{
    long i = (long)arg;
    char ch;
    CHECK_EQ(read(pipes[i][0], &ch, 1), 1);
    atomic_fetch_add(&readers_done, 1);
    return 0;
}

static int bound_watcher(void *arg)
{
    (void)arg;
    while (atomic_load(&readers_done) < NREADERS) {
        int k = count_long();
        if (k > atomic_load(&max_long))
            atomic_store(&max_long, k);
        sy_nanosleep(1000000);
    }
    return 0;
}

static void *bound_writer(void *arg)
{
    (void)arg;
    /* one pipe after another, with time between for the CPU to be stuck
     * at the bound and for the watcher to look */
    for (int i = 0; i < NREADERS; i++) {
        usleep(LONG_CALL_MS * 1000 / 2);
        CHECK_EQ(write(pipes[i][1], "x", 1), 1);
    }
    return NULL;
}

static int init_bound(void *arg)
{
    (void)arg;
    int pids[NREADERS];
    for (long i = 0; i < NREADERS; i++)
        pids[i] = sy_spawn(bound_reader, (void *)i, NULL);
    int w = sy_spawn(bound_watcher, NULL, NULL);
    for (int i = 0; i < NREADERS; i++) {
        int st;
        CHECK_EQ(sy_wait(pids[i], &st, 0), pids[i]);
        CHECK_EQ(st, 0);
    }
    CHECK_EQ(sy_wait(w, NULL, 0), w);
    return 0;
}

/* More tasks in long calls at once than spare threads: the hand-offs stop
 * at the bound (never more tasks in long calls than handoff_threads), the
 * CPU waits there, and everything still finishes. */
static void test_bound(void)
{
    for (int i = 0; i < NREADERS; i++)
        CHECK_EQ(pipe(pipes[i]), 0);
    atomic_store(&max_long, 0);
    atomic_store(&readers_done, 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, bound_writer, NULL), 0);
    sy_config c = {.ncpu = 1, .handoff_threads = BOUND};
    CHECK_EQ(sy_run(&c, init_bound, NULL), 0);
    pthread_join(th, NULL);
    CHECK_EQ(atomic_load(&readers_done), NREADERS);
    CHECK(atomic_load(&max_long) >= 1);
    CHECK(atomic_load(&max_long) <= BOUND);
    for (int i = 0; i < NREADERS; i++) {
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
}

/* --------------------------------------- kill during a long call */

static atomic_int after_read;

static int kill_victim(void *arg)
{
    (void)arg;
    char ch;
    CHECK_EQ(read(pipe_fd[0], &ch, 1), 1); /* the kill does not cut this short */
    atomic_store(&after_read, 1);
    for (;;)
        sy_yield(); /* its first kill point: it exits here */
}

static int init_kill(void *arg)
{
    (void)arg;
    atomic_store(&after_read, 0);
    int v = sy_spawn(kill_victim, NULL, NULL);
    uint64_t until = mono_ns() + LONG_CALL_MS * 20 * 1000000ull;
    while (task_info(v).long_call_ns == 0) { /* handed off */
        CHECK(mono_ns() < until);
        sy_nanosleep(1000000);
    }
    CHECK_EQ(sy_kill(v), 0);
    sy_nanosleep(20000000);
    sy_task_info ti = task_info(v);
    CHECK_EQ(ti.state, SY_RUNNING); /* still in its call */
    CHECK(ti.long_call_ns > 0);
    CHECK_EQ(atomic_load(&after_read), 0);
    CHECK_EQ(write(pipe_fd[1], "k", 1), 1);
    int st;
    CHECK_EQ(sy_wait(v, &st, 0), v);
    CHECK_EQ(st, SY_EXIT_KILLED);
    CHECK_EQ(atomic_load(&after_read), 1);
    return 0;
}

static void test_kill_in_long_call(void)
{
    CHECK_EQ(pipe(pipe_fd), 0);
    sy_config c = {.ncpu = 1};
    CHECK_EQ(sy_run(&c, init_kill, NULL), 0);
    c.ncpu = 2;
    CHECK_EQ(sy_run(&c, init_kill, NULL), 0);
    close(pipe_fd[0]);
    close(pipe_fd[1]);
}

/* ------------------------- not a deadlock: a task in a long call may wake */

static void *late_writer(void *arg)
{
    (void)arg;
    usleep(LONG_CALL_MS * 1000);
    CHECK_EQ(write(pipe_fd[1], "d", 1), 1);
    return NULL;
}

static int init_not_deadlock(void *arg)
{
    (void)arg;
    int r = sy_spawn(reader_d, NULL, NULL);
    /* a timer pending: work waits for the CPU, which is handed off */
    uint64_t until = mono_ns() + LONG_CALL_MS * 20 * 1000000ull;
    while (task_info(r).long_call_ns == 0) {
        CHECK(mono_ns() < until);
        sy_nanosleep(1000000);
    }
    /* now every task is asleep or in the long call, no timer: the reader
     * may still wake us, so this is no deadlock */
    int st;
    CHECK_EQ(sy_wait(r, &st, 0), r);
    CHECK_EQ(st, 0);
    return 0;
}

static void test_not_deadlock(void)
{
    CHECK_EQ(pipe(pipe_fd), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, late_writer, NULL), 0);
    sy_config c = {.ncpu = 1};
    CHECK_EQ(sy_run(&c, init_not_deadlock, NULL), 0); /* not -EDEADLK */
    pthread_join(th, NULL);
    close(pipe_fd[0]);
    close(pipe_fd[1]);
}

/* -------------------------------- back and forth at a 100 us quantum */

#define NSTRESS 8
static atomic_int stress_stop;
static int ping[2][2][2]; /* per pair: two pipes */

struct stress {
    long id;
    long ops, long_calls, pings;
};

static int stress_task(void *arg)
{
    struct stress *s = arg;
    int round = s->id % 2 ? FE_DOWNWARD : FE_TOWARDZERO;
    CHECK_EQ(fesetround(round), 0);
    struct buf b;
    size_t n = call_size / 64 ? call_size / 64 : 1; /* ~10 ms calls */
    buf_init(&b, n);
    unsigned seed = (unsigned)s->id;
    int pair = (int)(s->id / 2), side = (int)(s->id % 2);
    (void)pair, (void)side;
    while (!atomic_load(&stress_stop)) {
        seed = seed * 1103515245u + 12345u;
        switch ((seed >> 16) % 5) {
        case 0:
            errno = (int)s->id + 1;
            long_call(&b, n);
            CHECK_EQ(errno, (int)s->id + 1);
            __atomic_fetch_add(&s->long_calls, 1, __ATOMIC_RELAXED);
            break;
        case 1:
            sy_yield();
            break;
        case 2:
            sy_nanosleep(100000);
            break;
        case 3:
            busy_ns(500000);
            break;
        case 4:
#if !defined(NO_BLOCKED_PROBE)
            if (pair < 2) { /* blocking pipe ping-pong: one of a pair at a time */
                char ch = 'p';
                if (side == 0) {
                    CHECK_EQ(write(ping[pair][0][1], &ch, 1), 1);
                    CHECK_EQ(read(ping[pair][1][0], &ch, 1), 1);
                } else {
                    CHECK_EQ(read(ping[pair][0][0], &ch, 1), 1);
                    CHECK_EQ(write(ping[pair][1][1], &ch, 1), 1);
                }
                s->pings++;
            }
#endif
            break;
        }
        CHECK_EQ(fegetround(), round);
        __atomic_fetch_add(&s->ops, 1, __ATOMIC_RELAXED);
    }
    buf_free(&b);
    return 0;
}

static int init_stress(void *arg)
{
    uint64_t ms = (uint64_t)(long)arg;
    struct stress st[NSTRESS] = {0};
    int pids[NSTRESS];
    for (long i = 0; i < NSTRESS; i++) {
        st[i].id = i;
        pids[i] = sy_spawn(stress_task, &st[i], NULL);
    }
    sy_nanosleep(ms * 1000000);
    /* and on, on a loaded machine, until every kind of work has been done
     * at least a little (a CI run under load once saw too little in the
     * fixed time), at most 60 s more */
    for (int k = 0; k < 6000; k++) {
        long ops = 0, lc = 0;
        for (int i = 0; i < NSTRESS; i++) {
            ops += __atomic_load_n(&st[i].ops, __ATOMIC_RELAXED);
            lc += __atomic_load_n(&st[i].long_calls, __ATOMIC_RELAXED);
        }
        if (ops > NSTRESS && lc > 0)
            break;
        sy_nanosleep(10000000);
    }
    atomic_store(&stress_stop, 1);
    /* a side of a pair may wait in read for a ping its partner will not
     * send: unblock both directions */
    for (int p = 0; p < 2; p++)
        for (int d = 0; d < 2; d++)
            CHECK_EQ(write(ping[p][d][1], "zz", 2), 2);
    long total = 0, longs = 0;
    for (int i = 0; i < NSTRESS; i++) {
        int s;
        CHECK_EQ(sy_wait(pids[i], &s, 0), pids[i]);
        CHECK_EQ(s, 0);
        total += st[i].ops;
        longs += st[i].long_calls;
    }
    /* (not every task need have done something: one preempted on a thread
     * that was then handed off waits for that thread - src/handoff.c, the
     * leftover queue - and if the task in the long call blocks again in a
     * pipe read before any runtime call, it waits until the end) */
    if (!(total > NSTRESS && longs > 0)) {
        fprintf(stderr, "stress: %ld operations, %ld long calls (want > %d and > 0)\n", total,
                longs, NSTRESS);
        return 1;
    }
    return 0;
}

static void test_stress_100us(void)
{
    for (int p = 0; p < 2; p++)
        for (int d = 0; d < 2; d++)
            CHECK_EQ(pipe(ping[p][d]), 0);
    atomic_store(&stress_stop, 0);
    sy_config c = {.ncpu = 2, .quantum_us = 100, .handoff_us = 1000};
    CHECK_EQ(sy_run(&c, init_stress, (void *)(long)(LONG_CALL_MS * 3)), 0);
    for (int p = 0; p < 2; p++)
        for (int d = 0; d < 2; d++) {
            close(ping[p][d][0]);
            close(ping[p][d][1]);
        }
}

/* ------------------------------------------------- off when asked */

static int init_off(void *arg)
{
    (void)arg;
    CHECK_EQ(rt.handoff_ns, 0);
    return 0;
}

static void test_off(void)
{
    sy_config c = {.ncpu = 1, .flags = SY_NO_HANDOFF};
    CHECK_EQ(sy_run(&c, init_off, NULL), 0);
    setenv("SY_HANDOFF", "0", 1);
    c.flags = 0;
    CHECK_EQ(sy_run(&c, init_off, NULL), 0);
    unsetenv("SY_HANDOFF");
}

int main(void)
{
    calibrate(LONG_CALL_MS);
    fprintf(stderr, "  (long call: %s of %zu %s)\n", zcompress2 ? "compress2" : "qsort", call_size,
            zcompress2 ? "bytes" : "strings");
    RUN(test_off);
    RUN(test_sleeper_1cpu);
    RUN(test_sleeper_2cpu);
#if !defined(NO_BLOCKED_PROBE)
    RUN(test_pipe_read_1cpu);
    RUN(test_pipe_read_2cpu);
    RUN(test_bound);
    RUN(test_kill_in_long_call);
    RUN(test_not_deadlock);
#endif
    RUN(test_stress_100us);
    return 0;
}
