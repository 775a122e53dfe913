/* Synchronization primitives: sy_mutex, sy_cond, sy_sem, sy_rwlock,
 * sy_waitgroup, sy_once - each on one CPU and across CPUs:
 *   - every error path (-EPERM outside a task and from a foreign thread,
 *     where only the _init calls work; -EINVAL for NULL and destroyed
 *     objects, also with a past deadline; -EPERM for an unlock by a
 *     non-owner, -EDEADLK for a relock, -EBUSY for a destroy with waiters,
 *     -EOVERFLOW at SY_SEM_MAX, a waitgroup below zero);
 *   - mutual exclusion counted under contention with a 100 us quantum
 *     (a non-atomic read-modify-write of a shared counter, exact at the
 *     end), a mutex waiter that a barging locker cannot starve;
 *   - no lost wakeup: a token passed round a ring of tasks through
 *     mutex+cond (signal, broadcast), sem and waitgroup (a lost wakeup
 *     hangs the ring: the runtime then reports a deadlock and sy_run
 *     returns -EDEADLK, which fails the case);
 *   - sy_kill of a task waiting in each blocking call: -EINTR, and nothing
 *     left behind (the next partner is the right one, the object can be
 *     destroyed), also with kills racing handoffs across CPUs;
 *   - deadlines: a past one times out at once (or succeeds when the call
 *     need not wait), a future one never early;
 *   - sy_ps's wait_kind / wchan / mutexes for tasks asleep in each wait;
 *   - rwlock readers together, writers alone, a writer not starved by a
 *     stream of readers, a writer's unlock letting in every waiting reader;
 *   - sy_once raced by 100 tasks: the initialiser runs once, and every
 *     caller returns after it completed.
 * Under ThreadSanitizer and valgrind (slow, no asynchronous preemption)
 * loops are bounded by time as well as by count. */
#include "test.h"

#include <errno.h>
#include <pthread.h>

#if defined(__SANITIZE_THREAD__) || defined(SY_VALGRIND)
#define SLOW 1
/* the tick never switches from its handler in those builds (src/preempt.c) */
#define NO_ASYNC_PREEMPTION 1
#else
#define SLOW 0
#endif

#define MS 1000000ll
#define SEC 1000000000ll

/* ------------------------------------------------------------- helpers */

/* Run `init` in a fresh runtime of `ncpu` CPUs, with the timer preempting
 * every `quantum_us` (0: the default); it must return 0 (not -EDEADLK). */
static void run_cfg(sy_fn init, void *arg, int ncpu, unsigned quantum_us)
{
    sy_config c = {.ncpu = ncpu, .quantum_us = quantum_us, .tick_us = quantum_us};
    int st = sy_run(&c, init, arg);
    if (st != 0) {
        fprintf(stderr, "sy_run (%d CPUs, quantum %u us) returned %d (%s), want 0\n", ncpu,
                quantum_us, st, st < 0 ? sy_strerror(st) : "status");
        exit(1);
    }
}

/* One CPU, then two. */
static void run_1_2(sy_fn init)
{
    run_cfg(init, NULL, 1, 0);
    run_cfg(init, NULL, 2, 0);
}

/* One CPU, then two, preempting every 100 us. */
static void run_1_2_fast(sy_fn init)
{
    run_cfg(init, NULL, 1, 100);
    run_cfg(init, NULL, 2, 100);
}

/* The ps entry of `pid`, however many tasks there are; 0 if it is gone. */
static int find_task(int pid, sy_task_info *out)
{
    int cap = 128;
    for (;;) {
        sy_task_info *v = malloc((size_t)cap * sizeof *v);
        CHECK(v);
        int n = sy_ps(v, cap);
        CHECK(n >= 0);
        if (n > cap) {
            free(v);
            cap = n + 64;
            continue;
        }
        for (int i = 0; i < n; i++)
            if (v[i].pid == pid) {
                *out = v[i];
                free(v);
                return 1;
            }
        free(v);
        return 0;
    }
}

/* Wait (up to 30 s) until task `pid` is SLEEPING in a wait of kind `kind`
 * on `obj` (NULL: any wchan). */
static void wait_asleep(int pid, const void *obj, const char *kind)
{
    uint64_t cap = mono_ns() + 30 * (uint64_t)SEC;
    sy_yield();
    for (;;) {
        sy_task_info ti;
        CHECK(find_task(pid, &ti));
        const char *k = ti.wait_kind ? ti.wait_kind : "(null)";
        if (ti.state == SY_SLEEPING && (!obj || ti.wchan == obj) && strcmp(k, kind) == 0)
            return;
        if (mono_ns() > cap) {
            fprintf(stderr, "task %d: state %s, wchan %p, wait_kind \"%s\"; want SLEEPING on %p, \"%s\"\n",
                    pid, sy_state_name(ti.state), ti.wchan, k, obj, kind);
            exit(1);
        }
        sy_nanosleep(50000);
    }
}

/* The caller's voluntary switches: unchanged across a call that did not
 * wait. */
static uint64_t my_nvcsw(void)
{
    sy_task_info ti;
    CHECK(find_task(sy_self(), &ti));
    return ti.nvcsw;
}

/* `call` returns `want` at once: the caller never slept in it */
#define NO_WAIT(call, want)                        \
    do {                                           \
        uint64_t nv_ = my_nvcsw();                 \
        CHECK_EQ(call, want);                      \
        CHECK_EQ(my_nvcsw(), nv_);                 \
    } while (0)

static void busy_work(int n)
{
    for (volatile int k = 0; k < n; k++)
        ;
}

/* The victim of a kill records what its blocking call returned here, then
 * returns VICTIM_STATUS. */
#define VICTIM_STATUS 42
static int vres;

static void set_vres(int r)
{
    __atomic_store_n(&vres, r, __ATOMIC_RELEASE);
}

/* Kill `pid` (asleep in a blocking call), reap it, and check that the call
 * returned -EINTR.  It returns at once after the call; it could only exit at
 * a tick instead (a killed task that runs a quantum), and only after it
 * recorded the result. */
static void kill_reap(int pid)
{
    CHECK_EQ(sy_kill(pid), 0);
    int st;
    CHECK_EQ(sy_wait(pid, &st, 0), pid);
    CHECK_EQ(__atomic_load_n(&vres, __ATOMIC_ACQUIRE), -EINTR);
    CHECK(st == VICTIM_STATUS || st == SY_EXIT_KILLED);
}

static void reap(int pid, int want)
{
    int st;
    CHECK_EQ(sy_wait(pid, &st, 0), pid);
    CHECK_EQ(st, want);
}

static void reap_all(void)
{
    int st;
    while (sy_wait(-1, &st, 0) > 0)
        CHECK_EQ(st, 0);
}

/* -------------------------------------------- -EPERM outside a runtime */

static sy_mutex om = SY_MUTEX_INIT;
static sy_cond oc = SY_COND_INIT;
static sy_sem os = SY_SEM_INIT(1);
static sy_rwlock orw = SY_RWLOCK_INIT;
static sy_waitgroup owg = SY_WAITGROUP_INIT;
static sy_once oo = SY_ONCE_INIT;
static int o_chan, o_runs;

static void count_run(void *arg)
{
    (void)arg;
    o_runs++;
}

/* Every call with valid objects from a thread that runs no task. */
static void check_eperm_all(void)
{
    CHECK(sy_now() > 0); /* the one that works anywhere */
    CHECK_EQ(sy_sleep_until(&o_chan, NULL, 0), -EPERM);
    CHECK_EQ(sy_sleep_until(&o_chan, NULL, SY_FOREVER), -EPERM);

    CHECK_EQ(sy_mutex_lock(&om), -EPERM);
    CHECK_EQ(sy_mutex_lock_until(&om, 0), -EPERM);
    CHECK_EQ(sy_mutex_trylock(&om), -EPERM);
    CHECK_EQ(sy_mutex_unlock(&om), -EPERM);
    CHECK_EQ(sy_mutex_owner(&om), -EPERM);
    CHECK_EQ(sy_mutex_destroy(&om), -EPERM);

    CHECK_EQ(sy_cond_wait(&oc, &om), -EPERM);
    CHECK_EQ(sy_cond_wait_until(&oc, &om, 0), -EPERM);
    CHECK_EQ(sy_cond_signal(&oc), -EPERM);
    CHECK_EQ(sy_cond_broadcast(&oc), -EPERM);
    CHECK_EQ(sy_cond_destroy(&oc), -EPERM);

    CHECK_EQ(sy_sem_wait(&os), -EPERM);
    CHECK_EQ(sy_sem_wait_until(&os, 0), -EPERM);
    CHECK_EQ(sy_sem_trywait(&os), -EPERM);
    CHECK_EQ(sy_sem_post(&os), -EPERM);
    CHECK_EQ(sy_sem_value(&os), -EPERM);
    CHECK_EQ(sy_sem_destroy(&os), -EPERM);

    CHECK_EQ(sy_rwlock_rdlock(&orw), -EPERM);
    CHECK_EQ(sy_rwlock_rdlock_until(&orw, 0), -EPERM);
    CHECK_EQ(sy_rwlock_tryrdlock(&orw), -EPERM);
    CHECK_EQ(sy_rwlock_wrlock(&orw), -EPERM);
    CHECK_EQ(sy_rwlock_wrlock_until(&orw, 0), -EPERM);
    CHECK_EQ(sy_rwlock_trywrlock(&orw), -EPERM);
    CHECK_EQ(sy_rwlock_unlock(&orw), -EPERM);
    CHECK_EQ(sy_rwlock_destroy(&orw), -EPERM);

    CHECK_EQ(sy_waitgroup_add(&owg, 1), -EPERM);
    CHECK_EQ(sy_waitgroup_done(&owg), -EPERM);
    CHECK_EQ(sy_waitgroup_wait(&owg), -EPERM);
    CHECK_EQ(sy_waitgroup_wait_until(&owg, 0), -EPERM);
    CHECK_EQ(sy_waitgroup_destroy(&owg), -EPERM);

    CHECK_EQ(sy_once_run(&oo, count_run, NULL), -EPERM);
    CHECK_EQ(o_runs, 0);
}

/* ... and nothing changed: the objects work as their initialisers say. */
static int init_after_eperm(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_owner(&om), 0);
    CHECK_EQ(sy_mutex_trylock(&om), 0);
    CHECK_EQ(sy_mutex_unlock(&om), 0);
    CHECK_EQ(sy_sem_value(&os), 1);
    CHECK_EQ(sy_rwlock_trywrlock(&orw), 0);
    CHECK_EQ(sy_rwlock_unlock(&orw), 0);
    CHECK_EQ(sy_waitgroup_wait_until(&owg, 0), 0); /* count still 0 */
    CHECK_EQ(sy_cond_signal(&oc), 0);
    CHECK_EQ(sy_once_run(&oo, count_run, NULL), 0);
    CHECK_EQ(o_runs, 1);
    return 0;
}

static void *foreign(void *arg)
{
    (void)arg;
    check_eperm_all();
    return NULL;
}

static int init_foreign(void *arg)
{
    (void)arg;
    /* a foreign thread cannot unlock the task's mutex either */
    CHECK_EQ(sy_mutex_lock(&om), 0);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, foreign, NULL), 0);
    CHECK_EQ(pthread_join(th, NULL), 0); /* blocks this CPU a moment: fine */
    CHECK_EQ(sy_mutex_owner(&om), sy_self());
    CHECK_EQ(sy_mutex_unlock(&om), 0);
    return 0;
}

static void test_eperm_outside(void)
{
    check_eperm_all(); /* before any runtime */
    run_cfg(init_after_eperm, NULL, 1, 0);
    o_runs = 0;
    oo = (sy_once)SY_ONCE_INIT;
    run_cfg(init_foreign, NULL, 2, 0); /* a thread of the program's own */
    CHECK_EQ(o_runs, 0);
    check_eperm_all(); /* and after */
}

/* The _init calls only fill the struct: they work anywhere (before the
 * runtime boots, say), and the objects they fill work in it.  The queries
 * are -EPERM outside, like every other call. */
