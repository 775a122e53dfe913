/* The host's threading API inside tasks (src/hostsync.c, src/hostlock.c):
 * pthread mutexes (normal, recursive, error-checking, adaptive, timed,
 * try), conditions (both clocks), rwlocks, semaphores, barriers, once,
 * spinlocks, flockfile and C11's mtx/cnd/call_once behave, in tasks, as if
 * each task were a thread.  Each case runs on one CPU and on two (or
 * SY_TEST_CPUS) with a 100 us quantum:
 *   - mutual exclusion counted (a non-atomic read-modify-write under the
 *     lock, exact at the end) with holders that yield and sleep while they
 *     hold the lock, for every kind, statically initialised ones included;
 *   - a waiter sleeps: while one task waits for a lock held by a sleeping
 *     holder (or one waiting for I/O), a third task on the same CPU keeps
 *     running;
 *   - ownership by task: EDEADLK, EPERM, EBUSY and recursion judged by
 *     task, also for two tasks on one host thread and for a holder that
 *     moved to another CPU;
 *   - no lost wakeup: a token passed round a ring through mutex+cond
 *     (signal, broadcast), sem, and rwlock; barriers release all at once;
 *     once runs its routine once, and every caller returns after it;
 *   - the same objects shared by tasks and plain threads at once, waiting
 *     for each other both ways, and used before sy_run and after;
 *   - timed calls: ETIMEDOUT, never early, on CLOCK_REALTIME and
 *     CLOCK_MONOTONIC; EINVAL for a bad timespec;
 *   - sy_kill: a timed lock or condition wait ends early with ETIMEDOUT,
 *     sem_wait with EINTR; an untimed lock is not interrupted (the task
 *     gets the lock, then exits at its next kill point);
 *   - objects glibc keeps (robust mutex, process-shared semaphore): a task
 *     that waits for one does not block its CPU.
 * A lost wakeup or a blocked host thread hangs a case: a watchdog thread
 * fails it after CASE_LIMIT_S.  No timing assertions beyond "not early". */
/* errno is read after calls that may move the task to another host thread
 * (a timed semaphore wait): fresh each time, not from the first thread
 * (switchyard.h, "errno, migration"; TSan saw a read of CPU 0's errno by a
 * task running on another CPU) */
#define SY_ERRNO_FRESH
#include "test.h"

#include "hostsync.h" /* sy__hostsync_off: test_switch */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <semaphore.h>
#include <threads.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__) || defined(SY_VALGRIND)
#define SLOW 1
#else
#define SLOW 0
#endif

#define MS 1000000ull

/* flags between tasks and threads (atomic: ThreadSanitizer) */
#define AL(x) __atomic_load_n(&(x), __ATOMIC_SEQ_CST)
#define AS(x, v) __atomic_store_n(&(x), (v), __ATOMIC_SEQ_CST)
#define CASE_LIMIT_S 120

/* ------------------------------------------------------------ helpers */

static int g_ncpu;

/* Run init on one CPU, then on two (and SY_TEST_CPUS if other), with a
 * 100 us quantum; init must return 0. */
static void run_all(sy_fn init, const char *name)
{
    case_begin(name, CASE_LIMIT_S, "a lost wakeup, or a task that blocked its CPU");
    int cpus[3] = {1, 2, test_cpus()};
    for (int i = 0; i < 3; i++) {
        if (i == 2 && (cpus[2] == 1 || cpus[2] == 2))
            break;
        g_ncpu = cpus[i];
        sy_config c = {.ncpu = cpus[i], .quantum_us = 100, .tick_us = 100};
        int st = sy_run(&c, init, NULL);
        if (st != 0) {
            fprintf(stderr, "%s: sy_run (%d CPUs) returned %d, want 0\n", name, cpus[i], st);
            exit(1);
        }
    }
    case_end();
}

/* Spawn n tasks of fn(i), wait for all; each must exit 0. */
static void spawn_wait(int n, sy_fn fn)
{
    int pids[64];
    CHECK(n <= 64);
    for (int i = 0; i < n; i++) {
        pids[i] = sy_spawn(fn, (void *)(long)i, NULL);
        CHECK(pids[i] > 0);
    }
    for (int i = 0; i < n; i++) {
        int st = -1;
        CHECK_EQ(sy_wait(pids[i], &st, 0), pids[i]);
        CHECK_EQ(st, 0);
    }
}

/* An absolute time `ns` from now on clock clk. */
static struct timespec abs_in(clockid_t clk, uint64_t ns)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    uint64_t t = (uint64_t)ts.tv_nsec + ns;
    ts.tv_sec += (time_t)(t / 1000000000u);
    ts.tv_nsec = (long)(t % 1000000000u);
    return ts;
}

#define ITERS (SLOW ? 200 : 2000)
#define NT 8

/* ------------------------------------------------- mutual exclusion */

static pthread_mutex_t m_normal = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t m_rec = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t m_err = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static pthread_mutex_t m_adapt = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
static pthread_mutex_t m_dyn; /* pthread_mutex_init'd, recursive */
static mtx_t m_c11;
static volatile long counter;

/* One critical section: read, maybe yield or sleep, write.  Another task
 * inside at the same time loses an increment. */
static volatile long counters[5]; /* one per lock below */

static void section(int i, int k, int which)
{
    long v = counters[which];
    if (k % 97 == 0)
        sy_nanosleep(20000);
    else if (k % 7 == i % 7)
        sy_yield();
    counters[which] = v + 1;
}

static int excl_task(void *arg)
{
    int i = (int)(long)arg;
    for (int k = 0; k < ITERS; k++) {
        CHECK_EQ(pthread_mutex_lock(&m_normal), 0);
        CHECK_EQ(pthread_mutex_lock(&m_rec), 0);
        CHECK_EQ(pthread_mutex_lock(&m_rec), 0); /* recursion by task */
        section(i, k, 0);
        CHECK_EQ(pthread_mutex_unlock(&m_rec), 0);
        CHECK_EQ(pthread_mutex_unlock(&m_rec), 0);
        CHECK_EQ(pthread_mutex_unlock(&m_normal), 0);
        int r = k & 1 ? pthread_mutex_lock(&m_err) : pthread_mutex_trylock(&m_err);
        if (r == EBUSY)
            r = pthread_mutex_lock(&m_err);
        CHECK_EQ(r, 0);
        section(i, k + 1, 1);
        CHECK_EQ(pthread_mutex_unlock(&m_err), 0);
        CHECK_EQ(pthread_mutex_lock(&m_adapt), 0);
        section(i, k + 2, 2);
        CHECK_EQ(pthread_mutex_unlock(&m_adapt), 0);
        CHECK_EQ(pthread_mutex_lock(&m_dyn), 0);
        section(i, k + 3, 3);
        CHECK_EQ(pthread_mutex_unlock(&m_dyn), 0);
        CHECK_EQ(mtx_lock(&m_c11), thrd_success);
        section(i, k + 4, 4);
        CHECK_EQ(mtx_unlock(&m_c11), thrd_success);
    }
    return 0;
}

