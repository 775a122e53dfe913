/*
 * hostlock.c - the host's threading calls, interposed: pthread mutexes,
 * conditions, rwlocks, spinlocks, barriers and once, POSIX semaphores,
 * flockfile, and C11's mtx_*, cnd_* and call_once.  hostsync.c has what
 * they do (a task that waits sleeps, the owner of a lock is the task);
 * this file has the names, the real calls, the switch that turns it off,
 * and the objects glibc keeps.
 *
 * How: the library defines those public names, with default visibility and
 * listed in exports.map.  A program linked with the shared library finds
 * ours first when libswitchyard comes before the C library in its search
 * order (it does: the C library is always last); a program linked with the
 * static library gets them in its own text (the archive member is pulled
 * in by any of the names, and by sy_run, which refers to
 * sy__hostlock_init).  C11's calls are interposed apart: glibc maps them
 * onto its pthread calls inside the C library, where no interposition
 * reaches.  The real calls are the next definitions in the search order,
 * found with dlsym(RTLD_NEXT, name): the C library's, or a sanitizer's
 * interceptor when one is loaded before the C library.  All are resolved
 * once, in a constructor; a call that comes before that (another library's
 * constructor) resolves its own.  glibc's dlsym takes the loader's lock
 * through the C library's own mutex code, never through these names, so it
 * cannot come back here.
 *
 * Plain threads call the same implementation (an object is shared by both
 * sides, used first by one and then by the other): outside a task the
 * calls behave as glibc's, blocking in the kernel.
 *
 * Objects glibc keeps (process-shared ones, robust and priority mutexes,
 * named semaphores: hostsync.c says why): a plain thread gets the real
 * call; a task polls with the real try call, napping between tries (20 us,
 * doubling to 5 ms), so its CPU runs others meanwhile.  A process-shared
 * condition or barrier has no try call: a task that waits on one blocks
 * its CPU's host thread (documented).
 *
 * The switch: SY_HOST_SYNC=off in the environment, read once before main.
 * Then every call goes to the real one, and a task only counts the locks
 * it holds (host_locks, in its preempt count: the tick does not preempt a
 * holder, whose waiter would block the host thread) - what this file did
 * before hostsync.c.  Decided once for the process: an object is never
 * used under both.
 *
 * Cost, outside the objects glibc keeps: a load of the switch and of the
 * object's kind more than the implementation's own (b_hostlock measures
 * it against glibc's calls).  The wrappers live in sy_text with the rest
 * of the runtime, so a tick that lands in one finds the runtime's code and
 * does not switch.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "hostsync.h"

#define PUBLIC __attribute__((visibility("default")))

/* ------------------------------------------------------ the real calls */

struct sy_real sy__real;
bool sy__hostsync_off;

void *sy__real_resolve(void **slot, const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    __atomic_store_n(slot, p, __ATOMIC_RELAXED);
    return p;
}

void sy__real_missing(const char *name)
{
    static const char msg[] = "switchyard: no definition of a host threading call after the "
                              "runtime's: ";
    ssize_t r = write(2, msg, sizeof msg - 1);
    r = write(2, name, strlen(name));
    static const char why[] = " (a statically linked program? dlsym(RTLD_NEXT) finds nothing "
                              "there: link the C library dynamically)\n";
    r = write(2, why, sizeof why - 1);
    (void)r;
    abort();
}

void sy__hostlock_init(void)
{
#define R(f) sy__real_resolve((void **)&sy__real.f, #f);
    SY_REAL_CALLS(R)
#undef R
}

static int plain_threads; /* atomic: below */

/* In a forked child only the thread that forked lives on. */
static void forked(void)
{
    __atomic_store_n(&plain_threads, 0, __ATOMIC_SEQ_CST);
    sy__hs_forked();
}

