/* Host locks (src/hostlock.c): a task that holds a pthread mutex, rwlock or
 * spinlock, a stdio stream lock or a C11 mtx_t is not preempted, and gives
 * its CPU up at the unlock instead.
 *
 * The scenario: one CPU, a 1 ms quantum, tasks that take turns at a
 * lock around 3 ms of their own computation.  Without the rule the tick
 * preempts a holder, the next task blocks the CPU's only host thread in the
 * kernel (or spins in pthread_spin_lock) and nothing runs again; a watchdog
 * thread fails the case instead of letting it hang.  Each hold also checks
 * that nobody else ran meanwhile (a shared epoch that every task bumps
 * while it computes outside the lock, and the holder's own nivcsw).  The
 * counts are checked through the task (successes only, never below zero,
 * with sy_preempt_disable nesting), tasks are still preempted outside any
 * lock, and calls outside tasks (before sy_run, from a plain thread) behave
 * as the C library's.  No timing assertions: the machine may be loaded. */
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <threads.h>
#include <time.h>
#include <unistd.h>

#include "internal.h" /* the counts in struct task */

#if defined(__SANITIZE_THREAD__) || defined(SY_VALGRIND)
/* the tick never switches from its handler in those builds (src/preempt.c) */
#define NO_ASYNC_PREEMPTION 1
#endif

/* ThreadSanitizer (GCC 12's) intercepts neither the clock* variants of the
 * pthread locks nor mtx_* and flockfile: locks taken through those are
 * invisible to it, with or without Switchyard, so the cases that several
 * host threads share use the other calls there; and it reports the misuse
 * that some checks below make on purpose (an unlock by a non-owner). */
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#endif

#define NTASKS 4
#define ROUNDS 8
#define HOLD_NS 3000000ull /* the 3 ms of work under the lock */
#define OUTSIDE_NS 1000000ull
#define QUANTUM_US 1000
#define CASE_LIMIT_S 25 /* tests/run.sh gives the whole program 60 s */

/* ------------------------------------------------------------- helpers */

/* The calling task's counts. */
static int host_locks(void)
{
    return this_cpu()->curr->host_locks;
}

static int preempt_count(void)
{
    return this_cpu()->curr->preempt_count;
}

/* A timed lock that did not get the lock (glibc says EDEADLK at once when
 * the caller is the rwlock's writer, ETIMEDOUT otherwise). */
static bool failed(int r)
{
    return r == ETIMEDOUT || r == EDEADLK;
}

static long epoch; /* bumped by tasks computing outside any lock (atomic) */

/* Compute for `ns` in the program's own code (the tick must be able to
 * land here: the clock is read only every few thousand steps). */
static void work_ns(uint64_t ns, bool bump)
{
    volatile unsigned long x = 0;
    uint64_t until = mono_ns() + ns;
    do {
        for (int i = 0; i < 4000; i++)
            x++;
        if (bump)
            __atomic_fetch_add(&epoch, 1, __ATOMIC_RELAXED);
    } while (mono_ns() < until);
}

static int run_cfg(sy_fn init, void *arg, int ncpu, unsigned quantum_us)
{
    sy_config c = {.ncpu = ncpu, .quantum_us = quantum_us};
    return sy_run(&c, init, arg);
}

/* ------------------------------------------------------- taking turns */

enum kind { MUTEX, RWLOCK, SPIN, STREAM, MTX, NKINDS };
static const char *kind_name[NKINDS] = {"mutex", "rwlock", "spin", "stream", "mtx"};

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_spinlock_t spin;
static FILE *stream;
static mtx_t cmtx;

static struct timespec far_future(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += 3600;
    return ts;
}

/* Take the lock of `kind`, by a method that varies with `round`; true if
 * it is exclusive (not a read lock). */