static int init_exclusion(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++)
        counters[i] = 0;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    CHECK_EQ(pthread_mutex_init(&m_dyn, &a), 0);
    pthread_mutexattr_destroy(&a);
    CHECK_EQ(mtx_init(&m_c11, mtx_plain), thrd_success);
    spawn_wait(NT, excl_task);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(counters[i], (long)NT * ITERS);
    CHECK_EQ(pthread_mutex_destroy(&m_dyn), 0);
    mtx_destroy(&m_c11);
    /* nothing is left held: a destroy would say EBUSY */
    pthread_mutex_t *all[] = {&m_normal, &m_rec, &m_err, &m_adapt};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(pthread_mutex_trylock(all[i]), 0);
        CHECK_EQ(pthread_mutex_unlock(all[i]), 0);
    }
    return 0;
}

static void test_mutex_exclusion(void)
{
    run_all(init_exclusion, "mutex_exclusion");
}

/* ------------------------------------------- a waiter does not block */

/* While one task waits for an object a sleeping holder keeps, a third
 * task on the same CPU keeps running (one CPU: the runtime must have put
 * the waiter to sleep).  For each kind of wait. */
enum {
    B_MUTEX, B_C11, B_RWLOCK, B_RDLOCK, B_SEM, B_COND, B_SPIN, B_FILE, B_ROBUST, B_PSEM, B_NKINDS
};
static const char *const bk_name[] = {"mutex", "mtx", "wrlock", "rdlock", "sem", "cond",
                                      "spin",  "flockfile", "robust", "pshared sem"};
static int bk;
static int held, stop_runner, cond_flag;
static long progress;
static pthread_mutex_t bm = PTHREAD_MUTEX_INITIALIZER, brobust;
static pthread_cond_t bc = PTHREAD_COND_INITIALIZER;
static pthread_rwlock_t brw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_spinlock_t bspin;
static sem_t bsem, bpsem;
static mtx_t bmtx;
static FILE *bfile;
static int bk_pipe[2];

static int runner(void *arg)
{
    (void)arg;
    while (!AL(stop_runner)) {
        AS(progress, AL(progress) + 1);
        sy_yield();
    }
    return 0;
}

static void bk_take(int k)
{
    switch (k) {
    case B_MUTEX: CHECK_EQ(pthread_mutex_lock(&bm), 0); break;
    case B_C11: CHECK_EQ(mtx_lock(&bmtx), thrd_success); break;
    case B_RWLOCK: CHECK_EQ(pthread_rwlock_wrlock(&brw), 0); break;
    case B_RDLOCK: CHECK_EQ(pthread_rwlock_rdlock(&brw), 0); break;
    case B_SPIN: CHECK_EQ(pthread_spin_lock(&bspin), 0); break;
    case B_FILE: flockfile(bfile); break;
    case B_ROBUST: CHECK_EQ(pthread_mutex_lock(&brobust), 0); break;
    case B_SEM: CHECK_EQ(sem_wait(&bsem), 0); break;
    case B_PSEM: CHECK_EQ(sem_wait(&bpsem), 0); break;
    case B_COND:
        CHECK_EQ(pthread_mutex_lock(&bm), 0);
        while (!cond_flag)
            CHECK_EQ(pthread_cond_wait(&bc, &bm), 0);
        CHECK_EQ(pthread_mutex_unlock(&bm), 0);
        break;
    }
}

static void bk_give(int k)
{
    switch (k) {
    case B_MUTEX: CHECK_EQ(pthread_mutex_unlock(&bm), 0); break;
    case B_C11: CHECK_EQ(mtx_unlock(&bmtx), thrd_success); break;
    case B_RWLOCK:
    case B_RDLOCK: CHECK_EQ(pthread_rwlock_unlock(&brw), 0); break;
    case B_SPIN: CHECK_EQ(pthread_spin_unlock(&bspin), 0); break;
    case B_FILE: funlockfile(bfile); break;
    case B_ROBUST: CHECK_EQ(pthread_mutex_unlock(&brobust), 0); break;
    case B_SEM: CHECK_EQ(sem_post(&bsem), 0); break;
    case B_PSEM: CHECK_EQ(sem_post(&bpsem), 0); break;
    case B_COND:
        CHECK_EQ(pthread_mutex_lock(&bm), 0);
        cond_flag = 1;
        CHECK_EQ(pthread_cond_signal(&bc), 0);
        CHECK_EQ(pthread_mutex_unlock(&bm), 0);
        break;
    }
}

static int bk_holder(void *arg)
{
    (void)arg;
    /* a semaphore or condition is "held" by not being posted yet; a
     * read lock is held by a writer, so that the reader must wait */
    int k = bk == B_RDLOCK ? B_RWLOCK : bk;
    if (k != B_SEM && k != B_PSEM && k != B_COND)
        bk_take(k);
    AS(held, 1);
    if (k == B_C11) { /* holding it, waiting for I/O */
        char c;
        CHECK_EQ(sy_read(bk_pipe[0], &c, 1), 1);
    } else {
        sy_nanosleep(30 * MS); /* holding it, asleep: the CPU is free */
    }
    for (int i = 0; i < 20; i++)
        sy_yield(); /* and yielding */
    bk_give(k);
    return 0;
}

/* B_C11's holder waits for this to write */
static int bk_writer(void *arg)
{
    (void)arg;
    while (!AL(held))
        sy_yield();
    sy_nanosleep(30 * MS);
    CHECK_EQ(sy_write(bk_pipe[1], "x", 1), 1);
    return 0;
}