__attribute__((constructor)) static void hostlock_ctor(void)
{
    const char *v = getenv("SY_HOST_SYNC");
    sy__hostsync_off = v && (!strcmp(v, "off") || !strcmp(v, "0"));
    sy__hostlock_init();
    pthread_atfork(NULL, NULL, forked);
}

/* Is this object ours (not glibc's, and the switch on)? */
#define OURS(foreign) (likely(!sy__hostsync_off) && !(foreign))

/* ------------------------------------------- counting, and polling */

/* A real acquire returned r: count it in the calling task if it took the
 * lock (ok, or EOWNERDEAD: a robust mutex whose owner died).  `owned`: the
 * lock belongs to the host thread (a mutex or rwlock of glibc's, not a
 * spinlock, which has no owner): the task must stay on it. */
static inline int counted_as(int r, int ok, bool owned)
{
    if (r == ok || r == EOWNERDEAD) {
        struct cpu *c;
        struct task *t = hs_task(&c);
        if (t) {
            if (owned)
                hs_thread_owned(1);
            hs_held(t);
        }
    }
    return r;
}

static inline int counted(int r, int ok)
{
    return counted_as(r, ok, true);
}

/* A real release returned r. */
static inline int uncounted_as(int r, int ok, bool owned)
{
    if (r == ok) {
        struct cpu *c;
        struct task *t = hs_task(&c);
        if (t && t->host_locks) {
            if (owned)
                hs_thread_owned(-1);
            hs_released(t, true);
        }
    }
    return r;
}

static inline int uncounted(int r, int ok)
{
    return uncounted_as(r, ok, true);
}

/* The deadline of a timed call (SY_FOREVER for the others); EINVAL. */
static inline int deadline_of(int how, clockid_t clk, const struct timespec *ts, int64_t *d)
{
    *d = SY_FOREVER;
    return how == HS_TIMED ? sy__hs_deadline(clk, ts, d) : 0;
}

/* A task waits for an object glibc keeps: `try` (an expression) until it
 * is not `busy`, napping between tries, until the deadline (ETIMEDOUT).
 * Evaluates to the try's last result. */
#define POLL(t, c, obj, deadline, busy, try)                                     \
    __extension__({                                                              \
        int r_;                                                                  \
        for (unsigned n_ = 0;; n_++) {                                           \
            r_ = (try);                                                          \
            if (r_ != (busy))                                                    \
                break;                                                           \
            if ((deadline) != SY_FOREVER && (uint64_t)(deadline) <= sy__now_ns()) { \
                r_ = ETIMEDOUT;                                                  \
                break;                                                           \
            }                                                                    \
            sy__hs_nap(t, c, hs_backoff_ns(n_), obj);                             \
            c = this_cpu();                                                      \
        }                                                                        \
        r_;                                                                      \
    })

/* ------------------------------------------------------ pthread mutexes */

/* A lock of a mutex glibc keeps (or any, with the switch off). */
static int real_mutex_lock(pthread_mutex_t *m, int how, clockid_t clk,
                           const struct timespec *ts, bool clock)
{
    struct cpu *c;
    struct task *t = hs_task(&c);
    if (!t || sy__hostsync_off) {
        int r = how == HS_TRY     ? REAL(pthread_mutex_trylock)(m)
                : how == HS_BLOCK ? REAL(pthread_mutex_lock)(m)
                : clock           ? REAL(pthread_mutex_clocklock)(m, clk, ts)
                                  : REAL(pthread_mutex_timedlock)(m, ts);
        return counted(r, 0);
    }
    int64_t d;
    int e = deadline_of(how, clk, ts, &d);
    int r = REAL(pthread_mutex_trylock)(m);
    if (r == EBUSY && how != HS_TRY)
        r = e ? e : POLL(t, c, m, d, EBUSY, REAL(pthread_mutex_trylock)(m));
    return counted(r, 0);
}

PUBLIC int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hm_init(m, a);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_mutex_init)(m, a);
}