static bool take(enum kind kind, int who, int round)
{
    struct timespec rt_ts = far_future(CLOCK_REALTIME), mono_ts = far_future(CLOCK_MONOTONIC);
    (void)mono_ts;
    int m = (who + round) % 4;
    switch (kind) {
    case MUTEX:
        if (m == 0)
            CHECK_EQ(pthread_mutex_lock(&mutex), 0);
        else if (m == 1)
            CHECK_EQ(pthread_mutex_timedlock(&mutex, &rt_ts), 0);
#if !defined(TSAN)
        else if (m == 2)
            CHECK_EQ(pthread_mutex_clocklock(&mutex, CLOCK_MONOTONIC, &mono_ts), 0);
#endif
        else
            while (pthread_mutex_trylock(&mutex) == EBUSY)
                sy_yield();
        break;
    case RWLOCK: /* readers and writers */
        if (m == 0)
            CHECK_EQ(pthread_rwlock_wrlock(&rwlock), 0);
        else if (m == 1)
            CHECK_EQ(pthread_rwlock_rdlock(&rwlock), 0);
#if !defined(TSAN)
        else if (m == 2)
            CHECK_EQ(pthread_rwlock_clockwrlock(&rwlock, CLOCK_MONOTONIC, &mono_ts), 0);
#endif
        else
            CHECK_EQ(pthread_rwlock_timedrdlock(&rwlock, &rt_ts), 0);
        return m % 2 == 0;
    case SPIN:
        if (m % 2)
            CHECK_EQ(pthread_spin_lock(&spin), 0);
        else
            while (pthread_spin_trylock(&spin) == EBUSY)
                sy_yield();
        break;
    case STREAM:
        if (m % 2)
            flockfile(stream);
        else
            CHECK_EQ(ftrylockfile(stream), 0); /* recursive: the host thread owns it */
        break;
    case MTX:
        if (m % 2)
            CHECK_EQ(mtx_lock(&cmtx), thrd_success);
        else
            CHECK_EQ(mtx_timedlock(&cmtx, &rt_ts), thrd_success);
        break;
    default:
        CHECK(0);
    }
    return true;
}

static void give(enum kind kind)
{
    switch (kind) {
    case MUTEX:
        CHECK_EQ(pthread_mutex_unlock(&mutex), 0);
        break;
    case RWLOCK:
        CHECK_EQ(pthread_rwlock_unlock(&rwlock), 0);
        break;
    case SPIN:
        CHECK_EQ(pthread_spin_unlock(&spin), 0);
        break;
    case STREAM:
        funlockfile(stream);
        break;
    case MTX:
        CHECK_EQ(mtx_unlock(&cmtx), thrd_success);
        break;
    default:
        CHECK(0);
    }
}

static enum kind turn_kind;
static bool one_cpu; /* the per-hold checks (on several CPUs sy_ps races with switches) */
static long holds, disturbed, switched_at_unlock; /* atomics */
static long guarded, exclusive; /* under the lock: TSan sees a race if it missed one */

static int turn_taker(void *arg)
{
    int who = (int)(long)arg, self = sy_self();
    for (int round = 0; round < ROUNDS; round++) {
        if (take(turn_kind, who, round)) {
            guarded++;
            __atomic_fetch_add(&exclusive, 1, __ATOMIC_RELAXED);
        }
        CHECK_EQ(host_locks(), 1);
        long e0 = __atomic_load_n(&epoch, __ATOMIC_RELAXED);
        uint64_t iv0 = one_cpu ? task_info(self).nivcsw : 0;
        work_ns(HOLD_NS, false); /* the tick lands here, more than once */
        uint64_t iv1 = one_cpu ? task_info(self).nivcsw : 0;
        if (iv1 != iv0 || __atomic_load_n(&epoch, __ATOMIC_RELAXED) != e0)
            __atomic_fetch_add(&disturbed, 1, __ATOMIC_RELAXED);
        give(turn_kind); /* the safe point: the switch the tick wanted */
        if (one_cpu && task_info(self).nivcsw != iv1)
            __atomic_fetch_add(&switched_at_unlock, 1, __ATOMIC_RELAXED);
        CHECK_EQ(host_locks(), 0);
        CHECK_EQ(preempt_count(), 0);
        __atomic_fetch_add(&holds, 1, __ATOMIC_RELAXED);
        work_ns(OUTSIDE_NS, true);
    }
    return 0;
}