struct inited {
    sy_mutex m;
    sy_cond cv;
    sy_sem s;
    sy_rwlock rw;
    sy_waitgroup wg;
};

static int init_use_inited(void *arg)
{
    struct inited *o = arg;
    CHECK_EQ(sy_mutex_owner(&o->m), 0);
    CHECK_EQ(sy_mutex_lock(&o->m), 0);
    CHECK_EQ(sy_cond_wait_until(&o->cv, &o->m, 0), -ETIMEDOUT);
    CHECK_EQ(sy_mutex_unlock(&o->m), 0);
    CHECK_EQ(sy_sem_value(&o->s), 3);
    CHECK_EQ(sy_rwlock_trywrlock(&o->rw), 0);
    CHECK_EQ(sy_rwlock_unlock(&o->rw), 0);
    CHECK_EQ(sy_waitgroup_wait_until(&o->wg, 0), 0);
    CHECK_EQ(sy_mutex_destroy(&o->m), 0);
    CHECK_EQ(sy_cond_destroy(&o->cv), 0);
    CHECK_EQ(sy_sem_destroy(&o->s), 0);
    CHECK_EQ(sy_rwlock_destroy(&o->rw), 0);
    CHECK_EQ(sy_waitgroup_destroy(&o->wg), 0);
    return 0;
}

static void test_init_outside(void)
{
    struct inited o;
    memset(&o, 0xa5, sizeof o); /* garbage */
    CHECK_EQ(sy_mutex_init(&o.m), 0);
    CHECK_EQ(sy_cond_init(&o.cv), 0);
    CHECK_EQ(sy_sem_init(&o.s, (unsigned)SY_SEM_MAX + 1u), -EINVAL);
    CHECK_EQ(sy_sem_init(&o.s, 3), 0);
    CHECK_EQ(sy_rwlock_init(&o.rw), 0);
    CHECK_EQ(sy_waitgroup_init(&o.wg), 0);
    CHECK_EQ(sy_mutex_init(NULL), -EINVAL);
    CHECK_EQ(sy_mutex_owner(&o.m), -EPERM);
    CHECK_EQ(sy_sem_value(&o.s), -EPERM);
    run_cfg(init_use_inited, &o, 1, 0);
}

/* A destroyed object is -EINVAL whatever the deadline: a call on one that
 * would have waited does not time out instead. */
static int init_destroyed_past_deadline(void *arg)
{
    (void)arg;
    sy_mutex m = SY_MUTEX_INIT;
    sy_cond cv = SY_COND_INIT;
    sy_sem s = SY_SEM_INIT(0);
    sy_rwlock rwl = SY_RWLOCK_INIT;
    sy_waitgroup w = SY_WAITGROUP_INIT;
    CHECK_EQ(sy_sem_destroy(&s), 0);
    CHECK_EQ(sy_sem_wait_until(&s, 0), -EINVAL);
    CHECK_EQ(sy_rwlock_destroy(&rwl), 0);
    CHECK_EQ(sy_rwlock_rdlock_until(&rwl, 0), -EINVAL);
    CHECK_EQ(sy_rwlock_wrlock_until(&rwl, 0), -EINVAL);
    CHECK_EQ(sy_waitgroup_add(&w, 1), 0);
    CHECK_EQ(sy_waitgroup_destroy(&w), 0);
    CHECK_EQ(sy_waitgroup_wait_until(&w, 0), -EINVAL);
    CHECK_EQ(sy_mutex_destroy(&m), 0);
    CHECK_EQ(sy_mutex_lock_until(&m, 0), -EINVAL);
    CHECK_EQ(sy_mutex_init(&m), 0);
    CHECK_EQ(sy_cond_destroy(&cv), 0);
    CHECK_EQ(sy_mutex_lock(&m), 0);
    CHECK_EQ(sy_cond_wait_until(&cv, &m, 0), -EINVAL);
    CHECK_EQ(sy_mutex_owner(&m), sy_self());
    CHECK_EQ(sy_mutex_unlock(&m), 0);
    return 0;
}

static void test_destroyed_past_deadline(void)
{
    run_cfg(init_destroyed_past_deadline, NULL, 1, 0);
}

/* ------------------------------------------------------- -EINVAL: NULL */

static int init_null(void *arg)
{
    (void)arg;
    sy_mutex m = SY_MUTEX_INIT;
    sy_cond cv = SY_COND_INIT;
    sy_sem s = SY_SEM_INIT(0);
    CHECK_EQ(sy_sleep_until(NULL, NULL, 0), -EINVAL);

    CHECK_EQ(sy_mutex_init(NULL), -EINVAL);
    CHECK_EQ(sy_mutex_destroy(NULL), -EINVAL);
    CHECK_EQ(sy_mutex_lock(NULL), -EINVAL);
    CHECK_EQ(sy_mutex_lock_until(NULL, 0), -EINVAL);
    CHECK_EQ(sy_mutex_lock_until(NULL, SY_FOREVER), -EINVAL);
    CHECK_EQ(sy_mutex_trylock(NULL), -EINVAL);
    CHECK_EQ(sy_mutex_unlock(NULL), -EINVAL);
    CHECK_EQ(sy_mutex_owner(NULL), -EINVAL);

    CHECK_EQ(sy_cond_init(NULL), -EINVAL);
    CHECK_EQ(sy_cond_destroy(NULL), -EINVAL);
    CHECK_EQ(sy_mutex_lock(&m), 0);
    CHECK_EQ(sy_cond_wait(NULL, &m), -EINVAL);
    CHECK_EQ(sy_cond_wait(&cv, NULL), -EINVAL);
    CHECK_EQ(sy_cond_wait_until(NULL, &m, SY_FOREVER), -EINVAL);
    CHECK_EQ(sy_cond_wait_until(&cv, NULL, SY_FOREVER), -EINVAL);
    CHECK_EQ(sy_mutex_owner(&m), sy_self()); /* still held */
    CHECK_EQ(sy_mutex_unlock(&m), 0);
    CHECK_EQ(sy_cond_signal(NULL), -EINVAL);
    CHECK_EQ(sy_cond_broadcast(NULL), -EINVAL);

    CHECK_EQ(sy_sem_init(NULL, 0), -EINVAL);
    CHECK_EQ(sy_sem_destroy(NULL), -EINVAL);
    CHECK_EQ(sy_sem_wait(NULL), -EINVAL);
    CHECK_EQ(sy_sem_wait_until(NULL, SY_FOREVER), -EINVAL);
    CHECK_EQ(sy_sem_trywait(NULL), -EINVAL);
    CHECK_EQ(sy_sem_post(NULL), -EINVAL);
    CHECK_EQ(sy_sem_value(NULL), -EINVAL);
    CHECK_EQ(sy_sem_value(&s), 0);

    CHECK_EQ(sy_rwlock_init(NULL), -EINVAL);
    CHECK_EQ(sy_rwlock_destroy(NULL), -EINVAL);
    CHECK_EQ(sy_rwlock_rdlock(NULL), -EINVAL);
    CHECK_EQ(sy_rwlock_rdlock_until(NULL, SY_FOREVER), -EINVAL);
    CHECK_EQ(sy_rwlock_tryrdlock(NULL), -EINVAL);
    CHECK_EQ(sy_rwlock_wrlock(NULL), -EINVAL);
    CHECK_EQ(sy_rwlock_wrlock_until(NULL, SY_FOREVER), -EINVAL);
    CHECK_EQ(sy_rwlock_trywrlock(NULL), -EINVAL);
    CHECK_EQ(sy_rwlock_unlock(NULL), -EINVAL);

    CHECK_EQ(sy_waitgroup_init(NULL), -EINVAL);
    CHECK_EQ(sy_waitgroup_destroy(NULL), -EINVAL);
    CHECK_EQ(sy_waitgroup_add(NULL, 1), -EINVAL);
    CHECK_EQ(sy_waitgroup_done(NULL), -EINVAL);
    CHECK_EQ(sy_waitgroup_wait(NULL), -EINVAL);
    CHECK_EQ(sy_waitgroup_wait_until(NULL, SY_FOREVER), -EINVAL);

    CHECK_EQ(sy_once_run(NULL, count_run, NULL), -EINVAL);
    return 0;
}

static void test_null_objects(void)
{
    run_cfg(init_null, NULL, 1, 0);
}

/* ---------------------------------------------------------- mutex rules */

static sy_mutex rm;

static int other_task_checks(void *arg)
{
    int holder = (int)(long)arg;
    CHECK_EQ(sy_mutex_owner(&rm), holder);
    CHECK_EQ(sy_mutex_unlock(&rm), -EPERM); /* not the owner */
    CHECK_EQ(sy_mutex_trylock(&rm), -EBUSY);
    CHECK_EQ(sy_mutex_lock_until(&rm, 0), -ETIMEDOUT);
    CHECK_EQ(sy_mutex_lock_until(&rm, sy_now() - 1), -ETIMEDOUT);
    CHECK_EQ(sy_mutex_owner(&rm), holder); /* unchanged */
    sy_task_info ti;
    CHECK(find_task(sy_self(), &ti));
    CHECK_EQ(ti.mutexes, 0);
    return 0;
}

static int locker(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_lock(&rm), 0);
    CHECK_EQ(sy_mutex_owner(&rm), sy_self());
    CHECK_EQ(sy_mutex_unlock(&rm), 0);
    return 0;
}

static int init_mutex_rules(void *arg)
{
    (void)arg;
    sy_mutex m2 = SY_MUTEX_INIT;
    sy_task_info ti;
    int me = sy_self();
    memset(&rm, 0, sizeof rm); /* zeros are a valid initialisation */
    CHECK_EQ(sy_mutex_owner(&rm), 0);
    CHECK_EQ(sy_mutex_unlock(&rm), -EPERM); /* unlocked */
    CHECK_EQ(sy_mutex_lock(&rm), 0);
    CHECK_EQ(sy_mutex_owner(&rm), me);
    CHECK_EQ(sy_mutex_lock(&rm), -EDEADLK);
    CHECK_EQ(sy_mutex_lock_until(&rm, 0), -EDEADLK);
    CHECK_EQ(sy_mutex_lock_until(&rm, SY_FOREVER), -EDEADLK);
    CHECK_EQ(sy_mutex_trylock(&rm), -EDEADLK);
    CHECK_EQ(sy_mutex_destroy(&rm), -EBUSY); /* locked */
    CHECK_EQ(sy_mutex_owner(&rm), me);       /* and unchanged */
    CHECK(find_task(me, &ti));
    CHECK_EQ(ti.mutexes, 1);
    CHECK_EQ(sy_mutex_trylock(&m2), 0);
    CHECK(find_task(me, &ti));
    CHECK_EQ(ti.mutexes, 2);

    int c = sy_spawn(other_task_checks, (void *)(long)me, NULL);
    reap(c, 0);

    CHECK_EQ(sy_mutex_unlock(&m2), 0);
    CHECK_EQ(sy_mutex_unlock(&rm), 0);
    CHECK_EQ(sy_mutex_unlock(&rm), -EPERM);
    CHECK_EQ(sy_mutex_owner(&rm), 0);
    CHECK(find_task(me, &ti));
    CHECK_EQ(ti.mutexes, 0);
    /* a past deadline still locks a free mutex */
    CHECK_EQ(sy_mutex_lock_until(&rm, 0), 0);
    CHECK_EQ(sy_mutex_unlock(&rm), 0);
    CHECK_EQ(sy_mutex_lock_until(&rm, SY_FOREVER), 0);
    CHECK_EQ(sy_mutex_unlock(&rm), 0);

    /* destroy while a task waits: -EBUSY, nothing changes, and the waiter
     * still gets it */
    CHECK_EQ(sy_mutex_lock(&rm), 0);
    c = sy_spawn(locker, NULL, NULL);
    wait_asleep(c, &rm, "mutex");
    CHECK_EQ(sy_mutex_destroy(&rm), -EBUSY);
    CHECK_EQ(sy_mutex_owner(&rm), me);
    CHECK_EQ(sy_mutex_unlock(&rm), 0);
    reap(c, 0);
    CHECK_EQ(sy_mutex_owner(&rm), 0);
    CHECK_EQ(sy_mutex_destroy(&rm), 0);

    /* destroyed: every call -EINVAL, until init */
    CHECK_EQ(sy_mutex_lock(&rm), -EINVAL);
    CHECK_EQ(sy_mutex_lock_until(&rm, 0), -EINVAL);
    CHECK_EQ(sy_mutex_trylock(&rm), -EINVAL);
    CHECK_EQ(sy_mutex_unlock(&rm), -EINVAL);
    CHECK_EQ(sy_mutex_owner(&rm), -EINVAL);
    CHECK_EQ(sy_mutex_destroy(&rm), -EINVAL);
    CHECK_EQ(sy_mutex_init(&rm), 0);
    CHECK_EQ(sy_mutex_lock(&rm), 0);
    CHECK_EQ(sy_mutex_unlock(&rm), 0);
    CHECK_EQ(sy_mutex_destroy(&rm), 0);
    /* init over garbage */
    memset(&rm, 0xa5, sizeof rm);
    CHECK_EQ(sy_mutex_init(&rm), 0);
    CHECK_EQ(sy_mutex_owner(&rm), 0);
    CHECK_EQ(sy_mutex_trylock(&rm), 0);
    CHECK_EQ(sy_mutex_unlock(&rm), 0);
    CHECK_EQ(sy_mutex_destroy(&m2), 0);
    return 0;
}