PUBLIC int pthread_mutex_destroy(pthread_mutex_t *m)
{
    if (OURS(sy__hm_foreign(m)))
        return sy__hm_destroy(m);
    return REAL(pthread_mutex_destroy)(m);
}

/* The fast paths of a normal mutex of ours (kind 0: the default and
 * PTHREAD_MUTEX_INITIALIZER), inline here: one compare-and-swap each way,
 * the owner, the count.  While the process has never had a second thread
 * (one CPU, no threads of the program's) glibc takes its mutex with a plain
 * load and store, and so do we: every task runs on this one thread, and
 * none is switched inside these wrappers (sy_text).  Anything else - a
 * held mutex, waiters (word 2), other kinds - goes to hostsync.c.  (Found
 * by measuring against glibc's own: b_hostlock.) */
static inline bool fast_take(pthread_mutex_t *m)
{
    int *w = &m->__data.__lock;
    if (__libc_single_threaded) {
        if (__atomic_load_n(w, __ATOMIC_RELAXED))
            return false;
        __atomic_store_n(w, 1, __ATOMIC_RELAXED);
        return true;
    }
    int z = 0;
    return __atomic_compare_exchange_n(w, &z, 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

PUBLIC int pthread_mutex_lock(pthread_mutex_t *m)
{
    if (likely(!sy__hostsync_off) &&
        __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED) == PTHREAD_MUTEX_NORMAL &&
        likely(fast_take(m))) {
        struct cpu *c = this_cpu();
        if (c && c->curr != &c->idle) {
            struct task *t = c->curr;
            __atomic_store_n(&m->__data.__owner, -t->pid, __ATOMIC_RELAXED);
            hs_held(t);
        } else {
            __atomic_store_n(&m->__data.__owner, sy__hs_tid(), __ATOMIC_RELAXED);
        }
        return 0;
    }
    if (OURS(sy__hm_foreign(m)))
        return sy__hm_lock(m, HS_BLOCK, CLOCK_REALTIME, NULL);
    return real_mutex_lock(m, HS_BLOCK, CLOCK_REALTIME, NULL, false);
}

PUBLIC int pthread_mutex_trylock(pthread_mutex_t *m)
{
    if (OURS(sy__hm_foreign(m)))
        return sy__hm_lock(m, HS_TRY, CLOCK_REALTIME, NULL);
    return real_mutex_lock(m, HS_TRY, CLOCK_REALTIME, NULL, false);
}

PUBLIC int pthread_mutex_timedlock(pthread_mutex_t *restrict m,
                                   const struct timespec *restrict ts)
{
    if (OURS(sy__hm_foreign(m)))
        return sy__hm_lock(m, HS_TIMED, CLOCK_REALTIME, ts);
    return real_mutex_lock(m, HS_TIMED, CLOCK_REALTIME, ts, false);
}

PUBLIC int pthread_mutex_clocklock(pthread_mutex_t *restrict m, clockid_t clk,
                                   const struct timespec *restrict ts)
{
    if (OURS(sy__hm_foreign(m)))
        return sy__hm_lock(m, HS_TIMED, clk, ts);
    return real_mutex_lock(m, HS_TIMED, clk, ts, true);
}

PUBLIC int pthread_mutex_unlock(pthread_mutex_t *m)
{
    if (likely(!sy__hostsync_off) &&
        __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED) == PTHREAD_MUTEX_NORMAL) {
        int *w = &m->__data.__lock;
        bool done;
        if (__libc_single_threaded) {
            done = __atomic_load_n(w, __ATOMIC_RELAXED) == 1;
            if (done) {
                __atomic_store_n(&m->__data.__owner, 0, __ATOMIC_RELAXED);
                __atomic_store_n(w, 0, __ATOMIC_RELAXED);
            }
        } else {
            __atomic_store_n(&m->__data.__owner, 0, __ATOMIC_RELAXED);
            int one = 1;
            done = __atomic_compare_exchange_n(w, &one, 0, false, __ATOMIC_RELEASE,
                                               __ATOMIC_RELAXED);
        }
        if (likely(done)) {
            struct cpu *c = this_cpu();
            if (c && c->curr != &c->idle)
                hs_released(c->curr, true);
            return 0;
        }
    }
    if (OURS(sy__hm_foreign(m)))
        return sy__hm_unlock(m);
    return uncounted(REAL(pthread_mutex_unlock)(m), 0);
}

