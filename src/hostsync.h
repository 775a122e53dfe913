/*
 * hostsync.h - between the host's threading calls, interposed (hostlock.c:
 * the public names, the real calls, the switch that turns it all off), and
 * their task-aware implementation on waiter records (hostsync.c).
 */
#ifndef SY_HOSTSYNC_H
#define SY_HOSTSYNC_H

#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <threads.h>

#include "internal.h"

/* ---------------------------------------------------- the real calls */

/* The next definition of each interposed call (the C library's, or a
 * sanitizer's interceptor), resolved with dlsym(RTLD_NEXT): hostlock.c. */
#define SY_REAL_CALLS(X)                                                         \
    X(pthread_mutex_init) X(pthread_mutex_destroy)                               \
    X(pthread_mutex_lock) X(pthread_mutex_trylock) X(pthread_mutex_timedlock)    \
    X(pthread_mutex_clocklock) X(pthread_mutex_unlock)                           \
    X(pthread_cond_init) X(pthread_cond_destroy) X(pthread_cond_wait)            \
    X(pthread_cond_timedwait) X(pthread_cond_clockwait) X(pthread_cond_signal)   \
    X(pthread_cond_broadcast)                                                    \
    X(pthread_rwlock_init) X(pthread_rwlock_destroy)                             \
    X(pthread_rwlock_rdlock) X(pthread_rwlock_wrlock) X(pthread_rwlock_tryrdlock)\
    X(pthread_rwlock_trywrlock) X(pthread_rwlock_timedrdlock)                    \
    X(pthread_rwlock_timedwrlock) X(pthread_rwlock_clockrdlock)                  \
    X(pthread_rwlock_clockwrlock) X(pthread_rwlock_unlock)                       \
    X(pthread_spin_lock) X(pthread_spin_trylock) X(pthread_spin_unlock)          \
    X(pthread_barrier_init) X(pthread_barrier_destroy) X(pthread_barrier_wait)   \
    X(pthread_once)                                                              \
    X(sem_init) X(sem_wait) X(sem_trywait) X(sem_timedwait) X(sem_clockwait)     \
    X(sem_post)                                                                  \
    X(flockfile) X(ftrylockfile) X(funlockfile)                                  \
    X(mtx_init) X(mtx_destroy) X(mtx_lock) X(mtx_trylock) X(mtx_timedlock)       \
    X(mtx_unlock)                                                                \
    X(cnd_init) X(cnd_destroy) X(cnd_wait) X(cnd_timedwait) X(cnd_signal)        \
    X(cnd_broadcast) X(call_once) X(pthread_create)

#define SY_REAL_FIELD(f) __typeof__(f) *f;
struct sy_real {
    SY_REAL_CALLS(SY_REAL_FIELD)
};
extern struct sy_real sy__real HIDDEN;
HIDDEN void *sy__real_resolve(void **slot, const char *name);
__attribute__((noreturn, cold)) HIDDEN void sy__real_missing(const char *name);

/* The real f (resolved now if nobody did yet: a call from another
 * library's constructor); stops the program with a message if the C
 * library has none (a lock call that did nothing would be silent
 * corruption). */