static int bk_waiter(void *arg)
{
    (void)arg;
    while (!AL(held))
        sy_yield();
    long p0 = AL(progress);
    bk_take(bk);
    long p1 = AL(progress);
    if (p1 == p0) {
        fprintf(stderr, "%s: nothing else ran on %d CPU(s) while a task waited\n",
                bk_name[bk], g_ncpu);
        return 1;
    }
    if (bk != B_SEM && bk != B_PSEM && bk != B_COND)
        bk_give(bk);
    return 0;
}

static int init_blocking(void *arg)
{
    (void)arg;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    CHECK_EQ(pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST), 0);
    CHECK_EQ(pthread_mutex_init(&brobust, &a), 0);
    pthread_mutexattr_destroy(&a);
    CHECK_EQ(pthread_spin_init(&bspin, PTHREAD_PROCESS_PRIVATE), 0);
    CHECK_EQ(sem_init(&bsem, 0, 0), 0);
    CHECK_EQ(sem_init(&bpsem, 1, 0), 0);
    CHECK_EQ(mtx_init(&bmtx, mtx_timed), thrd_success);
    bfile = tmpfile();
    CHECK(bfile != NULL);
    CHECK_EQ(pipe(bk_pipe), 0);
    for (bk = 0; bk < B_NKINDS; bk++) {
        AS(held, 0);
        AS(stop_runner, 0);
        cond_flag = 0;
        AS(progress, 0);
        sy_attr pin = {.flags = SY_ATTR_PIN, .cpu = 0};
        int r = sy_spawn(runner, NULL, &pin);
        int h = sy_spawn(bk_holder, NULL, &pin);
        int w = sy_spawn(bk_waiter, NULL, &pin);
        int wr = sy_spawn(bk_writer, NULL, NULL);
        CHECK(r > 0 && h > 0 && w > 0 && wr > 0);
        int st = -1;
        CHECK_EQ(sy_wait(h, &st, 0), h);
        CHECK_EQ(st, 0);
        CHECK_EQ(sy_wait(w, &st, 0), w);
        CHECK_EQ(st, 0);
        AS(stop_runner, 1);
        CHECK_EQ(sy_wait(r, &st, 0), r);
        CHECK_EQ(sy_wait(wr, &st, 0), wr);
        if (bk != B_C11) {
            char c;
            CHECK_EQ(sy_read(bk_pipe[0], &c, 1), 1); /* (what it wrote) */
        }
    }
    fclose(bfile);
    sy_close(bk_pipe[0]);
    sy_close(bk_pipe[1]);
    CHECK_EQ(pthread_mutex_destroy(&brobust), 0);
    return 0;
}

static void test_waiter_sleeps(void)
{
    run_all(init_blocking, "waiter_sleeps");
}

/* ------------------------------------------------ ownership by task */

static pthread_mutex_t o_err = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static pthread_mutex_t o_rec = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static pthread_rwlock_t o_rw = PTHREAD_RWLOCK_INITIALIZER;
static FILE *o_file;
static int o_step;

static void wait_step(int s)
{
    while (AL(o_step) < s)
        sy_yield();
}

/* A takes, B (on the same CPU: pinned) checks that it does not own. */
static int own_a(void *arg)
{
    (void)arg;
    CHECK_EQ(pthread_mutex_lock(&o_err), 0);
    CHECK_EQ(pthread_mutex_lock(&o_err), EDEADLK);
    CHECK_EQ(pthread_mutex_trylock(&o_err), EBUSY);
    CHECK_EQ(pthread_mutex_lock(&o_rec), 0);
    CHECK_EQ(pthread_mutex_lock(&o_rec), 0);
    CHECK_EQ(pthread_rwlock_wrlock(&o_rw), 0);
    CHECK_EQ(pthread_rwlock_wrlock(&o_rw), EDEADLK);
    CHECK_EQ(pthread_rwlock_rdlock(&o_rw), EDEADLK);
    flockfile(o_file);
    flockfile(o_file); /* recursion by task */
    AS(o_step, 1);
    wait_step(2); /* B checks */
    CHECK_EQ(pthread_mutex_unlock(&o_err), 0);
    CHECK_EQ(pthread_mutex_unlock(&o_err), EPERM); /* not locked */
    CHECK_EQ(pthread_mutex_unlock(&o_rec), 0);
    CHECK_EQ(pthread_mutex_trylock(&o_rec), 0); /* still ours: depth 2 again */
    CHECK_EQ(pthread_mutex_unlock(&o_rec), 0);
    CHECK_EQ(pthread_mutex_unlock(&o_rec), 0);
    CHECK_EQ(pthread_mutex_unlock(&o_rec), EPERM);
    CHECK_EQ(pthread_rwlock_unlock(&o_rw), 0);
    CHECK_EQ(pthread_rwlock_unlock(&o_rw), EPERM);
    funlockfile(o_file);
    CHECK_EQ(ftrylockfile(o_file), 0); /* depth 2 again */
    funlockfile(o_file);
    funlockfile(o_file);
    AS(o_step, 3);
    return 0;
}

static int own_b(void *arg)
{
    (void)arg;
    wait_step(1);
    CHECK_EQ(pthread_mutex_trylock(&o_err), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(&o_err), EPERM);
    CHECK_EQ(pthread_mutex_trylock(&o_rec), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(&o_rec), EPERM);
    CHECK_EQ(pthread_rwlock_trywrlock(&o_rw), EBUSY);
    CHECK_EQ(pthread_rwlock_tryrdlock(&o_rw), EBUSY);
    CHECK_EQ(pthread_rwlock_unlock(&o_rw), EPERM);
    CHECK(ftrylockfile(o_file) != 0); /* the same host thread, another task */
    AS(o_step, 2);
    wait_step(3);
    CHECK_EQ(pthread_mutex_lock(&o_err), 0);
    CHECK_EQ(pthread_mutex_unlock(&o_err), 0);
    CHECK_EQ(pthread_rwlock_rdlock(&o_rw), 0);
    CHECK_EQ(pthread_rwlock_unlock(&o_rw), 0);
    flockfile(o_file);
    funlockfile(o_file);
    return 0;
}