/* --------------------------------------------------- pthread conditions */

PUBLIC int pthread_cond_init(pthread_cond_t *restrict cv, const pthread_condattr_t *restrict a)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hc_init(cv, a);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_cond_init)(cv, a);
}

PUBLIC int pthread_cond_destroy(pthread_cond_t *cv)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hc_destroy(cv);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_cond_destroy)(cv);
}

PUBLIC int pthread_cond_wait(pthread_cond_t *restrict cv, pthread_mutex_t *restrict m)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hc_wait(cv, m, (clockid_t)-1, NULL);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_cond_wait)(cv, m);
}

PUBLIC int pthread_cond_timedwait(pthread_cond_t *restrict cv, pthread_mutex_t *restrict m,
                                  const struct timespec *restrict ts)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hc_wait(cv, m, (clockid_t)-1, ts);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_cond_timedwait)(cv, m, ts);
}

PUBLIC int pthread_cond_clockwait(pthread_cond_t *restrict cv, pthread_mutex_t *restrict m,
                                  clockid_t clk, const struct timespec *restrict ts)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hc_wait(cv, m, clk, ts);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_cond_clockwait)(cv, m, clk, ts);
}

PUBLIC int pthread_cond_signal(pthread_cond_t *cv)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hc_wake(cv, false);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_cond_signal)(cv);
}

PUBLIC int pthread_cond_broadcast(pthread_cond_t *cv)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hc_wake(cv, true);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_cond_broadcast)(cv);
}

/* ------------------------------------------------------ pthread rwlocks */

/* A lock of an rwlock: ours, or glibc's (process-shared; or the switch off). */
static int rwlock_lock(pthread_rwlock_t *l, bool write, int how, clockid_t clk,
                       const struct timespec *ts, bool clock)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hrw_lock(l, write, how, clk, ts);
        if (r != HS_FOREIGN)
            return r;
    }
    struct cpu *c;
    struct task *t = hs_task(&c);
    if (!t || sy__hostsync_off) {
        int r;
        if (how == HS_TRY)
            r = write ? REAL(pthread_rwlock_trywrlock)(l) : REAL(pthread_rwlock_tryrdlock)(l);
        else if (how == HS_BLOCK)
            r = write ? REAL(pthread_rwlock_wrlock)(l) : REAL(pthread_rwlock_rdlock)(l);
        else if (clock)
            r = write ? REAL(pthread_rwlock_clockwrlock)(l, clk, ts)
                      : REAL(pthread_rwlock_clockrdlock)(l, clk, ts);
        else
            r = write ? REAL(pthread_rwlock_timedwrlock)(l, ts)
                      : REAL(pthread_rwlock_timedrdlock)(l, ts);
        return counted(r, 0);
    }
    int64_t d;
    int e = deadline_of(how, clk, ts, &d);
    int r = write ? REAL(pthread_rwlock_trywrlock)(l) : REAL(pthread_rwlock_tryrdlock)(l);
    if (r == EBUSY && how != HS_TRY)
        r = e ? e
              : POLL(t, c, l, d, EBUSY,
                     write ? REAL(pthread_rwlock_trywrlock)(l) : REAL(pthread_rwlock_tryrdlock)(l));
    return counted(r, 0);
}

PUBLIC int pthread_rwlock_init(pthread_rwlock_t *restrict l, const pthread_rwlockattr_t *restrict a)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hrw_init(l, a);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_rwlock_init)(l, a);
}

PUBLIC int pthread_rwlock_destroy(pthread_rwlock_t *l)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hrw_destroy(l);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_rwlock_destroy)(l);
}