static void test_mutex_rules(void)
{
    run_1_2(init_mutex_rules);
}

/* ------------------------------------- mutual exclusion under contention */

#define CONTENDERS 6
#define CONT_ITERS (SLOW ? 2048 : 16384) /* a multiple of 64 */
static sy_mutex cm;
static long shared_count; /* plain: only under cm */
static int inside;
static long total_iters, total_preempts;
static uint64_t cont_until;

static int contender(void *arg)
{
    long id = (long)arg, n = 0;
    for (;;) {
        if (n % 64 == 0 && (n >= CONT_ITERS || mono_ns() > cont_until))
            break;
        int r = 0;
        switch (id % 3) {
        case 0:
            r = sy_mutex_lock(&cm);
            break;
        case 1:
            while ((r = sy_mutex_trylock(&cm)) == -EBUSY) {
                sy_yield();
                CHECK(mono_ns() < cont_until + 60 * (uint64_t)SEC); /* not for ever */
            }
            break;
        case 2:
            r = sy_mutex_lock_until(&cm, sy_now() + 600 * SEC);
            break;
        }
        CHECK_EQ(r, 0);
        CHECK_EQ(__atomic_add_fetch(&inside, 1, __ATOMIC_RELAXED), 1);
        long v = shared_count;
        busy_work(200); /* the timer preempts in here too */
        shared_count = v + 1;
        __atomic_sub_fetch(&inside, 1, __ATOMIC_RELAXED);
        CHECK_EQ(sy_mutex_unlock(&cm), 0);
        n++;
        busy_work(20);
    }
    sy_task_info ti;
    CHECK(find_task(sy_self(), &ti));
    __atomic_add_fetch(&total_preempts, (long)ti.nivcsw, __ATOMIC_RELAXED);
    __atomic_add_fetch(&total_iters, n, __ATOMIC_RELAXED);
    return 0;
}

static int init_contention(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_init(&cm), 0);
    shared_count = total_iters = total_preempts = 0;
    inside = 0;
    cont_until = mono_ns() + (SLOW ? 4 : 2) * (uint64_t)SEC;
    for (long i = 0; i < CONTENDERS; i++)
        CHECK(sy_spawn(contender, (void *)i, NULL) > 0);
    reap_all();
    CHECK_EQ(shared_count, total_iters);
    CHECK(total_iters >= CONTENDERS * 64);
    CHECK_EQ(sy_mutex_owner(&cm), 0);
    CHECK_EQ(sy_mutex_destroy(&cm), 0);
    fprintf(stderr, "[%d CPU: %ld, %ld preemptions] ", sy_ncpu(), total_iters, total_preempts);
#if !defined(NO_ASYNC_PREEMPTION)
    CHECK(total_preempts > 0);
#endif
    return 0;
}

static void test_mutex_contention(void)
{
    run_1_2_fast(init_contention);
}

/* A task that unlocks and locks again at once (barging) cannot starve a
 * waiter: once it has waited 1 ms, unlock hands the mutex to it.
 *   One CPU, preempted every 100 us, the barger inside its ~10 us section
 *   nearly all the time: the waiter runs when the barger is preempted, and
 *   almost always finds the mutex held.  Without the handover it got the
 *   mutex about once a second (374095 barger rounds in one wait, and not
 *   its 100 rounds in 20 s); with it, a wait spans a few hundred barger
 *   rounds (1 ms of them).  A loaded machine only makes that fewer.
 *   Two CPUs, each task pinned to one: a sanity check (there the woken
 *   waiter often wins the race anyway). */
#define STARVE_ROUNDS 100
#define STARVE_MAX_ROUNDS 20000
static sy_mutex sm;
static int starve_done;
static long starve_hog_rounds, starve_max_rounds;
static uint64_t starve_cap, starve_worst;

static int barger(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&starve_done, __ATOMIC_ACQUIRE) && mono_ns() < starve_cap) {
        CHECK_EQ(sy_mutex_lock(&sm), 0);
        busy_work(sy_ncpu() == 1 ? 20000 : 500);
        __atomic_store_n(&starve_hog_rounds, starve_hog_rounds + 1, __ATOMIC_RELAXED);
        CHECK_EQ(sy_mutex_unlock(&sm), 0);
#if defined(NO_ASYNC_PREEMPTION)
        if (starve_hog_rounds % 64 == 0)
            sy_yield(); /* no preemption here: let the other one run */
#else
        if (sy_ncpu() > 1 && starve_hog_rounds % 64 == 0)
            sy_yield(); /* its CPU's other tasks run */
#endif
    }
    return 0;
}

static int starveling(void *arg)
{
    (void)arg;
    sy_nanosleep(2 * MS); /* the barger holds it most of the time by now */
    for (int i = 0; i < STARVE_ROUNDS && mono_ns() < starve_cap; i++) {
        uint64_t t0 = mono_ns();
        long r0 = __atomic_load_n(&starve_hog_rounds, __ATOMIC_RELAXED);
        CHECK_EQ(sy_mutex_lock(&sm), 0);
        uint64_t w = mono_ns() - t0;
        long r = __atomic_load_n(&starve_hog_rounds, __ATOMIC_RELAXED) - r0;
        if (w > starve_worst)
            starve_worst = w;
        if (r > starve_max_rounds)
            starve_max_rounds = r;
        busy_work(100);
        CHECK_EQ(sy_mutex_unlock(&sm), 0);
        if (i == STARVE_ROUNDS - 1)
            __atomic_store_n(&starve_done, 1, __ATOMIC_RELEASE);
        sy_nanosleep(100000);
    }
    return 0;
}

static int init_starve(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_init(&sm), 0);
    starve_done = 0;
    starve_worst = 0;
    starve_hog_rounds = starve_max_rounds = 0;
    starve_cap = mono_ns() + 20 * (uint64_t)SEC;
    int two = sy_ncpu() > 1;
    sy_attr a = {.flags = two ? SY_ATTR_PIN : 0, .cpu = 0};
    sy_attr b = {.flags = two ? SY_ATTR_PIN : 0, .cpu = 1};
    int h = sy_spawn(barger, NULL, &a);
    int s = sy_spawn(starveling, NULL, &b);
    reap(s, 0);
    reap(h, 0);
    fprintf(stderr, "[%d CPU: worst wait %.1f ms, %ld barger rounds in it, %ld in all] ",
            sy_ncpu(), starve_worst / 1e6, starve_max_rounds, starve_hog_rounds);
    CHECK_EQ(starve_done, 1); /* all its rounds before the cap */
    if (!two)
        CHECK(starve_max_rounds < STARVE_MAX_ROUNDS);
    CHECK_EQ(sy_mutex_destroy(&sm), 0);
    return 0;
}

static void test_mutex_no_starvation(void)
{
    run_cfg(init_starve, NULL, 1, 100);
    run_cfg(init_starve, NULL, 2, 0);
}

/* A task that exits holding mutexes: sy_mutex_owner and sy_ps name it
 * while it lives (the runtime reports it on stderr when it exits). */
static sy_mutex xm1, xm2;
static sy_sem xgate;

static int exit_holding(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_lock(&xm1), 0);
    CHECK_EQ(sy_mutex_lock(&xm2), 0);
    CHECK_EQ(sy_sem_wait(&xgate), 0);
    return 5; /* holding both */
}

static int init_exit_holding(void *arg)
{
    (void)arg;
    memset(&xm1, 0, sizeof xm1);
    memset(&xm2, 0, sizeof xm2);
    CHECK_EQ(sy_sem_init(&xgate, 0), 0);
    int c = sy_spawn(exit_holding, NULL, &(sy_attr){.name = "holder"});
    wait_asleep(c, &xgate, "sem");
    CHECK_EQ(sy_mutex_owner(&xm1), c);
    CHECK_EQ(sy_mutex_owner(&xm2), c);
    sy_task_info ti;
    CHECK(find_task(c, &ti));
    CHECK_EQ(ti.mutexes, 2);
    CHECK(find_task(sy_self(), &ti));
    CHECK_EQ(ti.mutexes, 0);
    CHECK_EQ(sy_mutex_trylock(&xm1), -EBUSY);
    CHECK_EQ(sy_mutex_unlock(&xm1), -EPERM);
    CHECK_EQ(sy_mutex_destroy(&xm1), -EBUSY);
    fprintf(stderr, "[a warning about pid %d holding 2 mutexes is expected:]\n", c);
    CHECK_EQ(sy_sem_post(&xgate), 0);
    reap(c, 5);
    return 0;
}

static void test_mutex_exit_holding(void)
{
    run_cfg(init_exit_holding, NULL, 1, 0);
    fprintf(stderr, "  %-40s", "");
}

/* ----------------------------------------------------------------- cond */

static sy_mutex tm;
static sy_cond tc;
static int tickets, waiting, passed;

static int ticket_waiter(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_lock(&tm), 0);
    waiting++;
    while (tickets == 0) {
        CHECK_EQ(sy_cond_wait(&tc, &tm), 0);
        CHECK_EQ(sy_mutex_owner(&tm), sy_self());
    }
    tickets--;
    waiting--;
    passed++;
    CHECK_EQ(sy_mutex_unlock(&tm), 0);
    return 0;
}

/* Poll (up to 30 s), under tm, until *v == want; returns with tm held. */
static void poll_locked(int *v, int want)
{
    uint64_t cap = mono_ns() + 30 * (uint64_t)SEC;
    for (;;) {
        CHECK_EQ(sy_mutex_lock(&tm), 0);
        if (*v == want)
            return;
        if (mono_ns() > cap) {
            fprintf(stderr, "poll_locked: %d, want %d\n", *v, want);
            exit(1);
        }
        CHECK_EQ(sy_mutex_unlock(&tm), 0);
        sy_nanosleep(100000);
    }
}

static int wrong_waiter(void *arg)
{
    (void)arg;
    /* tm is held by init: waiting with it is not ours to release */
    CHECK_EQ(sy_cond_wait(&tc, &tm), -EPERM);
    CHECK_EQ(sy_cond_wait_until(&tc, &tm, 0), -EPERM);
    return 0;
}