/* A holder that moves: lock, sleep until another CPU runs us, unlock. */
static int own_mover(void *arg)
{
    (void)arg;
    CHECK_EQ(pthread_mutex_lock(&o_err), 0);
    CHECK_EQ(pthread_mutex_lock(&o_rec), 0);
    int cpu0 = sy_cpu();
    for (int i = 0; i < 200 && sy_cpu() == cpu0; i++)
        sy_nanosleep(100000);
    CHECK_EQ(pthread_mutex_unlock(&o_rec), 0);
    CHECK_EQ(pthread_mutex_unlock(&o_err), 0);
    return 0;
}

static int init_ownership(void *arg)
{
    (void)arg;
    AS(o_step, 0);
    o_file = tmpfile();
    CHECK(o_file != NULL);
    sy_attr pin = {.flags = SY_ATTR_PIN, .cpu = 0};
    int a = sy_spawn(own_a, NULL, &pin), b = sy_spawn(own_b, NULL, &pin);
    int st = -1;
    CHECK_EQ(sy_wait(a, &st, 0), a);
    CHECK_EQ(st, 0);
    CHECK_EQ(sy_wait(b, &st, 0), b);
    CHECK_EQ(st, 0);
    spawn_wait(4, own_mover);
    fclose(o_file);
    return 0;
}

static void test_ownership(void)
{
    run_all(init_ownership, "ownership");
}

/* --------------------------------------------------------- the rings */

/* A token passed round a ring of tasks, each waiting for its turn: a lost
 * wakeup stops the ring (the watchdog). */
#define RING 6
#define LAPS (SLOW ? 100 : 1000)
enum { R_SIGNAL, R_BROADCAST, R_SEM, R_C11, R_NRINGS };
static int ring_kind;
static volatile int turn;
static pthread_mutex_t ring_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cv[RING];
static pthread_cond_t ring_all = PTHREAD_COND_INITIALIZER;
static sem_t ring_sem[RING];
static mtx_t ring_mtx;
static cnd_t ring_cnd;

static int ring_task(void *arg)
{
    int i = (int)(long)arg;
    for (int lap = 0; lap < LAPS; lap++) {
        switch (ring_kind) {
        case R_SIGNAL:
        case R_BROADCAST:
            CHECK_EQ(pthread_mutex_lock(&ring_m), 0);
            while (turn != i)
                CHECK_EQ(pthread_cond_wait(ring_kind == R_SIGNAL ? &ring_cv[i] : &ring_all,
                                           &ring_m), 0);
            turn = (i + 1) % RING;
            if (ring_kind == R_SIGNAL)
                CHECK_EQ(pthread_cond_signal(&ring_cv[turn]), 0);
            else
                CHECK_EQ(pthread_cond_broadcast(&ring_all), 0);
            CHECK_EQ(pthread_mutex_unlock(&ring_m), 0);
            break;
        case R_SEM:
            while (sem_wait(&ring_sem[i]) != 0)
                CHECK_EQ(errno, EINTR);
            CHECK_EQ(turn, i);
            turn = (i + 1) % RING;
            CHECK_EQ(sem_post(&ring_sem[turn]), 0);
            break;
        case R_C11:
            CHECK_EQ(mtx_lock(&ring_mtx), thrd_success);
            while (turn != i)
                CHECK_EQ(cnd_wait(&ring_cnd, &ring_mtx), thrd_success);
            turn = (i + 1) % RING;
            CHECK_EQ(cnd_broadcast(&ring_cnd), thrd_success);
            CHECK_EQ(mtx_unlock(&ring_mtx), thrd_success);
            break;
        }
    }
    return 0;
}

static int init_rings(void *arg)
{
    (void)arg;
    for (ring_kind = 0; ring_kind < R_NRINGS; ring_kind++) {
        turn = 0;
        for (int i = 0; i < RING; i++) {
            CHECK_EQ(pthread_cond_init(&ring_cv[i], NULL), 0);
            CHECK_EQ(sem_init(&ring_sem[i], 0, i == 0), 0);
        }
        CHECK_EQ(mtx_init(&ring_mtx, mtx_plain), thrd_success);
        CHECK_EQ(cnd_init(&ring_cnd), thrd_success);
        spawn_wait(RING, ring_task);
        for (int i = 0; i < RING; i++)
            CHECK_EQ(pthread_cond_destroy(&ring_cv[i]), 0);
        mtx_destroy(&ring_mtx);
        cnd_destroy(&ring_cnd);
    }
    return 0;
}

static void test_rings(void)
{
    run_all(init_rings, "rings");
}

/* ----------------------------------------------------------- rwlocks */

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t rw_wpref = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static int readers_in, writers_in, max_readers, writer_done;

static int rw_reader(void *arg)
{
    (void)arg;
    for (int k = 0; k < (SLOW ? 50 : 300); k++) {
        CHECK_EQ(pthread_rwlock_rdlock(&rw), 0);
        int n = __atomic_add_fetch(&readers_in, 1, __ATOMIC_SEQ_CST);
        if (n > AL(max_readers))
            AS(max_readers, n);
        CHECK_EQ(__atomic_load_n(&writers_in, __ATOMIC_SEQ_CST), 0);
        if (k % 10 == 0)
            sy_nanosleep(50000);
        else
            sy_yield();
        __atomic_sub_fetch(&readers_in, 1, __ATOMIC_SEQ_CST);
        CHECK_EQ(pthread_rwlock_unlock(&rw), 0);
    }
    return 0;
}

static int rw_writer(void *arg)
{
    (void)arg;
    for (int k = 0; k < (SLOW ? 20 : 100); k++) {
        CHECK_EQ(pthread_rwlock_wrlock(&rw), 0);
        CHECK_EQ(__atomic_add_fetch(&writers_in, 1, __ATOMIC_SEQ_CST), 1);
        CHECK_EQ(__atomic_load_n(&readers_in, __ATOMIC_SEQ_CST), 0);
        sy_yield();
        __atomic_sub_fetch(&writers_in, 1, __ATOMIC_SEQ_CST);
        CHECK_EQ(pthread_rwlock_unlock(&rw), 0);
    }
    return 0;
}

/* writers first: a stream of readers does not keep the writer out */
static int wp_reader(void *arg)
{
    (void)arg;
    while (!AL(writer_done)) {
        CHECK_EQ(pthread_rwlock_rdlock(&rw_wpref), 0);
        sy_yield();
        CHECK_EQ(pthread_rwlock_unlock(&rw_wpref), 0);
    }
    return 0;
}