PUBLIC int pthread_rwlock_rdlock(pthread_rwlock_t *l)
{
    return rwlock_lock(l, false, HS_BLOCK, CLOCK_REALTIME, NULL, false);
}

PUBLIC int pthread_rwlock_wrlock(pthread_rwlock_t *l)
{
    return rwlock_lock(l, true, HS_BLOCK, CLOCK_REALTIME, NULL, false);
}

PUBLIC int pthread_rwlock_tryrdlock(pthread_rwlock_t *l)
{
    return rwlock_lock(l, false, HS_TRY, CLOCK_REALTIME, NULL, false);
}

PUBLIC int pthread_rwlock_trywrlock(pthread_rwlock_t *l)
{
    return rwlock_lock(l, true, HS_TRY, CLOCK_REALTIME, NULL, false);
}

PUBLIC int pthread_rwlock_timedrdlock(pthread_rwlock_t *restrict l,
                                      const struct timespec *restrict ts)
{
    return rwlock_lock(l, false, HS_TIMED, CLOCK_REALTIME, ts, false);
}

PUBLIC int pthread_rwlock_timedwrlock(pthread_rwlock_t *restrict l,
                                      const struct timespec *restrict ts)
{
    return rwlock_lock(l, true, HS_TIMED, CLOCK_REALTIME, ts, false);
}

PUBLIC int pthread_rwlock_clockrdlock(pthread_rwlock_t *restrict l, clockid_t clk,
                                      const struct timespec *restrict ts)
{
    return rwlock_lock(l, false, HS_TIMED, clk, ts, true);
}

PUBLIC int pthread_rwlock_clockwrlock(pthread_rwlock_t *restrict l, clockid_t clk,
                                      const struct timespec *restrict ts)
{
    return rwlock_lock(l, true, HS_TIMED, clk, ts, true);
}

PUBLIC int pthread_rwlock_unlock(pthread_rwlock_t *l)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hrw_unlock(l);
        if (r != HS_FOREIGN)
            return r;
    }
    return uncounted(REAL(pthread_rwlock_unlock)(l), 0);
}

/* ---------------------------------------------------- pthread spinlocks */

/* glibc's spinlocks stay glibc's; a task that finds one held does not
 * spin forever (hostsync.c: sy__hspin_lock). */
PUBLIC int pthread_spin_lock(pthread_spinlock_t *l)
{
    struct cpu *c;
    struct task *t = hs_task(&c);
    if (!t || sy__hostsync_off)
        return counted_as(REAL(pthread_spin_lock)(l), 0, false);
    return counted_as(sy__hspin_lock(l, t), 0, false);
}

PUBLIC int pthread_spin_trylock(pthread_spinlock_t *l)
{
    return counted_as(REAL(pthread_spin_trylock)(l), 0, false);
}

PUBLIC int pthread_spin_unlock(pthread_spinlock_t *l)
{
    return uncounted_as(REAL(pthread_spin_unlock)(l), 0, false);
}

/* ----------------------------------------------------- pthread barriers */

PUBLIC int pthread_barrier_init(pthread_barrier_t *restrict b,
                                const pthread_barrierattr_t *restrict a, unsigned count)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hbar_init(b, a, count);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_barrier_init)(b, a, count);
}

PUBLIC int pthread_barrier_destroy(pthread_barrier_t *b)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hbar_destroy(b);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_barrier_destroy)(b);
}

PUBLIC int pthread_barrier_wait(pthread_barrier_t *b)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hbar_wait(b);
        if (r != HS_FOREIGN)
            return r;
    }
    return REAL(pthread_barrier_wait)(b);
}

/* ----------------------------------------------------------------- once */

PUBLIC int pthread_once(pthread_once_t *once, void (*fn)(void))
{
    if (likely(!sy__hostsync_off))
        return sy__honce(once, fn);
    return REAL(pthread_once)(once, fn);
}