static int init_turns(void *arg)
{
    (void)arg;
    int pids[NTASKS];
    for (int i = 0; i < NTASKS; i++)
        CHECK((pids[i] = sy_spawn(turn_taker, (void *)(long)i, NULL)) > 0);
    for (int i = 0; i < NTASKS; i++)
        CHECK_EQ(sy_wait(pids[i], NULL, 0), pids[i]);
    return 0;
}

static void turns(enum kind kind, int ncpu, unsigned quantum_us)
{
    char name[64];
    snprintf(name, sizeof name, "%s turns, %d CPU(s), %u us", kind_name[kind], ncpu, quantum_us);
    turn_kind = kind;
    one_cpu = ncpu == 1;
    holds = disturbed = switched_at_unlock = guarded = exclusive = 0;
    case_begin(name, CASE_LIMIT_S, "a task holding a host lock was preempted?");
    CHECK_EQ(run_cfg(init_turns, NULL, ncpu, quantum_us), 0);
    case_end();
    CHECK_EQ(holds, NTASKS * ROUNDS);
    CHECK_EQ(guarded, exclusive);
    if (ncpu == 1) {
        /* nobody ran while a lock was held */
        CHECK_EQ(disturbed, 0);
        /* and the switches the tick wanted during the holds happened at the
         * unlocks: the 1 ms tick is on the wall clock, so every 3 ms hold
         * sees one (the default quantum's CPU-time clock may not advance
         * that much on a loaded machine: no check there) */
        if (quantum_us == QUANTUM_US)
            CHECK(switched_at_unlock > 0);
    }
}

static void test_mutex_turns(void)
{
    turns(MUTEX, 1, QUANTUM_US);
}

static void test_mutex_turns_default_quantum(void)
{
    turns(MUTEX, 1, 0); /* 10 ms */
}

static void test_rwlock_turns(void)
{
    turns(RWLOCK, 1, QUANTUM_US);
}

static void test_spin_turns(void)
{
    turns(SPIN, 1, QUANTUM_US);
}

static void test_stream_turns(void)
{
    turns(STREAM, 1, QUANTUM_US);
}

static void test_mtx_turns(void)
{
    turns(MTX, 1, QUANTUM_US);
}

static void test_mutex_turns_two_cpus(void)
{
    turns(MUTEX, 2, QUANTUM_US);
    turns(SPIN, 2, QUANTUM_US);
}

/* ------------------------------------------------------------- counts */

#if !defined(TSAN)
static pthread_mutex_t taken_outside = PTHREAD_MUTEX_INITIALIZER;
#endif

static int counter(void *arg)
{
    (void)arg;
    struct timespec past = {0, 0}; /* a deadline long gone: a timed lock fails at once */
    CHECK_EQ(host_locks(), 0);
    CHECK_EQ(preempt_count(), 0);

#if !defined(TSAN)
    /* a lock taken before sy_run, released here: no count to take back */
    CHECK_EQ(pthread_mutex_unlock(&taken_outside), 0);
    CHECK_EQ(host_locks(), 0);
    CHECK_EQ(preempt_count(), 0);
#endif

    /* mutexes: successes count, failures do not */
    CHECK_EQ(pthread_mutex_lock(&mutex), 0);
    CHECK_EQ(host_locks(), 1);
    CHECK_EQ(preempt_count(), 1);
    CHECK_EQ(pthread_mutex_trylock(&mutex), EBUSY);
    CHECK_EQ(pthread_mutex_timedlock(&mutex, &past), ETIMEDOUT);
    CHECK_EQ(pthread_mutex_clocklock(&mutex, CLOCK_MONOTONIC, &past), ETIMEDOUT);
    CHECK_EQ(host_locks(), 1);
    CHECK_EQ(pthread_mutex_unlock(&mutex), 0);
    CHECK_EQ(host_locks(), 0);
    CHECK_EQ(preempt_count(), 0);

    /* a failed unlock takes nothing back */
    pthread_mutexattr_t ma;
    pthread_mutex_t ec;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&ec, &ma);