static int wp_writer(void *arg)
{
    (void)arg;
    for (int k = 0; k < 20; k++) {
        CHECK_EQ(pthread_rwlock_wrlock(&rw_wpref), 0);
        sy_yield();
        CHECK_EQ(pthread_rwlock_unlock(&rw_wpref), 0);
    }
    AS(writer_done, 1);
    return 0;
}

static int rw_mix(void *arg)
{
    int i = (int)(long)arg;
    if (i < 2)
        return rw_writer(arg);
    if (i < 8)
        return rw_reader(arg);
    return i == 8 ? wp_writer(arg) : wp_reader(arg);
}

/* Readers hold the lock together: each waits inside until all are in
 * (a lock that kept readers apart would never let them all in). */
static int together;

static int rw_together(void *arg)
{
    (void)arg;
    CHECK_EQ(pthread_rwlock_rdlock(&rw), 0);
    __atomic_add_fetch(&together, 1, __ATOMIC_SEQ_CST);
    uint64_t until = mono_ns() + 30000 * MS;
    while (AL(together) < 3 && mono_ns() < until)
        sy_nanosleep(100000);
    CHECK_EQ(AL(together), 3);
    CHECK_EQ(pthread_rwlock_unlock(&rw), 0);
    return 0;
}

static int init_rwlock(void *arg)
{
    (void)arg;
    AS(together, 0);
    spawn_wait(3, rw_together);
    AS(readers_in, 0);
    AS(writers_in, 0);
    AS(max_readers, 0);
    AS(writer_done, 0);
    spawn_wait(12, rw_mix);
    CHECK_EQ(pthread_rwlock_destroy(&rw), 0);
    CHECK_EQ(pthread_rwlock_init(&rw, NULL), 0);
    return 0;
}

static void test_rwlock(void)
{
    run_all(init_rwlock, "rwlock");
}

/* -------------------------------------------- barriers, once, spin */

#define BN 6
#define BROUNDS (SLOW ? 30 : 200)
static pthread_barrier_t bar;
static volatile int arrived[BROUNDS], serials[BROUNDS];
static pthread_once_t once = PTHREAD_ONCE_INIT;
static once_flag c11_once = ONCE_FLAG_INIT;
static volatile int once_runs, once_ready, c11_runs;
static pthread_spinlock_t spin;

static void once_fn(void)
{
    sy_nanosleep(5 * MS); /* others arrive and wait meanwhile */
    once_runs++;
    once_ready = 1;
}

static void c11_fn(void)
{
    sy_yield();
    c11_runs++;
}

static int misc_task(void *arg)
{
    int i = (int)(long)arg;
    CHECK_EQ(pthread_once(&once, once_fn), 0);
    CHECK_EQ(once_ready, 1);
    call_once(&c11_once, c11_fn);
    CHECK_EQ(c11_runs, 1);
    for (int r = 0; r < BROUNDS; r++) {
        __atomic_add_fetch(&arrived[r], 1, __ATOMIC_SEQ_CST);
        if ((r + i) % 5 == 0)
            sy_yield();
        int s = pthread_barrier_wait(&bar);
        CHECK(s == 0 || s == PTHREAD_BARRIER_SERIAL_THREAD);
        if (s)
            __atomic_add_fetch(&serials[r], 1, __ATOMIC_SEQ_CST);
        CHECK_EQ(__atomic_load_n(&arrived[r], __ATOMIC_SEQ_CST), BN);
        /* a spinlock held across a yield */
        CHECK_EQ(pthread_spin_lock(&spin), 0);
        long v = counter;
        if (r % 3 == 0)
            sy_yield();
        counter = v + 1;
        CHECK_EQ(pthread_spin_unlock(&spin), 0);
    }
    return 0;
}

static int init_misc(void *arg)
{
    (void)arg;
    once = PTHREAD_ONCE_INIT;
    once_runs = once_ready = c11_runs = 0;
    c11_once = (once_flag)ONCE_FLAG_INIT;
    counter = 0;
    for (int r = 0; r < BROUNDS; r++)
        arrived[r] = serials[r] = 0;
    CHECK_EQ(pthread_barrier_init(&bar, NULL, BN), 0);
    CHECK_EQ(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE), 0);
    spawn_wait(BN, misc_task);
    CHECK_EQ(once_runs, 1);
    for (int r = 0; r < BROUNDS; r++)
        CHECK_EQ(serials[r], 1);
    CHECK_EQ(counter, (long)BN * BROUNDS);
    CHECK_EQ(pthread_barrier_destroy(&bar), 0);
    return 0;
}

static void test_barrier_once_spin(void)
{
    run_all(init_misc, "barrier_once_spin");
}

/* ---------------------------------------------------- timed calls */

static pthread_mutex_t t_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t t_cm = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static pthread_cond_t t_cv = PTHREAD_COND_INITIALIZER, t_cvmono;
static pthread_rwlock_t t_rw = PTHREAD_RWLOCK_INITIALIZER;
static sem_t t_sem;
static mtx_t t_mtx;
static cnd_t t_cnd;
static int t_hold, t_release;

#define TMO (20 * MS)

/* The time a call took is at least its timeout (never early). */
#define NOT_EARLY(t0) CHECK(mono_ns() - (t0) >= TMO - 1000000)

static int t_holder(void *arg)
{
    (void)arg;
    CHECK_EQ(pthread_mutex_lock(&t_m), 0);
    CHECK_EQ(pthread_rwlock_wrlock(&t_rw), 0);
    CHECK_EQ(mtx_lock(&t_mtx), thrd_success);
    AS(t_hold, 1);
    while (!AL(t_release))
        sy_nanosleep(MS);
    CHECK_EQ(mtx_unlock(&t_mtx), thrd_success);
    CHECK_EQ(pthread_rwlock_unlock(&t_rw), 0);
    CHECK_EQ(pthread_mutex_unlock(&t_m), 0);
    return 0;
}

/* The timeouts, from a task or from a plain thread, while t_holder holds
 * t_m, t_rw and t_mtx. */