PUBLIC void call_once(once_flag *once, void (*fn)(void))
{
    if (likely(!sy__hostsync_off))
        sy__honce(&once->__data, fn);
    else
        REAL(call_once)(once, fn);
}

/* ------------------------------------------------------ POSIX semaphores */

/* errno-style: 0, or -1 with errno set. */
static inline int sem_ret(int r)
{
    if (!r)
        return 0;
    errno = r;
    return -1;
}

PUBLIC int sem_init(sem_t *s, int pshared, unsigned value)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hsem_init(s, pshared, value);
        if (r != HS_FOREIGN)
            return sem_ret(r);
    }
    return REAL(sem_init)(s, pshared, value);
}

/* A wait on a semaphore: ours, or glibc's (process-shared or named; or
 * the switch off). */
static int sem_wait_how(sem_t *s, int how, clockid_t clk, const struct timespec *ts, bool clock)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hsem_wait(s, how, clk, ts);
        if (r != HS_FOREIGN)
            return sem_ret(r);
    }
    struct cpu *c;
    struct task *t = hs_task(&c);
    if (!t || sy__hostsync_off)
        return how == HS_TRY     ? REAL(sem_trywait)(s)
               : how == HS_BLOCK ? REAL(sem_wait)(s)
               : clock           ? REAL(sem_clockwait)(s, clk, ts)
                                 : REAL(sem_timedwait)(s, ts);
    if (REAL(sem_trywait)(s) == 0)
        return 0;
    if (errno != EAGAIN || how == HS_TRY)
        return -1;
    int64_t d;
    int e = deadline_of(how, clk, ts, &d);
    if (e)
        return sem_ret(e);
    int r = POLL(t, c, s, d, EAGAIN, REAL(sem_trywait)(s) == 0 ? 0 : errno);
    return sem_ret(r);
}

PUBLIC int sem_wait(sem_t *s)
{
    return sem_wait_how(s, HS_BLOCK, CLOCK_REALTIME, NULL, false);
}

PUBLIC int sem_trywait(sem_t *s)
{
    return sem_wait_how(s, HS_TRY, CLOCK_REALTIME, NULL, false);
}

PUBLIC int sem_timedwait(sem_t *restrict s, const struct timespec *restrict ts)
{
    return sem_wait_how(s, HS_TIMED, CLOCK_REALTIME, ts, false);
}

PUBLIC int sem_clockwait(sem_t *restrict s, clockid_t clk, const struct timespec *restrict ts)
{
    return sem_wait_how(s, HS_TIMED, clk, ts, true);
}

PUBLIC int sem_post(sem_t *s)
{
    if (likely(!sy__hostsync_off)) {
        int r = sy__hsem_post(s);
        if (r != HS_FOREIGN)
            return sem_ret(r);
    }
    return REAL(sem_post)(s);
}

/* ------------------------------------------------------- stdio streams */

PUBLIC void flockfile(FILE *f)
{
    struct cpu *c;
    struct task *t = hs_task(&c);
    if (!t || sy__hostsync_off) {
        REAL(flockfile)(f);
        if (t) {
            hs_thread_owned(1);
            hs_held(t);
        }
        return;
    }
    sy__hfile_lock(f, t, c);
}

PUBLIC int ftrylockfile(FILE *f)
{
    struct cpu *c;
    struct task *t = hs_task(&c);
    if (!t || sy__hostsync_off)
        return counted(REAL(ftrylockfile)(f), 0);
    return sy__hfile_trylock(f, t, c);
}

PUBLIC void funlockfile(FILE *f)
{
    struct cpu *c;
    struct task *t = hs_task(&c);
    if (!t || sy__hostsync_off) {
        REAL(funlockfile)(f);
        if (t && t->host_locks) {
            hs_thread_owned(-1);
            hs_released(t, true);
        }
        return;
    }
    sy__hfile_unlock(f, t);
}

/* ---------------------------------------------------- plain threads */