static int init_cond(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_init(&tm), 0);
    CHECK_EQ(sy_cond_init(&tc), 0);
    tickets = waiting = passed = 0;
    CHECK_EQ(sy_cond_signal(&tc), 0); /* nobody waits: nothing happens */
    CHECK_EQ(sy_cond_broadcast(&tc), 0);
    CHECK_EQ(sy_cond_wait(&tc, &tm), -EPERM); /* not holding it */
    CHECK_EQ(sy_cond_wait_until(&tc, &tm, SY_FOREVER), -EPERM);
    CHECK_EQ(sy_mutex_lock(&tm), 0);
    reap(sy_spawn(wrong_waiter, NULL, NULL), 0);
    CHECK_EQ(sy_mutex_unlock(&tm), 0);

    for (int i = 0; i < 5; i++)
        CHECK(sy_spawn(ticket_waiter, NULL, NULL) > 0);
    poll_locked(&waiting, 5); /* all five in sy_cond_wait: they hold tm until */
    CHECK_EQ(sy_cond_destroy(&tc), -EBUSY);
    tickets = 1;
    CHECK_EQ(sy_cond_signal(&tc), 0);
    CHECK_EQ(sy_mutex_unlock(&tm), 0);
    poll_locked(&passed, 1);
    CHECK_EQ(sy_mutex_unlock(&tm), 0);
    sy_nanosleep(10 * MS);
    CHECK_EQ(sy_mutex_lock(&tm), 0);
    CHECK_EQ(passed, 1); /* one ticket, one passed */
    CHECK_EQ(waiting, 4);
    tickets = 4;
    CHECK_EQ(sy_cond_broadcast(&tc), 0);
    CHECK_EQ(sy_mutex_unlock(&tm), 0);
    reap_all();
    CHECK_EQ(passed, 5);
    CHECK_EQ(tickets, 0);
    CHECK_EQ(sy_cond_destroy(&tc), 0);
    CHECK_EQ(sy_cond_signal(&tc), -EINVAL);
    CHECK_EQ(sy_cond_broadcast(&tc), -EINVAL);
    CHECK_EQ(sy_mutex_lock(&tm), 0);
    CHECK_EQ(sy_cond_wait(&tc, &tm), -EINVAL);
    CHECK_EQ(sy_cond_wait_until(&tc, &tm, SY_FOREVER), -EINVAL);
    CHECK_EQ(sy_mutex_owner(&tm), sy_self());
    CHECK_EQ(sy_mutex_unlock(&tm), 0);
    CHECK_EQ(sy_cond_destroy(&tc), -EINVAL);
    CHECK_EQ(sy_cond_init(&tc), 0);
    CHECK_EQ(sy_cond_destroy(&tc), 0);
    CHECK_EQ(sy_mutex_destroy(&tm), 0);
    return 0;
}

static void test_cond(void)
{
    run_1_2(init_cond);
}

/* ------------------------------------------------------------------ sem */

static sy_sem fs;

static int sem_taker(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_sem_wait(&fs), 0);
    return 0;
}

static int init_sem(void *arg)
{
    (void)arg;
    sy_sem s = SY_SEM_INIT(3), top = SY_SEM_INIT(SY_SEM_MAX);
    CHECK_EQ(sy_sem_value(&s), 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(sy_sem_trywait(&s), 0);
    CHECK_EQ(sy_sem_trywait(&s), -EAGAIN);
    CHECK_EQ(sy_sem_value(&s), 0);
    CHECK_EQ(sy_sem_wait_until(&s, 0), -ETIMEDOUT);
    CHECK_EQ(sy_sem_post(&s), 0);
    CHECK_EQ(sy_sem_value(&s), 1);
    CHECK_EQ(sy_sem_wait_until(&s, 0), 0); /* need not wait */
    CHECK_EQ(sy_sem_post(&s), 0);
    CHECK_EQ(sy_sem_wait(&s), 0);
    CHECK_EQ(sy_sem_value(&s), 0);

    CHECK_EQ(sy_sem_value(&top), SY_SEM_MAX);
    CHECK_EQ(sy_sem_post(&top), -EOVERFLOW);
    CHECK_EQ(sy_sem_value(&top), SY_SEM_MAX);
    CHECK_EQ(sy_sem_trywait(&top), 0);
    CHECK_EQ(sy_sem_post(&top), 0);
    CHECK_EQ(sy_sem_post(&top), -EOVERFLOW);
    CHECK_EQ(sy_sem_init(&s, SY_SEM_MAX), 0);
    CHECK_EQ(sy_sem_post(&s), -EOVERFLOW);
    CHECK_EQ(sy_sem_init(&s, (unsigned)SY_SEM_MAX + 1u), -EINVAL);
    CHECK_EQ(sy_sem_init(&s, 0xffffffffu), -EINVAL);
    CHECK_EQ(sy_sem_init(&s, 2), 0);
    CHECK_EQ(sy_sem_value(&s), 2);
    CHECK_EQ(sy_sem_destroy(&s), 0);
    CHECK_EQ(sy_sem_value(&s), -EINVAL);
    CHECK_EQ(sy_sem_post(&s), -EINVAL);
    CHECK_EQ(sy_sem_wait(&s), -EINVAL);
    CHECK_EQ(sy_sem_wait_until(&s, 0), -EINVAL);
    CHECK_EQ(sy_sem_trywait(&s), -EINVAL);
    CHECK_EQ(sy_sem_destroy(&s), -EINVAL);

    /* post hands the unit to the longest waiter: a trywait right after it
     * finds nothing, and the first sleeper is the first to finish */
    CHECK_EQ(sy_sem_init(&fs, 0), 0);
    int pid[3];
    for (int i = 0; i < 3; i++) {
        pid[i] = sy_spawn(sem_taker, NULL, NULL);
        wait_asleep(pid[i], &fs, "sem");
    }
    CHECK_EQ(sy_sem_destroy(&fs), -EBUSY);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(sy_sem_post(&fs), 0);
        CHECK_EQ(sy_sem_trywait(&fs), -EAGAIN); /* handed over already */
        CHECK_EQ(sy_sem_value(&fs), 0);
        int st;
        CHECK_EQ(sy_wait(-1, &st, 0), pid[i]);
        CHECK_EQ(st, 0);
    }
    CHECK_EQ(sy_sem_destroy(&fs), 0);
    return 0;
}

static void test_sem(void)
{
    run_1_2(init_sem);
}

/* A semaphore of 3 as a limiter for 8 tasks, preempted every 100 us. */
#define PERMITS 3
static sy_sem ls;
static int ls_inside, ls_max;
static long ls_rounds;
static uint64_t ls_until;

static int limited(void *arg)
{
    (void)arg;
    long n = 0;
    while (n < 4000 && (n % 16 || mono_ns() < ls_until)) {
        CHECK_EQ(n % 2 ? sy_sem_wait(&ls) : sy_sem_wait_until(&ls, sy_now() + 600 * SEC), 0);
        int in = __atomic_add_fetch(&ls_inside, 1, __ATOMIC_RELAXED);
        CHECK(in <= PERMITS);
        int m = __atomic_load_n(&ls_max, __ATOMIC_RELAXED);
        while (in > m && !__atomic_compare_exchange_n(&ls_max, &m, in, 0, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED))
            ;
        busy_work(300);
        if (n % 5 == 0)
            sy_yield();
        __atomic_sub_fetch(&ls_inside, 1, __ATOMIC_RELAXED);
        CHECK_EQ(sy_sem_post(&ls), 0);
        n++;
    }
    __atomic_add_fetch(&ls_rounds, n, __ATOMIC_RELAXED);
    return 0;
}

static int init_limiter(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_sem_init(&ls, PERMITS), 0);
    ls_inside = ls_max = 0;
    ls_rounds = 0;
    ls_until = mono_ns() + 2 * (uint64_t)SEC;
    for (int i = 0; i < 8; i++)
        sy_spawn(limited, NULL, NULL);
    reap_all();
    CHECK_EQ(sy_sem_value(&ls), PERMITS);
    CHECK(ls_max >= 2 && ls_max <= PERMITS); /* they yield inside: others come in */
    CHECK_EQ(sy_sem_destroy(&ls), 0);
    return 0;
}

static void test_sem_limiter(void)
{
    run_1_2_fast(init_limiter);
}

/* --------------------------------------------------------------- rwlock */

static sy_rwlock rw;

static int rw_other_while_read(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_rwlock_tryrdlock(&rw), 0); /* readers share */
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    CHECK_EQ(sy_rwlock_rdlock_until(&rw, 0), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    CHECK_EQ(sy_rwlock_trywrlock(&rw), -EBUSY);
    CHECK_EQ(sy_rwlock_wrlock_until(&rw, 0), -ETIMEDOUT);
    return 0;
}

static int rw_other_while_written(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_rwlock_tryrdlock(&rw), -EBUSY);
    CHECK_EQ(sy_rwlock_trywrlock(&rw), -EBUSY);
    CHECK_EQ(sy_rwlock_rdlock_until(&rw, 0), -ETIMEDOUT);
    CHECK_EQ(sy_rwlock_wrlock_until(&rw, 0), -ETIMEDOUT);
    CHECK_EQ(sy_rwlock_unlock(&rw), -EPERM); /* not the writer */
    return 0;
}

static int rw_writer_once(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_rwlock_wrlock(&rw), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    return 0;
}

static int rw_new_reader(void *arg)
{
    (void)arg;
    /* a writer waits: new readers are kept out */
    CHECK_EQ(sy_rwlock_tryrdlock(&rw), -EBUSY);
    CHECK_EQ(sy_rwlock_rdlock_until(&rw, 0), -ETIMEDOUT);
    int64_t d = sy_now() + 20 * MS;
    CHECK_EQ(sy_rwlock_rdlock_until(&rw, d), -ETIMEDOUT);
    CHECK(sy_now() >= d);
    return 0;
}

/* a writer's unlock lets in every reader that waited: each waits inside
 * until all are inside together */
static int rw_in;
static int rw_gather_reader(void *arg)
{
    int n = (int)(long)arg;
    CHECK_EQ(sy_rwlock_rdlock(&rw), 0);
    __atomic_add_fetch(&rw_in, 1, __ATOMIC_RELAXED);
    uint64_t cap = mono_ns() + 30 * (uint64_t)SEC;
    while (__atomic_load_n(&rw_in, __ATOMIC_RELAXED) < n) {
        CHECK(mono_ns() < cap);
        sy_nanosleep(100000);
    }
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    return 0;
}

static int init_rwlock_rules(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_rwlock_init(&rw), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), -EPERM); /* not held */
    CHECK_EQ(sy_rwlock_rdlock(&rw), 0);
    reap(sy_spawn(rw_other_while_read, NULL, NULL), 0);
    CHECK_EQ(sy_rwlock_tryrdlock(&rw), 0); /* a second read */
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), -EPERM);

    CHECK_EQ(sy_rwlock_wrlock(&rw), 0);
    CHECK_EQ(sy_rwlock_wrlock(&rw), -EDEADLK);
    CHECK_EQ(sy_rwlock_wrlock_until(&rw, 0), -EDEADLK);
    reap(sy_spawn(rw_other_while_written, NULL, NULL), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), -EPERM);
    CHECK_EQ(sy_rwlock_trywrlock(&rw), 0);
    int tr = sy_rwlock_tryrdlock(&rw); /* the writer itself (the header says -EBUSY) */
    CHECK(tr == -EBUSY || tr == -EDEADLK);
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    CHECK_EQ(sy_rwlock_wrlock_until(&rw, 0), 0); /* need not wait */
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    CHECK_EQ(sy_rwlock_rdlock_until(&rw, 0), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);

    /* a waiting writer keeps new readers out; destroy with it waiting */
    CHECK_EQ(sy_rwlock_rdlock(&rw), 0);
    int w = sy_spawn(rw_writer_once, NULL, NULL);
    wait_asleep(w, &rw, "rwlock");
    CHECK_EQ(sy_rwlock_destroy(&rw), -EBUSY);
    reap(sy_spawn(rw_new_reader, NULL, NULL), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    reap(w, 0);
    CHECK_EQ(sy_rwlock_tryrdlock(&rw), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);

    /* a writer's unlock admits every waiting reader at once */
    rw_in = 0;
    CHECK_EQ(sy_rwlock_wrlock(&rw), 0);
    int r[5];
    for (int i = 0; i < 5; i++) {
        r[i] = sy_spawn(rw_gather_reader, (void *)5L, NULL);
        wait_asleep(r[i], &rw, "rwlock");
    }
    CHECK_EQ(sy_rwlock_destroy(&rw), -EBUSY);
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    for (int i = 0; i < 5; i++)
        reap(r[i], 0);
    CHECK_EQ(rw_in, 5);

    CHECK_EQ(sy_rwlock_destroy(&rw), 0);
    CHECK_EQ(sy_rwlock_rdlock(&rw), -EINVAL);
    CHECK_EQ(sy_rwlock_rdlock_until(&rw, 0), -EINVAL);
    CHECK_EQ(sy_rwlock_tryrdlock(&rw), -EINVAL);
    CHECK_EQ(sy_rwlock_wrlock(&rw), -EINVAL);
    CHECK_EQ(sy_rwlock_wrlock_until(&rw, 0), -EINVAL);
    CHECK_EQ(sy_rwlock_trywrlock(&rw), -EINVAL);
    CHECK_EQ(sy_rwlock_unlock(&rw), -EINVAL);
    CHECK_EQ(sy_rwlock_destroy(&rw), -EINVAL);
    CHECK_EQ(sy_rwlock_init(&rw), 0);
    CHECK_EQ(sy_rwlock_trywrlock(&rw), 0);
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    CHECK_EQ(sy_rwlock_destroy(&rw), 0);
    return 0;
}