static void timeouts(void)
{
    struct timespec ts;
    uint64_t t0;
    ts = abs_in(CLOCK_REALTIME, TMO), t0 = mono_ns();
    CHECK_EQ(pthread_mutex_timedlock(&t_m, &ts), ETIMEDOUT);
    NOT_EARLY(t0);
    ts = abs_in(CLOCK_MONOTONIC, TMO), t0 = mono_ns();
    CHECK_EQ(pthread_mutex_clocklock(&t_m, CLOCK_MONOTONIC, &ts), ETIMEDOUT);
    NOT_EARLY(t0);
    ts.tv_nsec = -1;
    CHECK_EQ(pthread_mutex_timedlock(&t_m, &ts), EINVAL);
    ts.tv_nsec = 1000000000;
    CHECK_EQ(pthread_mutex_clocklock(&t_m, CLOCK_MONOTONIC, &ts), EINVAL);
    ts = abs_in(CLOCK_MONOTONIC, TMO);
    CHECK_EQ(pthread_mutex_clocklock(&t_m, CLOCK_PROCESS_CPUTIME_ID, &ts), EINVAL);
    CHECK_EQ(pthread_mutex_trylock(&t_m), EBUSY);
    ts = abs_in(CLOCK_REALTIME, TMO), t0 = mono_ns();
    CHECK_EQ(pthread_rwlock_timedrdlock(&t_rw, &ts), ETIMEDOUT);
    NOT_EARLY(t0);
    ts = abs_in(CLOCK_MONOTONIC, TMO), t0 = mono_ns();
    CHECK_EQ(pthread_rwlock_clockwrlock(&t_rw, CLOCK_MONOTONIC, &ts), ETIMEDOUT);
    NOT_EARLY(t0);
    ts = abs_in(CLOCK_REALTIME, TMO), t0 = mono_ns();
    CHECK_EQ(mtx_timedlock(&t_mtx, &ts), thrd_timedout);
    NOT_EARLY(t0);
    /* conditions: the mutex is held again on return (an error-checking
     * one: only its owner may unlock it) */
    CHECK_EQ(pthread_mutex_lock(&t_cm), 0);
    ts = abs_in(CLOCK_REALTIME, TMO), t0 = mono_ns();
    CHECK_EQ(pthread_cond_timedwait(&t_cv, &t_cm, &ts), ETIMEDOUT);
    NOT_EARLY(t0);
    ts = abs_in(CLOCK_MONOTONIC, TMO), t0 = mono_ns();
    CHECK_EQ(pthread_cond_timedwait(&t_cvmono, &t_cm, &ts), ETIMEDOUT); /* its clock */
    NOT_EARLY(t0);
    ts = abs_in(CLOCK_MONOTONIC, TMO), t0 = mono_ns();
    CHECK_EQ(pthread_cond_clockwait(&t_cv, &t_cm, CLOCK_MONOTONIC, &ts), ETIMEDOUT);
    NOT_EARLY(t0);
    ts.tv_nsec = -5;
    CHECK_EQ(pthread_cond_timedwait(&t_cv, &t_cm, &ts), EINVAL);
    CHECK_EQ(pthread_mutex_unlock(&t_cm), 0);
    CHECK_EQ(pthread_mutex_unlock(&t_cm), EPERM);
    /* a condition wait on a mutex the caller does not hold */
    ts = abs_in(CLOCK_REALTIME, TMO);
    CHECK_EQ(pthread_cond_timedwait(&t_cv, &t_cm, &ts), EPERM);
    /* semaphores */
    CHECK_EQ(sem_trywait(&t_sem), -1);
    CHECK_EQ(errno, EAGAIN);
    ts = abs_in(CLOCK_REALTIME, TMO), t0 = mono_ns();
    CHECK_EQ(sem_timedwait(&t_sem, &ts), -1);
    CHECK_EQ(errno, ETIMEDOUT);
    NOT_EARLY(t0);
    ts = abs_in(CLOCK_MONOTONIC, TMO), t0 = mono_ns();
    CHECK_EQ(sem_clockwait(&t_sem, CLOCK_MONOTONIC, &ts), -1);
    CHECK_EQ(errno, ETIMEDOUT);
    NOT_EARLY(t0);
}

static void *timeouts_thread(void *arg)
{
    (void)arg;
    timeouts();
    /* cnd_timedwait from a thread too */
    static mtx_t m;
    CHECK_EQ(mtx_init(&m, mtx_plain), thrd_success);
    CHECK_EQ(mtx_lock(&m), thrd_success);
    struct timespec ts = abs_in(CLOCK_REALTIME, TMO);
    CHECK_EQ(cnd_timedwait(&t_cnd, &m, &ts), thrd_timedout);
    CHECK_EQ(mtx_unlock(&m), thrd_success);
    return NULL;
}

static int t_prober(void *arg)
{
    (void)arg;
    while (!AL(t_hold))
        sy_yield();
    timeouts();
    /* the same from a plain thread */
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, timeouts_thread, NULL), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    AS(t_release, 1);
    return 0;
}

static int init_timed(void *arg)
{
    (void)arg;
    AS(t_hold, 0);
    AS(t_release, 0);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    CHECK_EQ(pthread_condattr_setclock(&ca, CLOCK_MONOTONIC), 0);
    CHECK_EQ(pthread_cond_init(&t_cvmono, &ca), 0);
    pthread_condattr_destroy(&ca);
    CHECK_EQ(sem_init(&t_sem, 0, 0), 0);
    CHECK_EQ(mtx_init(&t_mtx, mtx_timed), thrd_success);
    CHECK_EQ(cnd_init(&t_cnd), thrd_success);
    int h = sy_spawn(t_holder, NULL, NULL), p = sy_spawn(t_prober, NULL, NULL);
    int st = -1;
    CHECK_EQ(sy_wait(p, &st, 0), p);
    CHECK_EQ(st, 0);
    CHECK_EQ(sy_wait(h, &st, 0), h);
    CHECK_EQ(st, 0);
    return 0;
}

static void test_timed(void)
{
    run_all(init_timed, "timed");
}

/* ---------------------------------------------------------- kills */

static pthread_mutex_t k_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t k_cm = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t k_cv = PTHREAD_COND_INITIALIZER;
static sem_t k_sem;
static int k_result[4], k_done[4], k_got_untimed;