#if !defined(TSAN)
    CHECK_EQ(pthread_mutex_lock(&mutex), 0);
    CHECK_EQ(pthread_mutex_unlock(&ec), EPERM); /* not locked */
    CHECK_EQ(host_locks(), 1);
    CHECK_EQ(pthread_mutex_unlock(&mutex), 0);
    CHECK_EQ(host_locks(), 0);
#endif

    /* a recursive mutex counts each level */
    pthread_mutex_t rec;
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rec, &ma);
    CHECK_EQ(pthread_mutex_lock(&rec), 0);
    CHECK_EQ(pthread_mutex_trylock(&rec), 0);
    CHECK_EQ(host_locks(), 2);
    CHECK_EQ(pthread_mutex_unlock(&rec), 0);
    CHECK_EQ(pthread_mutex_unlock(&rec), 0);
    CHECK_EQ(host_locks(), 0);
    pthread_mutex_destroy(&rec);
    pthread_mutex_destroy(&ec);
    pthread_mutexattr_destroy(&ma);

    /* rwlocks: two readers, then a writer that cannot get in */
    CHECK_EQ(pthread_rwlock_rdlock(&rwlock), 0);
    CHECK_EQ(pthread_rwlock_tryrdlock(&rwlock), 0);
    CHECK_EQ(host_locks(), 2);
    CHECK_EQ(pthread_rwlock_trywrlock(&rwlock), EBUSY);
    CHECK_EQ(pthread_rwlock_timedwrlock(&rwlock, &past), ETIMEDOUT);
    CHECK_EQ(pthread_rwlock_clockwrlock(&rwlock, CLOCK_MONOTONIC, &past), ETIMEDOUT);
    CHECK_EQ(host_locks(), 2);
    CHECK_EQ(pthread_rwlock_unlock(&rwlock), 0);
    CHECK_EQ(pthread_rwlock_unlock(&rwlock), 0);
    CHECK_EQ(host_locks(), 0);
    CHECK_EQ(pthread_rwlock_trywrlock(&rwlock), 0);
    CHECK_EQ(pthread_rwlock_tryrdlock(&rwlock), EBUSY);
    CHECK(failed(pthread_rwlock_timedrdlock(&rwlock, &past))); /* EDEADLK: we are the writer */
    CHECK(failed(pthread_rwlock_clockrdlock(&rwlock, CLOCK_MONOTONIC, &past))); /* EDEADLK: we are the writer */
    CHECK_EQ(host_locks(), 1);
    CHECK_EQ(pthread_rwlock_unlock(&rwlock), 0);
    CHECK_EQ(host_locks(), 0);

    /* spinlocks */
    CHECK_EQ(pthread_spin_lock(&spin), 0);
    CHECK_EQ(pthread_spin_trylock(&spin), EBUSY);
    CHECK_EQ(host_locks(), 1);
    CHECK_EQ(pthread_spin_unlock(&spin), 0);
    CHECK_EQ(host_locks(), 0);

    /* streams: recursive, each level counts */
    flockfile(stream);
    CHECK_EQ(ftrylockfile(stream), 0);
    CHECK_EQ(host_locks(), 2);
    funlockfile(stream);
    funlockfile(stream);
    CHECK_EQ(host_locks(), 0);

    /* C11 */
    CHECK_EQ(mtx_lock(&cmtx), thrd_success);
    CHECK_EQ(mtx_trylock(&cmtx), thrd_busy);
    CHECK_EQ(mtx_timedlock(&cmtx, &past), thrd_timedout);
    CHECK_EQ(host_locks(), 1);
    CHECK_EQ(mtx_unlock(&cmtx), thrd_success);
    CHECK_EQ(host_locks(), 0);

    /* with sy_preempt_disable: both nest, in any order */
    CHECK_EQ(sy_preempt_disable(), 0);
    CHECK_EQ(pthread_mutex_lock(&mutex), 0);
    CHECK_EQ(preempt_count(), 2);
    CHECK_EQ(sy_preempt_enable(), 0);
    CHECK_EQ(preempt_count(), 1);
    CHECK_EQ(pthread_mutex_unlock(&mutex), 0);
    CHECK_EQ(preempt_count(), 0);
    CHECK_EQ(sy_preempt_enable(), -EINVAL);
    CHECK_EQ(host_locks(), 0);
    return 0;
}