static void test_rwlock_rules(void)
{
    run_1_2(init_rwlock_rules);
}

/* Readers together (they yield inside: on one CPU too), writers alone. */
static int rd_in, rd_max, wr_in;
static long wr_count; /* plain: under the write lock */
static long rd_rounds;
static uint64_t rwc_until;

static int rwc_reader(void *arg)
{
    (void)arg;
    long n = 0;
    while (n < 3000 && (n % 16 || mono_ns() < rwc_until)) {
        CHECK_EQ(n % 2 ? sy_rwlock_rdlock(&rw) : sy_rwlock_rdlock_until(&rw, sy_now() + 600 * SEC),
                 0);
        int in = __atomic_add_fetch(&rd_in, 1, __ATOMIC_RELAXED);
        CHECK_EQ(__atomic_load_n(&wr_in, __ATOMIC_RELAXED), 0);
        int m = __atomic_load_n(&rd_max, __ATOMIC_RELAXED);
        while (in > m && !__atomic_compare_exchange_n(&rd_max, &m, in, 0, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED))
            ;
        long seen = wr_count; /* readers may read what writers write */
        busy_work(200);
        if (n % 3 == 0)
            sy_yield();
        CHECK_EQ(wr_count, seen); /* no writer came in meanwhile */
        __atomic_sub_fetch(&rd_in, 1, __ATOMIC_RELAXED);
        CHECK_EQ(sy_rwlock_unlock(&rw), 0);
        n++;
    }
    __atomic_add_fetch(&rd_rounds, n, __ATOMIC_RELAXED);
    return 0;
}

static long wr_done;
static int rwc_writer(void *arg)
{
    (void)arg;
    long n = 0;
    while (n < 1000 && (n % 16 || mono_ns() < rwc_until)) {
        CHECK_EQ(n % 2 ? sy_rwlock_wrlock(&rw) : sy_rwlock_wrlock_until(&rw, sy_now() + 600 * SEC),
                 0);
        CHECK_EQ(__atomic_add_fetch(&wr_in, 1, __ATOMIC_RELAXED), 1);
        CHECK_EQ(__atomic_load_n(&rd_in, __ATOMIC_RELAXED), 0);
        long v = wr_count;
        busy_work(200);
        if (n % 4 == 0)
            sy_yield();
        wr_count = v + 1;
        __atomic_sub_fetch(&wr_in, 1, __ATOMIC_RELAXED);
        CHECK_EQ(sy_rwlock_unlock(&rw), 0);
        n++;
    }
    __atomic_add_fetch(&wr_done, n, __ATOMIC_RELAXED);
    return 0;
}

static int init_rw_concurrent(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_rwlock_init(&rw), 0);
    rd_in = rd_max = wr_in = 0;
    wr_count = rd_rounds = wr_done = 0;
    rwc_until = mono_ns() + 2 * (uint64_t)SEC;
    for (int i = 0; i < 6; i++)
        sy_spawn(rwc_reader, NULL, NULL);
    for (int i = 0; i < 2; i++)
        sy_spawn(rwc_writer, NULL, NULL);
    reap_all();
    CHECK_EQ(wr_count, wr_done);
    fprintf(stderr, "[%d CPU: max %d readers in] ", sy_ncpu(), rd_max);
    CHECK(rd_max > 1);
    CHECK_EQ(sy_rwlock_trywrlock(&rw), 0); /* nobody left inside */
    CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    CHECK_EQ(sy_rwlock_destroy(&rw), 0);
    return 0;
}

static void test_rwlock_concurrent(void)
{
    run_1_2_fast(init_rw_concurrent);
}

/* A writer is not starved by readers that overlap so that one is always
 * inside. */
#define WRITES 20
static int stream_stop;
static uint64_t stream_cap;
static int stream_writes;

static int stream_reader(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&stream_stop, __ATOMIC_ACQUIRE) && mono_ns() < stream_cap) {
        CHECK_EQ(sy_rwlock_rdlock(&rw), 0);
        __atomic_add_fetch(&rd_in, 1, __ATOMIC_RELAXED);
        sy_nanosleep(300000);
        __atomic_sub_fetch(&rd_in, 1, __ATOMIC_RELAXED);
        CHECK_EQ(sy_rwlock_unlock(&rw), 0);
    }
    return 0;
}

static int stream_writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < WRITES && mono_ns() < stream_cap; i++) {
        CHECK_EQ(sy_rwlock_wrlock(&rw), 0);
        CHECK_EQ(__atomic_load_n(&rd_in, __ATOMIC_RELAXED), 0);
        stream_writes++;
        CHECK_EQ(sy_rwlock_unlock(&rw), 0);
        sy_nanosleep(MS);
    }
    __atomic_store_n(&stream_stop, 1, __ATOMIC_RELEASE);
    return 0;
}

static int init_writer_not_starved(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_rwlock_init(&rw), 0);
    rd_in = 0;
    stream_stop = stream_writes = 0;
    stream_cap = mono_ns() + 15 * (uint64_t)SEC;
    for (int i = 0; i < 6; i++) {
        sy_spawn(stream_reader, NULL, NULL);
        sy_nanosleep(100000); /* staggered: their sections overlap */
    }
    sy_spawn(stream_writer, NULL, NULL);
    reap_all();
    CHECK_EQ(stream_writes, WRITES);
    CHECK_EQ(sy_rwlock_destroy(&rw), 0);
    return 0;
}

static void test_rwlock_writer_not_starved(void)
{
    run_1_2(init_writer_not_starved);
}

/* ----------------------------------------------------------- waitgroup */

static sy_waitgroup wg;
static int wg_flags[64];

static int wg_waiter(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_waitgroup_wait(&wg), 0);
    return 0;
}

static int wg_worker(void *arg)
{
    long i = (long)arg;
    if (i % 3 == 0)
        sy_nanosleep(100000);
    else if (i % 3 == 1)
        sy_yield();
    wg_flags[i] = 1;
    CHECK_EQ(sy_waitgroup_done(&wg), 0);
    return 0;
}

static int init_waitgroup(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_waitgroup_init(&wg), 0);
    CHECK_EQ(sy_waitgroup_wait(&wg), 0); /* 0 already */
    CHECK_EQ(sy_waitgroup_wait_until(&wg, 0), 0);
    CHECK_EQ(sy_waitgroup_done(&wg), -EINVAL); /* below zero: nothing changes */
    CHECK_EQ(sy_waitgroup_add(&wg, -1), -EINVAL);
    CHECK_EQ(sy_waitgroup_wait_until(&wg, 0), 0);
    CHECK_EQ(sy_waitgroup_add(&wg, 3), 0);
    CHECK_EQ(sy_waitgroup_add(&wg, -4), -EINVAL);
    CHECK_EQ(sy_waitgroup_wait_until(&wg, 0), -ETIMEDOUT);
    CHECK_EQ(sy_waitgroup_add(&wg, -2), 0);
    CHECK_EQ(sy_waitgroup_add(&wg, 0), 0);
    CHECK_EQ(sy_waitgroup_wait_until(&wg, 0), -ETIMEDOUT);
    CHECK_EQ(sy_waitgroup_done(&wg), 0);
    CHECK_EQ(sy_waitgroup_wait_until(&wg, 0), 0);
    CHECK_EQ(sy_waitgroup_done(&wg), -EINVAL);

    /* every waiter wakes at 0; then it is reused */
    for (int round = 0; round < 3; round++) {
        CHECK_EQ(sy_waitgroup_add(&wg, 2), 0);
        int w[8];
        for (int i = 0; i < 8; i++) {
            w[i] = sy_spawn(wg_waiter, NULL, NULL);
            wait_asleep(w[i], &wg, "waitgroup");
        }
        CHECK_EQ(sy_waitgroup_destroy(&wg), -EBUSY);
        CHECK_EQ(sy_waitgroup_done(&wg), 0);
        sy_nanosleep(MS);
        for (int i = 0; i < 8; i++) { /* still waiting: the count is 1 */
            sy_task_info ti;
            CHECK(find_task(w[i], &ti));
            CHECK_EQ(ti.state, SY_SLEEPING);
        }
        CHECK_EQ(sy_waitgroup_done(&wg), 0);
        for (int i = 0; i < 8; i++)
            reap(w[i], 0);
    }

    /* Go's pattern: add N, N workers done, wait */
    for (int round = 0; round < 20; round++) {
        memset(wg_flags, 0, sizeof wg_flags);
        CHECK_EQ(sy_waitgroup_add(&wg, 64), 0);
        for (long i = 0; i < 64; i++)
            CHECK(sy_spawn(wg_worker, (void *)i, NULL) > 0);
        CHECK_EQ(round % 2 ? sy_waitgroup_wait(&wg)
                           : sy_waitgroup_wait_until(&wg, sy_now() + 600 * SEC),
                 0);
        for (int i = 0; i < 64; i++)
            CHECK_EQ(wg_flags[i], 1);
        reap_all();
    }
    CHECK_EQ(sy_waitgroup_destroy(&wg), 0);
    CHECK_EQ(sy_waitgroup_add(&wg, 1), -EINVAL);
    CHECK_EQ(sy_waitgroup_done(&wg), -EINVAL);
    CHECK_EQ(sy_waitgroup_wait(&wg), -EINVAL);
    CHECK_EQ(sy_waitgroup_wait_until(&wg, 0), -EINVAL);
    CHECK_EQ(sy_waitgroup_destroy(&wg), -EINVAL);
    CHECK_EQ(sy_waitgroup_init(&wg), 0);
    CHECK_EQ(sy_waitgroup_destroy(&wg), 0);
    return 0;
}

static void test_waitgroup(void)
{
    run_1_2(init_waitgroup);
}

/* ----------------------------------------------------------------- once */

#define RACERS 100
static sy_once once;
static int once_runs, once_completed, once_returned;
static int once_token;
static void *once_arg;

static void once_init(void *arg)
{
    __atomic_add_fetch(&once_runs, 1, __ATOMIC_RELAXED);
    once_arg = arg;
    sy_nanosleep(2 * MS); /* the others must wait for this */
    sy_yield();
    __atomic_store_n(&once_completed, 1, __ATOMIC_RELAXED);
}

static int once_racer(void *arg)
{
    (void)arg;
    if (sy_self() % 2)
        sy_yield();
    CHECK_EQ(sy_once_run(&once, once_init, &once_token), 0);
    CHECK_EQ(__atomic_load_n(&once_completed, __ATOMIC_RELAXED), 1);
    CHECK(once_arg == &once_token);
    __atomic_add_fetch(&once_returned, 1, __ATOMIC_RELAXED);
    return 0;
}

static void once_never(void *arg)
{
    (void)arg;
    CHECK(0);
}