static int k_victim(void *arg)
{
    int i = (int)(long)arg;
    struct timespec ts = abs_in(CLOCK_REALTIME, 600ull * 1000 * MS); /* 10 minutes */
    int r = 0;
    /* a killed task may also exit at any tick that finds it in its own
     * code (a slow emulator's tick came before k_done was set): not
     * preemptible until it has recorded the result */
    CHECK_EQ(sy_preempt_disable(), 0);
    switch (i) {
    case 0: r = pthread_mutex_timedlock(&k_m, &ts); break;
    case 1:
        CHECK_EQ(pthread_mutex_lock(&k_cm), 0);
        r = pthread_cond_timedwait(&k_cv, &k_cm, &ts);
        CHECK_EQ(pthread_mutex_unlock(&k_cm), 0); /* held again, even so */
        break;
    case 2: r = sem_wait(&k_sem) == 0 ? 0 : errno; break;
    case 3:
        /* not a kill point: it waits on, gets the lock, then exits at
         * its next kill point */
        r = pthread_mutex_lock(&k_m);
        AS(k_got_untimed, 1);
        CHECK_EQ(pthread_mutex_unlock(&k_m), 0);
        break;
    }
    AS(k_result[i], r);
    AS(k_done[i], 1);
    CHECK_EQ(sy_preempt_enable(), 0);
    sy_yield(); /* a kill point */
    return 99;  /* never: the kill took effect above */
}

static int init_kill(void *arg)
{
    (void)arg;
    CHECK_EQ(sem_init(&k_sem, 0, 0), 0);
    k_got_untimed = 0;
    CHECK_EQ(pthread_mutex_lock(&k_m), 0);
    int pid[4];
    for (int i = 0; i < 4; i++) {
        k_done[i] = 0;
        k_result[i] = -1;
        pid[i] = sy_spawn(k_victim, (void *)(long)i, NULL);
        CHECK(pid[i] > 0);
    }
    /* all four asleep in their waits */
    for (int i = 0; i < 4; i++)
        while (task_info(pid[i]).state != SY_SLEEPING)
            sy_nanosleep(MS);
    uint64_t t0 = mono_ns();
    for (int i = 0; i < 4; i++)
        CHECK_EQ(sy_kill(pid[i]), 0);
    int st = -1;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(sy_wait(pid[i], &st, 0), pid[i]);
        CHECK_EQ(st, SY_EXIT_KILLED);
        CHECK_EQ(k_done[i], 1);
    }
    CHECK(mono_ns() - t0 < 60ull * 1000 * MS); /* long before their deadline */
    CHECK_EQ(k_result[0], ETIMEDOUT);
    CHECK_EQ(k_result[1], ETIMEDOUT);
    CHECK_EQ(k_result[2], EINTR);
    /* the untimed lock still waits */
    sy_nanosleep(5 * MS);
    CHECK_EQ(AL(k_got_untimed), 0);
    CHECK_EQ(task_info(pid[3]).state, SY_SLEEPING);
    CHECK_EQ(pthread_mutex_unlock(&k_m), 0);
    CHECK_EQ(sy_wait(pid[3], &st, 0), pid[3]);
    CHECK_EQ(st, SY_EXIT_KILLED);
    CHECK_EQ(k_got_untimed, 1);
    CHECK_EQ(k_result[3], 0);
    /* nothing is left on the objects */
    CHECK_EQ(pthread_cond_destroy(&k_cv), 0);
    CHECK_EQ(pthread_mutex_destroy(&k_m), 0);
    CHECK_EQ(pthread_mutex_init(&k_m, NULL), 0);
    CHECK_EQ(sem_post(&k_sem), 0);
    CHECK_EQ(sem_trywait(&k_sem), 0);
    return 0;
}

static void test_kill(void)
{
    run_all(init_kill, "kill");
}

/* ---------------------------------------- tasks and threads, mixed */

#define MIX_THREADS 3
#define MIX_TASKS 6
#define MIX_ITEMS (SLOW ? 300 : 3000)
static pthread_mutex_t mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t mx_nonempty = PTHREAD_COND_INITIALIZER;
static sem_t mx_sem;
static volatile long mx_queue, mx_consumed, mx_sem_taken;

static void mx_count(int k, bool task)
{
    CHECK_EQ(pthread_mutex_lock(&mx), 0);
    long v = counter;
    if (k % 50 == 0) {
        if (task)
            sy_nanosleep(30000);
        else
            usleep(30);
    }
    counter = v + 1;
    CHECK_EQ(pthread_mutex_unlock(&mx), 0);
}

/* Threads: count under the mutex, consume what tasks produce (waiting on
 * the condition), and post the semaphore tasks wait on. */
static void *mx_thread(void *arg)
{
    (void)arg;
    for (int k = 0; k < MIX_ITEMS; k++) {
        mx_count(k, false);
        CHECK_EQ(pthread_mutex_lock(&mx), 0);
        while (mx_queue == 0)
            CHECK_EQ(pthread_cond_wait(&mx_nonempty, &mx), 0);
        mx_queue--;
        mx_consumed++;
        CHECK_EQ(pthread_mutex_unlock(&mx), 0);
        CHECK_EQ(sem_post(&mx_sem), 0);
    }
    return NULL;
}

/* Tasks: count, produce for the threads, take the semaphore's units. */
static int mx_task(void *arg)
{
    (void)arg;
    for (int k = 0; k < MIX_ITEMS * MIX_THREADS / MIX_TASKS; k++) {
        mx_count(k, true);
        CHECK_EQ(pthread_mutex_lock(&mx), 0);
        mx_queue++;
        CHECK_EQ(pthread_cond_signal(&mx_nonempty), 0);
        CHECK_EQ(pthread_mutex_unlock(&mx), 0);
        while (sem_wait(&mx_sem) != 0)
            CHECK_EQ(errno, EINTR);
        __atomic_add_fetch(&mx_sem_taken, 1, __ATOMIC_RELAXED);
    }
    return 0;
}

static int init_mixed(void *arg)
{
    (void)arg;
    counter = mx_queue = mx_consumed = mx_sem_taken = 0;
    CHECK_EQ(sem_init(&mx_sem, 0, 0), 0);
    pthread_t th[MIX_THREADS];
    for (int i = 0; i < MIX_THREADS; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, mx_thread, NULL), 0);
    spawn_wait(MIX_TASKS, mx_task);
    for (int i = 0; i < MIX_THREADS; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_EQ(mx_consumed, (long)MIX_ITEMS * MIX_THREADS);
    CHECK_EQ(mx_sem_taken, (long)MIX_ITEMS * MIX_THREADS);
    CHECK_EQ(counter, (long)MIX_ITEMS * MIX_THREADS * 2);
    return 0;
}