static void test_counts(void)
{
#if !defined(TSAN)
    CHECK_EQ(pthread_mutex_lock(&taken_outside), 0); /* by the booting thread */
#endif
    case_begin("counts", CASE_LIMIT_S, "a task holding a host lock was preempted?");
    CHECK_EQ(run_cfg(counter, NULL, 1, QUANTUM_US), 0);
    case_end();
}

/* ------------------------------------- still preempted outside a lock */

#if !defined(NO_ASYNC_PREEMPTION)
static int flag; /* atomic */

static pthread_mutex_t not_held = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;

static int churn_then_spin(void *arg)
{
    (void)arg;
    /* many counted and uncounted locks and unlocks first, then a loop with
     * no runtime call that only another task on this CPU can end */
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ(pthread_mutex_lock(&mutex), 0);
        CHECK_EQ(pthread_mutex_unlock(&mutex), 0);
        flockfile(stream);
        funlockfile(stream);
        CHECK_EQ(pthread_mutex_unlock(&not_held), EPERM); /* uncounted, unchanged */
    }
    CHECK_EQ(host_locks(), 0);
    CHECK_EQ(preempt_count(), 0);
    while (!__atomic_load_n(&flag, __ATOMIC_RELAXED))
        ;
    return 0;
}

static int setter(void *arg)
{
    (void)arg;
    __atomic_store_n(&flag, 1, __ATOMIC_RELAXED);
    return 0;
}

static int init_outside(void *arg)
{
    (void)arg;
    flag = 0;
    int a = sy_spawn(churn_then_spin, NULL, NULL), b = sy_spawn(setter, NULL, NULL);
    CHECK_EQ(sy_wait(a, NULL, 0), a);
    CHECK_EQ(sy_wait(b, NULL, 0), b);
    CHECK(task_info(sy_self()).pid == 1);
    return 0;
}
#endif

static void test_preempted_outside_locks(void)
{
#if !defined(NO_ASYNC_PREEMPTION)
    case_begin("preempted outside locks", CASE_LIMIT_S, "a task holding a host lock was preempted?");
    CHECK_EQ(run_cfg(init_outside, NULL, 1, QUANTUM_US), 0);
    case_end();
#endif
}

/* ------------------------------------------------------ outside tasks */

extern char __start_sy_text[] __attribute__((weak, visibility("hidden")));
extern char __stop_sy_text[] __attribute__((weak, visibility("hidden")));

static bool in_runtime(const void *fn)
{
    return (const char *)fn >= __start_sy_text && (const char *)fn < __stop_sy_text;
}

static pthread_mutex_t shared = PTHREAD_MUTEX_INITIALIZER;
static int plain_state; /* 1: holds `shared`, 2: released it (atomic) */

/* A plain thread, outside any runtime, through the same wrappers. */
static void *plain_thread(void *arg)
{
    (void)arg;
    pthread_mutexattr_t ma;
    pthread_mutex_t ec;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&ec, &ma);
    CHECK_EQ(pthread_mutex_lock(&ec), 0);
#if !defined(TSAN)
    CHECK_EQ(pthread_mutex_lock(&ec), EDEADLK);
#endif
    CHECK_EQ(pthread_mutex_unlock(&ec), 0);
#if !defined(TSAN)
    CHECK_EQ(pthread_mutex_unlock(&ec), EPERM);