static int init_once(void *arg)
{
    (void)arg;
    once = (sy_once)SY_ONCE_INIT;
    once_runs = once_completed = once_returned = 0;
    once_arg = NULL;
    for (int i = 0; i < RACERS; i++)
        CHECK(sy_spawn(once_racer, NULL, NULL) > 0);
    reap_all();
    CHECK_EQ(once_runs, 1);
    CHECK_EQ(once_returned, RACERS);
    CHECK_EQ(sy_once_run(&once, once_never, NULL), 0); /* done: not again */
    CHECK_EQ(once_runs, 1);
    return 0;
}

static void test_once(void)
{
    run_1_2(init_once);
    run_cfg(init_once, NULL, 2, 100);
}

/* ---------------------------------------------------- ps: what it waits on */

static sy_mutex pm, pcm;
static sy_cond pc;
static sy_sem psem, pgate;
static sy_rwlock prw;
static sy_waitgroup pwg;
static sy_once po;
static int pchan, pflag;

static int p_mutex(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_lock(&pm), 0);
    return sy_mutex_unlock(&pm);
}

static int p_cond(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_lock(&pcm), 0);
    while (!pflag)
        CHECK_EQ(sy_cond_wait(&pc, &pcm), 0);
    return sy_mutex_unlock(&pcm);
}

static int p_sem(void *arg)
{
    (void)arg;
    return sy_sem_wait(&psem);
}

static int p_rwlock(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_rwlock_rdlock(&prw), 0);
    return sy_rwlock_unlock(&prw);
}

static int p_wg(void *arg)
{
    (void)arg;
    return sy_waitgroup_wait(&pwg);
}

static void p_once_fn(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_sem_wait(&pgate), 0);
}

static int p_once(void *arg)
{
    (void)arg;
    return sy_once_run(&po, p_once_fn, NULL);
}

static int p_sleep(void *arg)
{
    (void)arg;
    return sy_sleep(&pchan, NULL) == 0 ? 0 : 1;
}

static int p_wait(void *arg)
{
    (void)arg;
    int c = sy_spawn(p_sleep, NULL, NULL);
    int st;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    return st;
}

static int init_ps(void *arg)
{
    (void)arg;
    memset(&pm, 0, sizeof pm);
    memset(&pcm, 0, sizeof pcm);
    memset(&pc, 0, sizeof pc);
    memset(&prw, 0, sizeof prw);
    memset(&pwg, 0, sizeof pwg);
    po = (sy_once)SY_ONCE_INIT;
    CHECK_EQ(sy_sem_init(&psem, 0), 0);
    CHECK_EQ(sy_sem_init(&pgate, 0), 0);
    pflag = 0;

    sy_task_info ti;
    CHECK(find_task(sy_self(), &ti));
    CHECK_EQ(ti.state, SY_RUNNING);
    CHECK(ti.wait_kind && strcmp(ti.wait_kind, "") == 0);

    CHECK_EQ(sy_mutex_lock(&pm), 0);
    int t_mutex = sy_spawn(p_mutex, NULL, NULL);
    wait_asleep(t_mutex, &pm, "mutex");
    CHECK(find_task(sy_self(), &ti));
    CHECK_EQ(ti.mutexes, 1);

    int t_cond = sy_spawn(p_cond, NULL, NULL);
    wait_asleep(t_cond, &pc, "cond");

    int t_sem = sy_spawn(p_sem, NULL, NULL);
    wait_asleep(t_sem, &psem, "sem");

    CHECK_EQ(sy_rwlock_wrlock(&prw), 0);
    int t_rw = sy_spawn(p_rwlock, NULL, NULL);
    wait_asleep(t_rw, &prw, "rwlock");

    CHECK_EQ(sy_waitgroup_add(&pwg, 1), 0);
    int t_wg = sy_spawn(p_wg, NULL, NULL);
    wait_asleep(t_wg, &pwg, "waitgroup");

    int t_runner = sy_spawn(p_once, NULL, NULL);
    wait_asleep(t_runner, &pgate, "sem"); /* inside the initialiser */
    int t_once = sy_spawn(p_once, NULL, NULL);
    wait_asleep(t_once, &po, "once");

    int t_sleep = sy_spawn(p_sleep, NULL, NULL);
    wait_asleep(t_sleep, &pchan, "sleep");

    int t_wait = sy_spawn(p_wait, NULL, NULL);
    wait_asleep(t_wait, NULL, "wait");

    /* the table prints with all of them in it */
    FILE *null = fopen("/dev/null", "w");
    CHECK(null);
    CHECK_EQ(sy_ps_print(fileno(null)), 0);
    fclose(null);

    /* let them all go */
    CHECK_EQ(sy_mutex_unlock(&pm), 0);
    CHECK_EQ(sy_mutex_lock(&pcm), 0);
    pflag = 1;
    CHECK_EQ(sy_cond_signal(&pc), 0);
    CHECK_EQ(sy_mutex_unlock(&pcm), 0);
    CHECK_EQ(sy_sem_post(&psem), 0);
    CHECK_EQ(sy_rwlock_unlock(&prw), 0);
    CHECK_EQ(sy_waitgroup_done(&pwg), 0);
    CHECK_EQ(sy_sem_post(&pgate), 0);
    /* t_sleep and t_wait's child sleep on pchan */
    uint64_t cap = mono_ns() + 30 * (uint64_t)SEC;
    int woken = 0;
    while (woken < 2) {
        CHECK(mono_ns() < cap);
        woken += sy_wakeup(&pchan);
        sy_nanosleep(100000);
    }
    reap(t_mutex, 0);
    reap(t_cond, 0);
    reap(t_sem, 0);
    reap(t_rw, 0);
    reap(t_wg, 0);
    reap(t_runner, 0);
    reap(t_once, 0);
    reap(t_sleep, 0);
    reap(t_wait, 0);
    return 0;
}

static void test_ps_wait_kind(void)
{
    run_1_2(init_ps);
}

/* ---------------------------------------------------------------- kills */

static sy_mutex km;
static sy_cond kc;
static sy_sem ks, kgate;
static sy_rwlock krw;
static sy_waitgroup kwg;
static sy_once ko;
static int kflag, ko_runs;

static int v_mutex(void *arg)
{
    (void)arg;
    set_vres(sy_mutex_lock(&km));
    return VICTIM_STATUS;
}

static int w_mutex(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_lock(&km), 0);
    CHECK_EQ(sy_mutex_owner(&km), sy_self());
    CHECK_EQ(sy_mutex_unlock(&km), 0);
    return 43;
}

static int v_cond(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_lock(&km), 0);
    int r = sy_cond_wait(&kc, &km);
    CHECK_EQ(sy_mutex_owner(&km), sy_self()); /* held again, even so */
    CHECK_EQ(sy_mutex_unlock(&km), 0);
    set_vres(r);
    return VICTIM_STATUS;
}

static int w_cond(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_lock(&km), 0);
    while (!kflag)
        CHECK_EQ(sy_cond_wait(&kc, &km), 0);
    CHECK_EQ(sy_mutex_unlock(&km), 0);
    return 43;
}

static int v_sem(void *arg)
{
    (void)arg;
    set_vres(sy_sem_wait(&ks));
    return VICTIM_STATUS;
}

static int w_sem(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_sem_wait(&ks), 0);
    return 43;
}

static int v_rd(void *arg)
{
    (void)arg;
    set_vres(sy_rwlock_rdlock(&krw));
    return VICTIM_STATUS;
}

static int v_wr(void *arg)
{
    (void)arg;
    set_vres(sy_rwlock_wrlock(&krw));
    return VICTIM_STATUS;
}

static int w_rd(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_rwlock_rdlock(&krw), 0);
    CHECK_EQ(sy_rwlock_unlock(&krw), 0);
    return 43;
}

static int try_rd(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_rwlock_tryrdlock(&krw), 0); /* no writer waits any more */
    CHECK_EQ(sy_rwlock_unlock(&krw), 0);
    return 43;
}

static int v_wg(void *arg)
{
    (void)arg;
    set_vres(sy_waitgroup_wait(&kwg));
    return VICTIM_STATUS;
}

static int w_wg(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_waitgroup_wait(&kwg), 0);
    return 43;
}

static void ko_slow(void *arg)
{
    (void)arg;
    ko_runs++;
    CHECK_EQ(sy_sem_wait(&kgate), 0);
    kflag = 1;
}

static int ko_runner(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_once_run(&ko, ko_slow, NULL), 0);
    return 44;
}

static int v_once(void *arg)
{
    (void)arg;
    set_vres(sy_once_run(&ko, once_never, NULL));
    return VICTIM_STATUS;
}

static int w_once(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_once_run(&ko, once_never, NULL), 0);
    CHECK_EQ(kflag, 1); /* after it completed */
    return 43;
}

static int self_killed(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_kill(sy_self()), 0);
    set_vres(sy_sem_wait(&ks));
    return VICTIM_STATUS;
}

static int spawn_victim(sy_fn fn, const void *obj, const char *kind)
{
    set_vres(1);
    int v = sy_spawn(fn, NULL, &(sy_attr){.name = "victim"});
    CHECK(v > 0);
    wait_asleep(v, obj, kind);
    return v;
}

static int init_kills(void *arg)
{
    (void)arg;
    int v, w;
    /* mutex: the next waiter gets it, then it can be destroyed */
    CHECK_EQ(sy_mutex_init(&km), 0);
    CHECK_EQ(sy_mutex_lock(&km), 0);
    v = spawn_victim(v_mutex, &km, "mutex");
    w = sy_spawn(w_mutex, NULL, NULL);
    wait_asleep(w, &km, "mutex");
    kill_reap(v);
    CHECK_EQ(sy_mutex_owner(&km), sy_self());
    CHECK_EQ(sy_mutex_destroy(&km), -EBUSY);
    CHECK_EQ(sy_mutex_unlock(&km), 0);
    reap(w, 43);
    CHECK_EQ(sy_mutex_owner(&km), 0);
    CHECK_EQ(sy_mutex_destroy(&km), 0);

    /* cond: -EINTR with the mutex held again; a later signal reaches the
     * other waiter, not the dead one's leftovers */
    CHECK_EQ(sy_mutex_init(&km), 0);
    CHECK_EQ(sy_cond_init(&kc), 0);
    kflag = 0;
    v = spawn_victim(v_cond, &kc, "cond");
    w = sy_spawn(w_cond, NULL, NULL);
    wait_asleep(w, &kc, "cond");
    CHECK_EQ(sy_mutex_lock(&km), 0);
    CHECK_EQ(sy_kill(v), 0);
    wait_asleep(v, &km, "mutex"); /* woken, it needs the mutex back */
    CHECK_EQ(sy_mutex_unlock(&km), 0);
    int st;
    CHECK_EQ(sy_wait(v, &st, 0), v);
    CHECK(st == VICTIM_STATUS || st == SY_EXIT_KILLED);
    CHECK_EQ(__atomic_load_n(&vres, __ATOMIC_ACQUIRE), -EINTR);
    CHECK_EQ(sy_mutex_lock(&km), 0);
    kflag = 1;
    CHECK_EQ(sy_cond_signal(&kc), 0);
    CHECK_EQ(sy_mutex_unlock(&km), 0);
    reap(w, 43);
    CHECK_EQ(sy_cond_destroy(&kc), 0);
    CHECK_EQ(sy_mutex_destroy(&km), 0);

    /* sem: the unit posted after the kill goes to the other waiter */
    CHECK_EQ(sy_sem_init(&ks, 0), 0);
    v = spawn_victim(v_sem, &ks, "sem");
    w = sy_spawn(w_sem, NULL, NULL);
    wait_asleep(w, &ks, "sem");
    kill_reap(v);
    CHECK_EQ(sy_sem_value(&ks), 0);
    CHECK_EQ(sy_sem_post(&ks), 0);
    reap(w, 43);
    CHECK_EQ(sy_sem_value(&ks), 0);
    CHECK_EQ(sy_sem_post(&ks), 0);
    CHECK_EQ(sy_sem_value(&ks), 1); /* nobody waits */
    CHECK_EQ(sy_sem_destroy(&ks), 0);

    /* rwlock, a reader killed: no reader is left counted */
    CHECK_EQ(sy_rwlock_init(&krw), 0);
    CHECK_EQ(sy_rwlock_wrlock(&krw), 0);
    v = spawn_victim(v_rd, &krw, "rwlock");
    w = sy_spawn(w_rd, NULL, NULL);
    wait_asleep(w, &krw, "rwlock");
    kill_reap(v);
    CHECK_EQ(sy_rwlock_unlock(&krw), 0);
    reap(w, 43);
    CHECK_EQ(sy_rwlock_trywrlock(&krw), 0);
    CHECK_EQ(sy_rwlock_unlock(&krw), 0);
    /* a writer killed: it no longer keeps readers out */
    CHECK_EQ(sy_rwlock_rdlock(&krw), 0);
    v = spawn_victim(v_wr, &krw, "rwlock");
    kill_reap(v);
    reap(sy_spawn(try_rd, NULL, NULL), 43);
    CHECK_EQ(sy_rwlock_unlock(&krw), 0);
    CHECK_EQ(sy_rwlock_trywrlock(&krw), 0);
    CHECK_EQ(sy_rwlock_unlock(&krw), 0);
    CHECK_EQ(sy_rwlock_destroy(&krw), 0);

    /* waitgroup */
    CHECK_EQ(sy_waitgroup_init(&kwg), 0);
    CHECK_EQ(sy_waitgroup_add(&kwg, 1), 0);
    v = spawn_victim(v_wg, &kwg, "waitgroup");
    w = sy_spawn(w_wg, NULL, NULL);
    wait_asleep(w, &kwg, "waitgroup");
    kill_reap(v);
    CHECK_EQ(sy_waitgroup_done(&kwg), 0);
    reap(w, 43);
    CHECK_EQ(sy_waitgroup_destroy(&kwg), 0);

    /* once: a waiter killed while another runs the initialiser */
    ko = (sy_once)SY_ONCE_INIT;
    kflag = ko_runs = 0;
    CHECK_EQ(sy_sem_init(&kgate, 0), 0);
    int runner = sy_spawn(ko_runner, NULL, NULL);
    wait_asleep(runner, &kgate, "sem");
    v = spawn_victim(v_once, &ko, "once");
    w = sy_spawn(w_once, NULL, NULL);
    wait_asleep(w, &ko, "once");
    kill_reap(v);
    CHECK_EQ(sy_sem_post(&kgate), 0);
    reap(runner, 44);
    reap(w, 43);
    CHECK_EQ(ko_runs, 1);
    CHECK_EQ(sy_once_run(&ko, once_never, NULL), 0);
    CHECK_EQ(sy_sem_destroy(&kgate), 0);

    /* killed before it waits: -EINTR at once, nothing done */
    CHECK_EQ(sy_sem_init(&ks, 0), 0);
    set_vres(1);
    kill_reap(sy_spawn(self_killed, NULL, NULL));
    CHECK_EQ(sy_sem_value(&ks), 0);
    CHECK_EQ(sy_sem_destroy(&ks), 0);
    return 0;
}