/*
 * The deadlock detector must know whether a plain thread of the program
 * could still end a task's wait on a host object (hostsync.c).  Counting
 * the process's threads (/proc/self/status) counts an emulator's own too
 * (qemu-user's): so pthread_create is interposed and counts the threads it
 * makes whose start routine is not the runtime's own (in sy_text: its CPUs,
 * its file workers), until they end (a key's destructor runs at every
 * thread end: return, pthread_exit, cancellation).  Threads made another
 * way (a raw clone) are not counted.
 */
extern char __start_sy_text[] __attribute__((weak, visibility("hidden")));
extern char __stop_sy_text[] __attribute__((weak, visibility("hidden")));

static pthread_key_t plain_key;
static pthread_once_t plain_once = PTHREAD_ONCE_INIT;

static void plain_end(void *v)
{
    (void)v;
    __atomic_sub_fetch(&plain_threads, 1, __ATOMIC_SEQ_CST);
}

static void plain_key_make(void)
{
    pthread_key_create(&plain_key, plain_end);
}

struct plain_start {
    void *(*fn)(void *);
    void *arg;
    int used; /* a slot of the pool below (atomic) */
};

/* The start records: a small pool, so that the new thread calls nothing a
 * sanitizer intercepts before the program's routine runs (with the shared
 * library, TSan's pthread_create comes first and calls ours: its own
 * thread setup runs in the routine we start, and a free() before it
 * crashed); malloc only when the pool is exhausted. */
#define PLAIN_SLOTS 64
static struct plain_start plain_slots[PLAIN_SLOTS];

/* (Not instrumented: under TSan with the shared library, the routine it
 * starts is TSan's own thread setup, which must run before any
 * instrumented code on the new thread.) */
__attribute__((no_sanitize_thread)) static void *plain_trampoline(void *p)
{
    struct plain_start *sp = p, st = *sp;
    if (sp >= plain_slots && sp < plain_slots + PLAIN_SLOTS)
        __atomic_store_n(&sp->used, 0, __ATOMIC_RELEASE);
    else
        free(sp);
    pthread_setspecific(plain_key, (void *)1); /* plain_end at its end */
    return st.fn(st.arg);
}

PUBLIC int pthread_create(pthread_t *restrict th, const pthread_attr_t *restrict a,
                          void *(*fn)(void *), void *restrict arg)
{
    uintptr_t f = (uintptr_t)fn;
    if (f >= (uintptr_t)__start_sy_text && f < (uintptr_t)__stop_sy_text)
        return REAL(pthread_create)(th, a, fn, arg); /* one of the runtime's */
    struct plain_start *st = NULL;
    for (int i = 0; i < PLAIN_SLOTS && !st; i++) {
        int zero = 0;
        if (__atomic_compare_exchange_n(&plain_slots[i].used, &zero, 1, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            st = &plain_slots[i];
    }
    if (!st && !(st = malloc(sizeof *st)))
        return EAGAIN;
    st->fn = fn;
    st->arg = arg;
    pthread_once(&plain_once, plain_key_make);
    __atomic_add_fetch(&plain_threads, 1, __ATOMIC_SEQ_CST);
    int r = REAL(pthread_create)(th, a, plain_trampoline, st);
    if (r) {
        __atomic_sub_fetch(&plain_threads, 1, __ATOMIC_SEQ_CST);
        if (st >= plain_slots && st < plain_slots + PLAIN_SLOTS)
            __atomic_store_n(&st->used, 0, __ATOMIC_RELEASE);
        else
            free(st);
    }
    return r;
}

int sy__plain_threads(void)
{
    int n = __atomic_load_n(&plain_threads, __ATOMIC_SEQ_CST);
    /* sy_run on a thread other than the main one: the main thread lives */
    if (rt.boot_tid != getpid())
        n++;
    return n;
}

/* --------------------------------------------------------- C11 threads */

/* thrd_* from a POSIX error */
static inline int thrd_of(int r)
{
    return r == 0 ? thrd_success : r == EBUSY ? thrd_busy : r == ETIMEDOUT ? thrd_timedout
                                                                           : thrd_error;
}

#define MTX(m) ((pthread_mutex_t *)(void *)(m))
#define CND(c) ((pthread_cond_t *)(void *)(c))
_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t is a pthread_mutex_t");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t is a pthread_cond_t");

PUBLIC int mtx_init(mtx_t *m, int type)
{
    if (unlikely(sy__hostsync_off))
        return REAL(mtx_init)(m, type);
    if (type != mtx_plain && type != mtx_timed && type != (mtx_plain | mtx_recursive) &&
        type != (mtx_timed | mtx_recursive))
        return thrd_error;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type & mtx_recursive ? PTHREAD_MUTEX_RECURSIVE
                                                       : PTHREAD_MUTEX_NORMAL);
    int r = sy__hm_init(MTX(m), &a);
    pthread_mutexattr_destroy(&a);
    return thrd_of(r);
}