#endif
    CHECK_EQ(pthread_mutex_lock(&shared), 0);
    __atomic_store_n(&plain_state, 1, __ATOMIC_RELEASE);
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    CHECK_EQ(pthread_mutex_unlock(&shared), 0);
    __atomic_store_n(&plain_state, 2, __ATOMIC_RELEASE);
    CHECK_EQ(pthread_spin_lock(&spin), 0);
    CHECK_EQ(pthread_spin_unlock(&spin), 0);
    CHECK_EQ(mtx_lock(&cmtx), thrd_success);
    CHECK_EQ(mtx_unlock(&cmtx), thrd_success);
    flockfile(stream);
    funlockfile(stream);
    pthread_mutex_destroy(&ec);
    pthread_mutexattr_destroy(&ma);
    return NULL;
}

/* Two plain threads count under a mutex: under TSan, a race report unless
 * the lock reached its interceptor through ours. */
static long plain_count;

static void *plain_counter(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        CHECK_EQ(pthread_mutex_lock(&shared), 0);
        plain_count++;
        CHECK_EQ(pthread_mutex_unlock(&shared), 0);
    }
    return NULL;
}

static int waits_for_plain(void *arg)
{
    (void)arg;
    while (__atomic_load_n(&plain_state, __ATOMIC_ACQUIRE) == 0)
        sy_yield();
    /* the plain thread holds it: a task blocks on it for real, then owns it */
    CHECK_EQ(pthread_mutex_lock(&shared), 0);
    CHECK_EQ(host_locks(), 1);
    CHECK_EQ(pthread_mutex_unlock(&shared), 0);
    CHECK_EQ(host_locks(), 0);
    return 0;
}

static void test_outside_tasks(void)
{
    /* the program's calls reach the runtime's wrappers (the static
     * library's object was linked in) */
    CHECK(in_runtime((const void *)pthread_mutex_lock));
    CHECK(in_runtime((const void *)pthread_mutex_unlock));
    CHECK(in_runtime((const void *)pthread_rwlock_wrlock));
    CHECK(in_runtime((const void *)pthread_spin_lock));
    CHECK(in_runtime((const void *)flockfile));
    CHECK(in_runtime((const void *)mtx_lock));

    /* before sy_run, on the booting thread: the C library's behaviour */
    CHECK_EQ(pthread_mutex_lock(&shared), 0);
    CHECK_EQ(pthread_mutex_trylock(&shared), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(&shared), 0);
    CHECK_EQ(pthread_rwlock_rdlock(&rwlock), 0);
    CHECK_EQ(pthread_rwlock_trywrlock(&rwlock), EBUSY);
    CHECK_EQ(pthread_rwlock_unlock(&rwlock), 0);
    CHECK_EQ(mtx_lock(&cmtx), thrd_success);
    CHECK_EQ(mtx_trylock(&cmtx), thrd_busy);
    CHECK_EQ(mtx_unlock(&cmtx), thrd_success);

    pthread_t pc[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&pc[i], NULL, plain_counter, NULL), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(pc[i], NULL), 0);
    CHECK_EQ(plain_count, 20000);

    /* a plain thread while a runtime runs, on a lock a task wants too */
    case_begin("outside tasks", CASE_LIMIT_S, "a task holding a host lock was preempted?");
    plain_state = 0;
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, plain_thread, NULL), 0);
    CHECK_EQ(run_cfg(waits_for_plain, NULL, 1, QUANTUM_US), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    case_end();
}

int main(void)
{
    CHECK_EQ(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE), 0);
    CHECK_EQ(mtx_init(&cmtx, mtx_timed), thrd_success);
    CHECK((stream = tmpfile()) != NULL);
    RUN(test_outside_tasks);
    RUN(test_counts);
    RUN(test_mutex_turns);
    RUN(test_mutex_turns_default_quantum);
    RUN(test_rwlock_turns);
    RUN(test_spin_turns);
    RUN(test_stream_turns);
    RUN(test_mtx_turns);
    RUN(test_mutex_turns_two_cpus);
    RUN(test_preempted_outside_locks);
    fclose(stream);
    return 0;
}