static void test_mixed(void)
{
    /* used by this thread before the runtime and after it */
    CHECK_EQ(pthread_mutex_lock(&mx), 0);
    CHECK_EQ(pthread_cond_signal(&mx_nonempty), 0);
    CHECK_EQ(pthread_mutex_unlock(&mx), 0);
    run_all(init_mixed, "mixed");
    CHECK_EQ(pthread_mutex_lock(&mx), 0);
    struct timespec ts = abs_in(CLOCK_REALTIME, MS);
    CHECK_EQ(pthread_cond_timedwait(&mx_nonempty, &mx, &ts), ETIMEDOUT);
    CHECK_EQ(pthread_mutex_unlock(&mx), 0);
    CHECK_EQ(pthread_mutex_destroy(&mx), 0);
}

/* ---------------------------------------------------------- errors */

static int init_errors(void *arg)
{
    (void)arg;
    pthread_mutex_t m;
    CHECK_EQ(pthread_mutex_init(&m, NULL), 0);
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    CHECK_EQ(pthread_mutex_destroy(&m), EBUSY);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    CHECK_EQ(pthread_mutex_destroy(&m), 0);
    CHECK_EQ(pthread_mutex_lock(&m), EINVAL); /* destroyed */
    pthread_rwlock_t l;
    CHECK_EQ(pthread_rwlock_init(&l, NULL), 0);
    CHECK_EQ(pthread_rwlock_rdlock(&l), 0);
    CHECK_EQ(pthread_rwlock_destroy(&l), EBUSY);
    CHECK_EQ(pthread_rwlock_unlock(&l), 0);
    CHECK_EQ(pthread_rwlock_destroy(&l), 0);
    sem_t s;
    CHECK_EQ(sem_init(&s, 0, (unsigned)SEM_VALUE_MAX + 1u), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(sem_init(&s, 0, SEM_VALUE_MAX), 0);
    CHECK_EQ(sem_post(&s), -1);
    CHECK_EQ(errno, EOVERFLOW);
    int v = 0;
    CHECK_EQ(sem_getvalue(&s, &v), 0); /* glibc's, on our layout */
    CHECK_EQ(v, SEM_VALUE_MAX);
    pthread_barrier_t b;
    CHECK_EQ(pthread_barrier_init(&b, NULL, 0), EINVAL);
    CHECK_EQ(pthread_barrier_init(&b, NULL, 1), 0);
    CHECK_EQ(pthread_barrier_wait(&b), PTHREAD_BARRIER_SERIAL_THREAD);
    CHECK_EQ(pthread_barrier_destroy(&b), 0);
    mtx_t m11;
    CHECK_EQ(mtx_init(&m11, 12345), thrd_error);
    CHECK_EQ(mtx_init(&m11, mtx_plain | mtx_recursive), thrd_success);
    CHECK_EQ(mtx_lock(&m11), thrd_success);
    CHECK_EQ(mtx_trylock(&m11), thrd_success);
    CHECK_EQ(mtx_unlock(&m11), thrd_success);
    CHECK_EQ(mtx_unlock(&m11), thrd_success);
    mtx_destroy(&m11);
    return 0;
}

static void test_errors(void)
{
    run_all(init_errors, "errors");
}

/* ------------------------------------------------------- deadlock */

/* Two tasks take two mutexes in opposite orders: with no plain thread in
 * the process that could release one, the runtime reports the deadlock
 * (sy_run returns -EDEADLK), as it does for sy_mutex.  No watchdog thread
 * here: it would be such a thread (tests/run.sh's timeout stands in).
 * Not under ThreadSanitizer, whose background thread is one too. */
static pthread_mutex_t dl_a = PTHREAD_MUTEX_INITIALIZER, dl_b = PTHREAD_MUTEX_INITIALIZER;

__attribute__((unused)) static int dl_task(void *arg)
{
    bool first = arg != NULL;
    CHECK_EQ(pthread_mutex_lock(first ? &dl_a : &dl_b), 0);
    sy_nanosleep(5 * MS);
    pthread_mutex_lock(first ? &dl_b : &dl_a); /* never returns */
    return 1;
}

__attribute__((unused)) static int init_deadlock(void *arg)
{
    (void)arg;
    CHECK(sy_spawn(dl_task, (void *)1, NULL) > 0);
    CHECK(sy_spawn(dl_task, NULL, NULL) > 0);
    return 0;
}

static void test_deadlock_reported(void)
{
#if !defined(__SANITIZE_THREAD__)
    /* the first case: no watchdog thread yet (and no fork, which qemu-user
     * does not survive in a process with threads) */
    for (int ncpu = 1; ncpu <= 2; ncpu++) {
        sy_config c = {.ncpu = ncpu};
        dl_a = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
        dl_b = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
        CHECK_EQ(sy_run(&c, init_deadlock, NULL), -EDEADLK);
    }
#endif
}

/* ---------------------------------------------------- the switch */

/* In a task, a mutex's owner field says whose implementation ran: ours
 * stores minus the task's pid, glibc's the host thread's id. */
static int init_owner_field(void *arg)
{
    bool off = arg != NULL;
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    CHECK_EQ(pthread_mutex_lock(&m), 0);
    int owner = m.__data.__owner;
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    if (off)
        CHECK_EQ(owner, (int)gettid());
    else
        CHECK_EQ(owner, -sy_self());
    return 0;
}

static void test_switch(void)
{
    sy_config c = {.ncpu = 1};
    CHECK_EQ(sy_run(&c, init_owner_field, NULL), 0);
    /* the same with the switch off, as SY_HOST_SYNC=off sets it before
     * main; set here between two runs, on an object made for the run (not
     * re-executed or forked: an emulator survives neither in a process
     * with threads) */
    sy__hostsync_off = true;
    CHECK_EQ(sy_run(&c, init_owner_field, (void *)1), 0);
    sy__hostsync_off = false;
}

int main(void)
{
    RUN(test_deadlock_reported);
    RUN(test_mutex_exclusion);
    RUN(test_waiter_sleeps);
    RUN(test_ownership);
    RUN(test_rings);
    RUN(test_rwlock);
    RUN(test_barrier_once_spin);
    RUN(test_timed);
    RUN(test_kill);
    RUN(test_mixed);
    RUN(test_errors);
    RUN(test_switch);
    return 0;
}