static void test_kill_waiters(void)
{
    run_1_2(init_kills);
}

/* Kills racing handoffs across CPUs: workers take a mutex and a semaphore
 * unit in a loop while a killer kills them at random moments.  Each worker
 * records what it holds; at the end, what is held is exactly what the
 * killed workers held when they died (only a worker killed at a tick, in
 * its own code, dies holding something). */
#define KR_WORKERS 16
static sy_mutex krm;
static sy_sem krs;
static int kr_pid[KR_WORKERS];
static int kr_holds_m[KR_WORKERS], kr_holds_s[KR_WORKERS];
static long kr_shared;

static int kr_worker(void *arg)
{
    long i = (long)arg;
    for (long n = 0;; n++) {
        int r = sy_mutex_lock(&krm);
        if (r == -EINTR)
            return 1;
        CHECK_EQ(r, 0);
        __atomic_store_n(&kr_holds_m[i], 1, __ATOMIC_RELAXED);
        kr_shared++;
        busy_work(100);
        __atomic_store_n(&kr_holds_m[i], 0, __ATOMIC_RELAXED);
        CHECK_EQ(sy_mutex_unlock(&krm), 0);
        r = n % 2 ? sy_sem_wait(&krs) : sy_sem_wait_until(&krs, sy_now() + 600 * SEC);
        if (r == -EINTR)
            return 2;
        CHECK_EQ(r, 0);
        __atomic_store_n(&kr_holds_s[i], 1, __ATOMIC_RELAXED);
        busy_work(100);
        /* (a lock or wait that need not wait may succeed for a killed
         * task; this sleep always notices) */
        r = n % 4 == 0 ? sy_nanosleep(10000) : 0;
        __atomic_store_n(&kr_holds_s[i], 0, __ATOMIC_RELAXED);
        CHECK_EQ(sy_sem_post(&krs), 0);
        if (r == -EINTR)
            return 3;
    }
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static int init_kill_race(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_mutex_init(&krm), 0);
    CHECK_EQ(sy_sem_init(&krs, 2), 0);
    kr_shared = 0;
    memset(kr_holds_m, 0, sizeof kr_holds_m);
    memset(kr_holds_s, 0, sizeof kr_holds_s);
    uint32_t seed = 12345;
    int rounds = SLOW ? 3 : 12;
    long kills = 0;
    for (int round = 0; round < rounds; round++) {
        for (long i = 0; i < KR_WORKERS; i++)
            kr_pid[i] = sy_spawn(kr_worker, (void *)i, NULL);
        for (int i = 0; i < KR_WORKERS; i++) {
            sy_nanosleep(rnd(&seed) % 300000);
            CHECK_EQ(sy_kill(kr_pid[i]), 0);
            kills++;
        }
        int st, held_m = 0, held_s = 0;
        for (int i = 0; i < KR_WORKERS; i++) {
            CHECK_EQ(sy_wait(kr_pid[i], &st, 0), kr_pid[i]);
            CHECK(st == 1 || st == 2 || st == 3 || st == SY_EXIT_KILLED);
            held_m += kr_holds_m[i];
            held_s += kr_holds_s[i];
            kr_holds_m[i] = kr_holds_s[i] = 0;
        }
        if (held_m) { /* died holding it at a tick: it stays locked */
            CHECK_EQ(held_m, 1);
            fprintf(stderr, "[a worker died holding the mutex] ");
            CHECK(sy_mutex_owner(&krm) > 0);
            CHECK_EQ(sy_mutex_init(&krm), 0);
        }
        CHECK_EQ(sy_mutex_owner(&krm), 0);
        CHECK_EQ(sy_mutex_trylock(&krm), 0);
        CHECK_EQ(sy_mutex_unlock(&krm), 0);
        CHECK_EQ(sy_sem_value(&krs), 2 - held_s);
        while (held_s-- > 0)
            CHECK_EQ(sy_sem_post(&krs), 0);
    }
    CHECK(kr_shared > 0);
    CHECK_EQ(sy_mutex_destroy(&krm), 0);
    CHECK_EQ(sy_sem_destroy(&krs), 0);
    fprintf(stderr, "[%d CPU: %ld kills, %ld sections] ", sy_ncpu(), kills, kr_shared);
    return 0;
}

static void test_kill_race(void)
{
    run_cfg(init_kill_race, NULL, 1, 0);
    run_cfg(init_kill_race, NULL, 2, 0);
    run_cfg(init_kill_race, NULL, 2, 100);
}

/* ------------------------------------------------------------ deadlines */

static sy_mutex dm;
static sy_cond dc;
static sy_sem ds, dheld, dgate;
static sy_rwlock drw;
static sy_waitgroup dwg;
static int dflag;

/* a holder: takes what arg says, tells init, waits for the gate, lets go */
enum { HOLD_MUTEX, HOLD_WRITE, HOLD_READ };
static int d_holder(void *arg)
{
    long what = (long)arg;
    if (what == HOLD_MUTEX)
        CHECK_EQ(sy_mutex_lock(&dm), 0);
    else if (what == HOLD_WRITE)
        CHECK_EQ(sy_rwlock_wrlock(&drw), 0);
    else
        CHECK_EQ(sy_rwlock_rdlock(&drw), 0);
    CHECK_EQ(sy_sem_post(&dheld), 0);
    CHECK_EQ(sy_sem_wait(&dgate), 0);
    if (what == HOLD_MUTEX)
        CHECK_EQ(sy_mutex_unlock(&dm), 0);
    else
        CHECK_EQ(sy_rwlock_unlock(&drw), 0);
    return 0;
}

static int start_holder(long what)
{
    int h = sy_spawn(d_holder, (void *)what, NULL);
    CHECK_EQ(sy_sem_wait(&dheld), 0);
    return h;
}

static void stop_holder(int h)
{
    CHECK_EQ(sy_sem_post(&dgate), 0);
    reap(h, 0);
}

/* a future deadline: never early, and not ignored (a few seconds late at
 * most, on the busiest machine) */
static int64_t future(void)
{
    return sy_now() + 20 * MS;
}

static void check_expired(int64_t d)
{
    int64_t now = sy_now();
    CHECK(now >= d);
    CHECK(now < d + 10 * SEC);
}

/* a helper that acts after 5 ms */
static int d_later(void *arg)
{
    long what = (long)arg;
    sy_nanosleep(5 * MS);
    if (what == 0) {
        CHECK_EQ(sy_sem_post(&ds), 0);
    } else {
        CHECK_EQ(sy_mutex_lock(&dm), 0);
        dflag = 1;
        CHECK_EQ(sy_cond_signal(&dc), 0);
        CHECK_EQ(sy_mutex_unlock(&dm), 0);
    }
    return 0;
}