#define REAL(f)                                                                  \
    __extension__({                                                              \
        __typeof__(f) *p_ = __atomic_load_n(&sy__real.f, __ATOMIC_RELAXED);      \
        if (unlikely(!p_))                                                       \
            p_ = (__typeof__(f) *)sy__real_resolve((void **)&sy__real.f, #f);    \
        if (unlikely(!p_))                                                       \
            sy__real_missing(#f);                                                \
        p_;                                                                      \
    })

/* SY_HOST_SYNC=off in the environment (read once, before main): the
 * interposed calls only forward to the real ones and count the locks a
 * task holds (the hardening issue's rule), as before hostsync.c existed. */
extern bool sy__hostsync_off HIDDEN;

/* ------------------------------------------------- who calls, counting */

/* The calling task, or NULL for a plain thread (no runtime on this thread,
 * or the runtime's own idle context).  *cp: this thread's CPU or NULL. */
static inline struct task *hs_task(struct cpu **cp)
{
    struct cpu *c = this_cpu();
    *cp = c;
    if (!c || c->curr == &c->idle)
        return NULL;
    return c->curr;
}

/* The calling task took a host lock: it is not preempted until it has
 * released every one (hostlock.c has the why). */
static inline void hs_held(struct task *t)
{
    t->host_locks++;
    /* two 4-byte increments, not one 8-byte vector add: the unlock's two
     * 4-byte stores would not forward to its load (a stall every pair) */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t->preempt_count++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* before the tick can see us return */
}

/* A task took (+1) or released (-1) a lock that belongs to its host
 * thread: it must stay on that thread until it releases it (no hand-off
 * meanwhile: handoff.c). */
static inline void hs_thread_owned(int d)
{
    __atomic_add_fetch(&sy__thread_owned_holds, d, __ATOMIC_RELAXED);
}

/* It released one: a safe point once it holds none, if `resched` (not
 * inside a wait that is about to switch anyway). */
static inline void hs_released(struct task *t, bool resched)
{
    if (t->host_locks == 0)
        return; /* not counted: taken outside this task */
    t->host_locks--;
    if (t->preempt_count > 0) /* an unbalanced sy_preempt_enable took it already */
        t->preempt_count--;
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the count drops before need_resched is read */
    if (resched)
        resched_point(this_cpu());
}

/* --------------------------------------------- the task-aware objects */

/* How a lock call waits. */
enum { HS_BLOCK, HS_TRY, HS_TIMED };

/* Each returns what the POSIX call returns (an errno value, 0 for
 * success), or HS_FOREIGN: the object is one glibc keeps (process-shared,
 * robust, priority-inheriting or -protecting): the caller forwards to the
 * real call (hostlock.c: a task then polls, it never blocks its CPU). */
#define HS_FOREIGN INT_MIN /* (not -1: PTHREAD_BARRIER_SERIAL_THREAD is) */

HIDDEN int sy__hm_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
HIDDEN int sy__hm_destroy(pthread_mutex_t *m);
HIDDEN int sy__hm_lock(pthread_mutex_t *m, int how, clockid_t clk, const struct timespec *ts);
HIDDEN int sy__hm_unlock(pthread_mutex_t *m);
HIDDEN bool sy__hm_foreign(const pthread_mutex_t *m);

HIDDEN int sy__hc_init(pthread_cond_t *cv, const pthread_condattr_t *a);
HIDDEN int sy__hc_destroy(pthread_cond_t *cv);
HIDDEN int sy__hc_wait(pthread_cond_t *cv, pthread_mutex_t *m, clockid_t clk,
                       const struct timespec *ts);
HIDDEN int sy__hc_wake(pthread_cond_t *cv, bool all);

HIDDEN int sy__hrw_init(pthread_rwlock_t *rw, const pthread_rwlockattr_t *a);
HIDDEN int sy__hrw_destroy(pthread_rwlock_t *rw);
HIDDEN int sy__hrw_lock(pthread_rwlock_t *rw, bool write, int how, clockid_t clk,
                        const struct timespec *ts);
HIDDEN int sy__hrw_unlock(pthread_rwlock_t *rw);

HIDDEN int sy__hsem_init(sem_t *s, int pshared, unsigned value);
HIDDEN int sy__hsem_wait(sem_t *s, int how, clockid_t clk, const struct timespec *ts);
HIDDEN int sy__hsem_post(sem_t *s);

HIDDEN int sy__hbar_init(pthread_barrier_t *b, const pthread_barrierattr_t *a, unsigned count);
HIDDEN int sy__hbar_destroy(pthread_barrier_t *b);
HIDDEN int sy__hbar_wait(pthread_barrier_t *b);

HIDDEN int sy__honce(int *ctl, void (*fn)(void));

HIDDEN int sy__hspin_lock(pthread_spinlock_t *l, struct task *t);

HIDDEN void sy__hfile_lock(FILE *f, struct task *t, struct cpu *c);
HIDDEN int sy__hfile_trylock(FILE *f, struct task *t, struct cpu *c);
HIDDEN void sy__hfile_unlock(FILE *f, struct task *t);

/* Plain threads of the program alive now (hostlock.c counts those made
 * through pthread_create whose start routine is not the runtime's, and the
 * main thread when sy_run runs on another). */
HIDDEN int sy__plain_threads(void);

/* A POSIX absolute time on clock clk (CLOCK_REALTIME or CLOCK_MONOTONIC)
 * as a sy_now() deadline: 0, or EINVAL. */
HIDDEN int sy__hs_deadline(clockid_t clk, const struct timespec *ts, int64_t *out);
HIDDEN void sy__hs_forked(void);
HIDDEN int sy__hs_tid(void);

/* The nap before the n-th try of a task that polls (an object glibc
 * keeps, a FILE a plain thread holds): 20 us, doubling, up to 5 ms. */
static inline uint64_t hs_backoff_ns(unsigned n)
{
    return n < 8 ? 20000u << n : 5000000u;
}

/* A task's wait that must not end at a kill and has no object to queue
 * on: sleep `ns` (hostsync.c). */
HIDDEN void sy__hs_nap(struct task *t, struct cpu *c, uint64_t ns, const void *wchan);

#endif