PUBLIC void mtx_destroy(mtx_t *m)
{
    if (unlikely(sy__hostsync_off))
        REAL(mtx_destroy)(m);
    else
        pthread_mutex_destroy(MTX(m));
}

PUBLIC int mtx_lock(mtx_t *m)
{
    if (unlikely(sy__hostsync_off))
        return counted(REAL(mtx_lock)(m), thrd_success);
    return thrd_of(pthread_mutex_lock(MTX(m)));
}

PUBLIC int mtx_trylock(mtx_t *m)
{
    if (unlikely(sy__hostsync_off))
        return counted(REAL(mtx_trylock)(m), thrd_success);
    return thrd_of(pthread_mutex_trylock(MTX(m)));
}

PUBLIC int mtx_timedlock(mtx_t *restrict m, const struct timespec *restrict ts)
{
    if (unlikely(sy__hostsync_off))
        return counted(REAL(mtx_timedlock)(m, ts), thrd_success);
    return thrd_of(pthread_mutex_timedlock(MTX(m), ts));
}

PUBLIC int mtx_unlock(mtx_t *m)
{
    if (unlikely(sy__hostsync_off))
        return uncounted(REAL(mtx_unlock)(m), thrd_success);
    return thrd_of(pthread_mutex_unlock(MTX(m)));
}

PUBLIC int cnd_init(cnd_t *cv)
{
    if (unlikely(sy__hostsync_off))
        return REAL(cnd_init)(cv);
    return thrd_of(sy__hc_init(CND(cv), NULL));
}

PUBLIC void cnd_destroy(cnd_t *cv)
{
    if (unlikely(sy__hostsync_off))
        REAL(cnd_destroy)(cv);
    else
        sy__hc_destroy(CND(cv));
}

PUBLIC int cnd_wait(cnd_t *cv, mtx_t *m)
{
    if (unlikely(sy__hostsync_off))
        return REAL(cnd_wait)(cv, m);
    return thrd_of(pthread_cond_wait(CND(cv), MTX(m)));
}

PUBLIC int cnd_timedwait(cnd_t *restrict cv, mtx_t *restrict m, const struct timespec *restrict ts)
{
    if (unlikely(sy__hostsync_off))
        return REAL(cnd_timedwait)(cv, m, ts);
    return thrd_of(pthread_cond_clockwait(CND(cv), MTX(m), CLOCK_REALTIME, ts));
}

PUBLIC int cnd_signal(cnd_t *cv)
{
    if (unlikely(sy__hostsync_off))
        return REAL(cnd_signal)(cv);
    return thrd_of(pthread_cond_signal(CND(cv)));
}

PUBLIC int cnd_broadcast(cnd_t *cv)
{
    if (unlikely(sy__hostsync_off))
        return REAL(cnd_broadcast)(cv);
    return thrd_of(pthread_cond_broadcast(CND(cv)));
}