static int init_deadlines(void *arg)
{
    (void)arg;
    int64_t d;
    static int chan;
    sy_spinlock lk = SY_SPINLOCK_INIT;
    CHECK_EQ(sy_sem_init(&dheld, 0), 0);
    CHECK_EQ(sy_sem_init(&dgate, 0), 0);

    /* sy_sleep_until */
    NO_WAIT(sy_sleep_until(&chan, NULL, 0), -ETIMEDOUT);
    NO_WAIT(sy_sleep_until(&chan, NULL, sy_now() - 1), -ETIMEDOUT);
    d = future();
    CHECK_EQ(sy_sleep_until(&chan, NULL, d), -ETIMEDOUT);
    check_expired(d);
    sy_spin_lock(&lk);
    d = future();
    CHECK_EQ(sy_sleep_until(&chan, &lk, d), -ETIMEDOUT);
    CHECK(lk.locked);
    sy_spin_unlock(&lk);
    check_expired(d);

    /* mutex */
    CHECK_EQ(sy_mutex_init(&dm), 0);
    int h = start_holder(HOLD_MUTEX);
    NO_WAIT(sy_mutex_lock_until(&dm, 0), -ETIMEDOUT);
    NO_WAIT(sy_mutex_lock_until(&dm, sy_now() - 1), -ETIMEDOUT);
    d = future();
    CHECK_EQ(sy_mutex_lock_until(&dm, d), -ETIMEDOUT);
    check_expired(d);
    CHECK_EQ(sy_mutex_owner(&dm), h);
    stop_holder(h);
    CHECK_EQ(sy_mutex_owner(&dm), 0); /* nothing left of the timed-out waits */
    NO_WAIT(sy_mutex_lock_until(&dm, 0), 0);
    CHECK_EQ(sy_mutex_unlock(&dm), 0);
    /* the holder lets go before the deadline: locked in time */
    h = start_holder(HOLD_MUTEX);
    CHECK_EQ(sy_sem_post(&dgate), 0);
    d = sy_now() + 600 * SEC;
    CHECK_EQ(sy_mutex_lock_until(&dm, d), 0);
    CHECK(sy_now() < d);
    CHECK_EQ(sy_mutex_unlock(&dm), 0);
    reap(h, 0);

    /* cond: times out with the mutex held again */
    CHECK_EQ(sy_cond_init(&dc), 0);
    CHECK_EQ(sy_mutex_lock(&dm), 0);
    NO_WAIT(sy_cond_wait_until(&dc, &dm, 0), -ETIMEDOUT);
    CHECK_EQ(sy_mutex_owner(&dm), sy_self());
    d = future();
    CHECK_EQ(sy_cond_wait_until(&dc, &dm, d), -ETIMEDOUT);
    check_expired(d);
    CHECK_EQ(sy_mutex_owner(&dm), sy_self());
    /* signalled in time */
    dflag = 0;
    int l = sy_spawn(d_later, (void *)1L, NULL);
    d = sy_now() + 600 * SEC;
    while (!dflag)
        CHECK_EQ(sy_cond_wait_until(&dc, &dm, d), 0);
    CHECK(sy_now() < d);
    CHECK_EQ(sy_mutex_unlock(&dm), 0);
    reap(l, 0);
    CHECK_EQ(sy_cond_destroy(&dc), 0); /* no waiter left behind */
    CHECK_EQ(sy_mutex_destroy(&dm), 0);

    /* sem */
    CHECK_EQ(sy_sem_init(&ds, 0), 0);
    NO_WAIT(sy_sem_wait_until(&ds, 0), -ETIMEDOUT);
    d = future();
    CHECK_EQ(sy_sem_wait_until(&ds, d), -ETIMEDOUT);
    check_expired(d);
    CHECK_EQ(sy_sem_post(&ds), 0);
    CHECK_EQ(sy_sem_value(&ds), 1); /* not handed to a timed-out waiter */
    NO_WAIT(sy_sem_wait_until(&ds, 0), 0);
    l = sy_spawn(d_later, (void *)0L, NULL);
    d = sy_now() + 600 * SEC;
    CHECK_EQ(sy_sem_wait_until(&ds, d), 0);
    CHECK(sy_now() < d);
    reap(l, 0);
    l = sy_spawn(d_later, (void *)0L, NULL);
    CHECK_EQ(sy_sem_wait_until(&ds, SY_FOREVER), 0);
    reap(l, 0);
    CHECK_EQ(sy_sem_destroy(&ds), 0);

    /* rwlock */
    CHECK_EQ(sy_rwlock_init(&drw), 0);
    h = start_holder(HOLD_WRITE);
    NO_WAIT(sy_rwlock_rdlock_until(&drw, 0), -ETIMEDOUT);
    NO_WAIT(sy_rwlock_wrlock_until(&drw, 0), -ETIMEDOUT);
    d = future();
    CHECK_EQ(sy_rwlock_rdlock_until(&drw, d), -ETIMEDOUT);
    check_expired(d);
    d = future();
    CHECK_EQ(sy_rwlock_wrlock_until(&drw, d), -ETIMEDOUT);
    check_expired(d);
    stop_holder(h);
    h = start_holder(HOLD_READ);
    NO_WAIT(sy_rwlock_rdlock_until(&drw, 0), 0); /* need not wait */
    CHECK_EQ(sy_rwlock_unlock(&drw), 0);
    NO_WAIT(sy_rwlock_wrlock_until(&drw, 0), -ETIMEDOUT);
    d = future();
    CHECK_EQ(sy_rwlock_wrlock_until(&drw, d), -ETIMEDOUT);
    check_expired(d);
    /* the timed-out writer no longer keeps readers out */
    CHECK_EQ(sy_rwlock_tryrdlock(&drw), 0);
    CHECK_EQ(sy_rwlock_unlock(&drw), 0);
    stop_holder(h);
    NO_WAIT(sy_rwlock_wrlock_until(&drw, 0), 0);
    CHECK_EQ(sy_rwlock_unlock(&drw), 0);
    CHECK_EQ(sy_rwlock_destroy(&drw), 0);

    /* waitgroup */
    CHECK_EQ(sy_waitgroup_init(&dwg), 0);
    NO_WAIT(sy_waitgroup_wait_until(&dwg, 0), 0);
    CHECK_EQ(sy_waitgroup_add(&dwg, 1), 0);
    NO_WAIT(sy_waitgroup_wait_until(&dwg, 0), -ETIMEDOUT);
    d = future();
    CHECK_EQ(sy_waitgroup_wait_until(&dwg, d), -ETIMEDOUT);
    check_expired(d);
    CHECK_EQ(sy_waitgroup_destroy(&dwg), 0); /* count 1, but nobody waits */

    CHECK_EQ(sy_sem_destroy(&dheld), 0);
    CHECK_EQ(sy_sem_destroy(&dgate), 0);
    return 0;
}

static void test_deadlines(void)
{
    run_1_2(init_deadlines);
}

/* ------------------------------------------ no lost wakeup: token rings */

/* RING tasks pass a token round and round; each round ends when task 0
 * decides (at least RING_MIN rounds, at most RING_MAX, or until the time is
 * up).  A lost wakeup stops the ring: every task asleep, the runtime
 * reports a deadlock and sy_run returns -EDEADLK. */
#define RING 8
#define RING_MIN 20
#define RING_MAX (SLOW ? 300 : 3000)

struct ring_ops {
    const char *name;
    void (*setup)(void);
    void (*wait)(int i);
    void (*pass)(int next);
    void (*teardown)(void);
};
static const struct ring_ops *ring;
static long ring_last, ring_hops;
static uint64_t ring_until;

static int ring_task(void *arg)
{
    int i = (int)(long)arg;
    for (long r = 0;; r++) {
        ring->wait(i);
        /* the token is ours: these are ordered by its passing */
        if (i == 0 && ring_last < 0 && r >= RING_MIN && (r >= RING_MAX || mono_ns() > ring_until))
            ring_last = r;
        CHECK_EQ(ring_hops % RING, i);
        ring_hops++;
        long last = ring_last;
        if (last == r && i == RING - 1)
            return 0; /* task 0 has gone: keep the token */
        ring->pass((i + 1) % RING);
        if (last == r)
            return 0;
    }
}

static int init_ring(void *arg)
{
    ring = arg;
    ring_last = -1;
    ring_hops = 0;
    ring_until = mono_ns() + (SLOW ? 3 : 1) * (uint64_t)SEC;
    ring->setup();
    for (long i = 0; i < RING; i++)
        CHECK(sy_spawn(ring_task, (void *)i, NULL) > 0);
    ring->pass(0);
    reap_all();
    CHECK(ring_last >= RING_MIN);
    CHECK_EQ(ring_hops, (ring_last + 1) * RING);
    ring->teardown();
    return 0;
}

static void run_ring(const struct ring_ops *ops)
{
    run_cfg(init_ring, (void *)ops, 1, 0);
    long r1 = ring_last + 1;
    run_cfg(init_ring, (void *)ops, 2, 100);
    fprintf(stderr, "[%s: %ld, %ld rounds] ", ops->name, r1, ring_last + 1);
}

/* mutex + a cond per task, signalled */
static sy_mutex ring_m;
static sy_cond ring_cv[RING];
static int ring_turn;

static void mc_setup(void)
{
    CHECK_EQ(sy_mutex_init(&ring_m), 0);
    for (int i = 0; i < RING; i++)
        CHECK_EQ(sy_cond_init(&ring_cv[i]), 0);
    ring_turn = -1;
}

static void mc_wait(int i)
{
    CHECK_EQ(sy_mutex_lock(&ring_m), 0);
    while (ring_turn != i)
        CHECK_EQ(sy_cond_wait(&ring_cv[i], &ring_m), 0);
    CHECK_EQ(sy_mutex_unlock(&ring_m), 0);
}

static void mc_pass(int next)
{
    CHECK_EQ(sy_mutex_lock(&ring_m), 0);
    ring_turn = next;
    CHECK_EQ(sy_cond_signal(&ring_cv[next]), 0);
    CHECK_EQ(sy_mutex_unlock(&ring_m), 0);
}

static void mc_teardown(void)
{
    for (int i = 0; i < RING; i++)
        CHECK_EQ(sy_cond_destroy(&ring_cv[i]), 0);
    CHECK_EQ(sy_mutex_destroy(&ring_m), 0);
}

/* mutex + one cond for all, broadcast (the signal outside the mutex) */
static void mb_wait(int i)
{
    CHECK_EQ(sy_mutex_lock(&ring_m), 0);
    while (ring_turn != i)
        CHECK_EQ(sy_cond_wait(&ring_cv[0], &ring_m), 0);
    CHECK_EQ(sy_mutex_unlock(&ring_m), 0);
}

static void mb_pass(int next)
{
    CHECK_EQ(sy_mutex_lock(&ring_m), 0);
    ring_turn = next;
    CHECK_EQ(sy_mutex_unlock(&ring_m), 0);
    CHECK_EQ(sy_cond_broadcast(&ring_cv[0]), 0);
}

/* a semaphore per task */
static sy_sem ring_s[RING];

static void sem_setup(void)
{
    for (int i = 0; i < RING; i++)
        CHECK_EQ(sy_sem_init(&ring_s[i], 0), 0);
}

static void sem_wait_(int i)
{
    CHECK_EQ(sy_sem_wait(&ring_s[i]), 0);
}

static void sem_pass(int next)
{
    CHECK_EQ(sy_sem_post(&ring_s[next]), 0);
}

static void sem_teardown(void)
{
    for (int i = 0; i < RING; i++) {
        CHECK_EQ(sy_sem_value(&ring_s[i]), 0);
        CHECK_EQ(sy_sem_destroy(&ring_s[i]), 0);
    }
}

/* a waitgroup per task, at 1; its task waits for 0 and re-arms it */
static sy_waitgroup ring_wg[RING];

static void wg_setup(void)
{
    for (int i = 0; i < RING; i++) {
        CHECK_EQ(sy_waitgroup_init(&ring_wg[i]), 0);
        CHECK_EQ(sy_waitgroup_add(&ring_wg[i], 1), 0);
    }
}

static void wg_wait_(int i)
{
    CHECK_EQ(sy_waitgroup_wait(&ring_wg[i]), 0);
    CHECK_EQ(sy_waitgroup_add(&ring_wg[i], 1), 0);
}

static void wg_pass(int next)
{
    CHECK_EQ(sy_waitgroup_done(&ring_wg[next]), 0);
}

static void wg_teardown(void)
{
    for (int i = 0; i < RING; i++)
        CHECK_EQ(sy_waitgroup_destroy(&ring_wg[i]), 0);
}

static const struct ring_ops ring_mutex_cond = {"signal", mc_setup, mc_wait, mc_pass, mc_teardown};
static const struct ring_ops ring_mutex_bcast = {"broadcast", mc_setup, mb_wait, mb_pass,
                                                 mc_teardown};
static const struct ring_ops ring_sem = {"sem", sem_setup, sem_wait_, sem_pass, sem_teardown};
static const struct ring_ops ring_wg_ops = {"waitgroup", wg_setup, wg_wait_, wg_pass, wg_teardown};

static void test_ring_cond_signal(void)
{
    run_ring(&ring_mutex_cond);
}

static void test_ring_cond_broadcast(void)
{
    run_ring(&ring_mutex_bcast);
}

static void test_ring_sem(void)
{
    run_ring(&ring_sem);
}

static void test_ring_waitgroup(void)
{
    run_ring(&ring_wg_ops);
}

int main(void)
{
    RUN(test_eperm_outside);
    RUN(test_init_outside);
    RUN(test_null_objects);
    RUN(test_destroyed_past_deadline);
    RUN(test_mutex_rules);
    RUN(test_mutex_contention);
    RUN(test_mutex_no_starvation);
    RUN(test_mutex_exit_holding);
    RUN(test_cond);
    RUN(test_sem);
    RUN(test_sem_limiter);
    RUN(test_rwlock_rules);
    RUN(test_rwlock_concurrent);
    RUN(test_rwlock_writer_not_starved);
    RUN(test_waitgroup);
    RUN(test_once);
    RUN(test_ps_wait_kind);
    RUN(test_kill_waiters);
    RUN(test_kill_race);
    RUN(test_deadlines);
    RUN(test_ring_cond_signal);
    RUN(test_ring_cond_broadcast);
    RUN(test_ring_sem);
    RUN(test_ring_waitgroup);
    return 0;
}
