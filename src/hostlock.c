/*
 * hostlock.c - the host's lock calls, interposed: a task that holds a lock
 * of the host thread is not preempted.
 *
 * The problem: on one CPU, task A takes a pthread_mutex_t and the tick
 * preempts it inside; task B calls pthread_mutex_lock on the same mutex and
 * blocks the CPU's host thread in the kernel (futex); A, the only one that
 * could release it, never runs again.  Nothing in the runtime sleeps, so the
 * deadlock detector sees a busy CPU.  A spinning lock (pthread_spin_lock)
 * spins forever instead.  Kernels have the same rule: spin_lock() disables
 * preemption until spin_unlock().
 *
 * The rule here: every successful acquire of a host lock by a task counts
 * in the task (host_locks) and in its preempt count, as sy_preempt_disable()
 * does; the matching release takes both back and is a safe point
 * (resched_point: the switch a tick wanted while the lock was held happens
 * there).  Covered, when called by the program's own code (or by a shared
 * library through its PLT, when the runtime is the shared library):
 *     pthread_mutex_{lock,trylock,timedlock,clocklock,unlock}
 *     pthread_rwlock_{rd,wr,tryrd,trywr,timedrd,timedwr,clockrd,clockwr}lock,
 *     pthread_rwlock_unlock
 *     pthread_spin_{lock,trylock,unlock}
 *     flockfile, ftrylockfile, funlockfile
 *     mtx_{lock,trylock,timedlock,unlock} (C11; glibc maps them onto a
 *     pthread mutex inside the C library, so they are interposed apart)
 * A failed trylock or timed lock does not count; EOWNERDEAD (a robust
 * mutex) is an acquire.  An unlock that fails does not count, and one the
 * task has no count for (a lock taken before sy_run, by another thread or
 * by the idle context) changes nothing: the count never goes negative.
 * Locks taken inside the C library itself (malloc's, stdio's) never come
 * here; they need nothing, as the tick never switches a task inside a
 * shared library (preempt.c).
 *
 * How: the library defines those public names, with default visibility and
 * listed in exports.map.  A program linked with the shared library finds
 * ours first when libswitchyard comes before the C library in its search
 * order (it does: the C library is always last); a program linked with the
 * static library gets them in its own text (sy_run refers to
 * sy__hostlock_init, so this object is always linked in, even by a program
 * whose only lock calls are weak references, as libstdc++'s gthreads are).
 * Each forwards to the next definition in the search order, found with
 * dlsym(RTLD_NEXT, name): the C library's, or a sanitizer's interceptor
 * when one is loaded before the C library (TSan then still sees every lock
 * and unlock).  All are resolved once, in a constructor (and again by
 * sy_run, which is free); a call that comes before that (another library's
 * constructor) resolves its own.  glibc's dlsym takes the loader's lock
 * through a pointer to the C library's own mutex code, never through these
 * names, so it cannot come back here.
 *
 * Outside a task (no runtime on this thread, or the runtime's own idle
 * context) the calls forward untouched: one load of the thread's CPU
 * pointer more.  Inside one: two increments, and on release a check of
 * need_resched (b_hostlock measures it).  The wrappers live in sy_text with
 * the rest of the runtime, so a tick that lands between the real acquire
 * and the count (or the real release and the uncount) finds the runtime's
 * code and does not switch.
 *
 * What this does not do (a later step): the owner of a host lock is the
 * host thread, not the task.  Two tasks on one host thread are one owner to
 * a recursive or error-checking mutex, to flockfile's recursion, and to a
 * rwlock's writer check: a task that sleeps or yields while it holds one
 * (any runtime call that may switch) lets the next task on that thread
 * "re-enter" it, or block the thread; after such a switch it may also
 * resume on another host thread and unlock from there (an error-checking
 * mutex says EPERM).  The count travels with the task (it is in struct
 * task), so the task stays non-preemptible wherever it resumes until it
 * unlocks.  A lock taken by one task and released by another (undefined
 * for POSIX mutexes and spinlocks) leaves the first task's count up.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <threads.h>
#include <unistd.h>

#include "internal.h"

#define PUBLIC __attribute__((visibility("default")))

/* ------------------------------------------------------ the real calls */

#define REAL_DECL(f) static __typeof__(f) *real_##f;
REAL_DECL(pthread_mutex_lock)
REAL_DECL(pthread_mutex_trylock)
REAL_DECL(pthread_mutex_timedlock)
REAL_DECL(pthread_mutex_clocklock)
REAL_DECL(pthread_mutex_unlock)
REAL_DECL(pthread_rwlock_rdlock)
REAL_DECL(pthread_rwlock_wrlock)
REAL_DECL(pthread_rwlock_tryrdlock)
REAL_DECL(pthread_rwlock_trywrlock)
REAL_DECL(pthread_rwlock_timedrdlock)
REAL_DECL(pthread_rwlock_timedwrlock)
REAL_DECL(pthread_rwlock_clockrdlock)
REAL_DECL(pthread_rwlock_clockwrlock)
REAL_DECL(pthread_rwlock_unlock)
REAL_DECL(pthread_spin_lock)
REAL_DECL(pthread_spin_trylock)
REAL_DECL(pthread_spin_unlock)
REAL_DECL(flockfile)
REAL_DECL(ftrylockfile)
REAL_DECL(funlockfile)
REAL_DECL(mtx_lock)
REAL_DECL(mtx_trylock)
REAL_DECL(mtx_timedlock)
REAL_DECL(mtx_unlock)

/* Find the next definition of `name`; NULL if the C library has none (the
 * clock* calls before glibc 2.30). */
static void *resolve(void **slot, const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    __atomic_store_n(slot, p, __ATOMIC_RELAXED);
    return p;
}

/* The real f, resolved now if nobody did yet. */
#define REAL(f)                                                                  \
    __extension__({                                                              \
        __typeof__(f) *p_ = __atomic_load_n(&real_##f, __ATOMIC_RELAXED);        \
        if (unlikely(!p_))                                                       \
            p_ = (__typeof__(f) *)resolve((void **)&real_##f, #f);               \
        p_;                                                                      \
    })

/* A call that every C library has: without it nothing sensible can be done. */
__attribute__((noreturn, cold)) static void missing(const char *name)
{
    static const char msg[] = "switchyard: no definition of a host lock call after the runtime's: ";
    ssize_t r = write(2, msg, sizeof msg - 1);
    r = write(2, name, __builtin_strlen(name));
    static const char why[] = " (a statically linked program? dlsym(RTLD_NEXT) finds nothing "
                              "there: link the C library dynamically)\n";
    r = write(2, why, sizeof why - 1);
    (void)r;
    abort();
}

#define REAL_NEEDED(f)                                                           \
    __extension__({                                                              \
        __typeof__(f) *q_ = REAL(f);                                             \
        if (unlikely(!q_))                                                       \
            missing(#f);                                                         \
        q_;                                                                      \
    })

void sy__hostlock_init(void)
{
#define R(f) resolve((void **)&real_##f, #f);
    R(pthread_mutex_lock)
    R(pthread_mutex_trylock)
    R(pthread_mutex_timedlock)
    R(pthread_mutex_clocklock)
    R(pthread_mutex_unlock)
    R(pthread_rwlock_rdlock)
    R(pthread_rwlock_wrlock)
    R(pthread_rwlock_tryrdlock)
    R(pthread_rwlock_trywrlock)
    R(pthread_rwlock_timedrdlock)
    R(pthread_rwlock_timedwrlock)
    R(pthread_rwlock_clockrdlock)
    R(pthread_rwlock_clockwrlock)
    R(pthread_rwlock_unlock)
    R(pthread_spin_lock)
    R(pthread_spin_trylock)
    R(pthread_spin_unlock)
    R(flockfile)
    R(ftrylockfile)
    R(funlockfile)
    R(mtx_lock)
    R(mtx_trylock)
    R(mtx_timedlock)
    R(mtx_unlock)
#undef R
}

__attribute__((constructor)) static void hostlock_ctor(void)
{
    sy__hostlock_init();
}

/* ----------------------------------------------------------- the count */

/* Is the caller a task?  (Not a thread outside the runtime, nor the
 * runtime's own idle context.)  Outside, the wrappers tail-call the real
 * function: one thread-local load more than a direct call. */
static inline bool in_task(void)
{
    struct cpu *c = this_cpu();
    return c && c->curr != &c->idle;
}

/* The calling task took a host lock.  (The CPU is read again after the
 * real call, though a task cannot switch inside the C library.) */
static inline void held(void)
{
    struct cpu *c = this_cpu();
    if (!c)
        return; /* not a runtime thread */
    struct task *t = c->curr;
    if (t == &c->idle)
        return; /* the runtime's own context */
    t->host_locks++;
    /* two 4-byte increments, not one 8-byte vector add: the unlock's two
     * 4-byte stores would not forward to its load (a stall every pair) */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    t->preempt_count++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* before the tick can see us return */
}

/* The calling task released one: a safe point once it holds none. */
static inline void released(void)
{
    struct cpu *c = this_cpu();
    if (!c)
        return;
    struct task *t = c->curr;
    if (t == &c->idle || t->host_locks == 0)
        return; /* not counted: taken outside this task */
    t->host_locks--;
    if (t->preempt_count > 0) /* an unbalanced sy_preempt_enable took it already */
        t->preempt_count--;
    __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the count drops before need_resched is read */
    resched_point(c);
}

/* `none`, what a call returns when the C library has no such call (the
 * clock* ones before glibc 2.30), or MUST_EXIST for the calls every C
 * library has: a lock call that returned an error without locking would be
 * silent corruption, so the program stops with a message instead. */
#define MUST_EXIST (-12345)

/* One wrapper: forward to the real f; inside a task, a return of `ok` or
 * `ok2` calls `counted` (held or released). */
#define WRAP(f, params, args, ok, ok2, none, counted)                           \
    PUBLIC int f params                                                          \
    {                                                                            \
        __typeof__(f) *real = REAL(f);                                           \
        if (unlikely(!real)) {                                                   \
            if ((none) == MUST_EXIST)                                            \
                missing(#f); /* never a lock call that takes no lock */          \
            return none;                                                         \
        }                                                                        \
        if (!in_task())                                                          \
            return real args;                                                    \
        int r = real args;                                                       \
        if (r == (ok) || r == (ok2))                                             \
            counted();                                                           \
        return r;                                                                \
    }

/* Acquire calls count a success (`ok`: what the call returns for one);
 * release calls uncount one. */
#define ACQUIRE(f, params, args, ok, ok2, none) WRAP(f, params, args, ok, ok2, none, held)
#define RELEASE(f, params, args, ok, none) WRAP(f, params, args, ok, ok, none, released)

/* ------------------------------------------------------ pthread mutexes */

/* EOWNERDEAD: a robust mutex whose owner died, acquired all the same */
ACQUIRE(pthread_mutex_lock, (pthread_mutex_t *m), (m), 0, EOWNERDEAD, MUST_EXIST)
ACQUIRE(pthread_mutex_trylock, (pthread_mutex_t *m), (m), 0, EOWNERDEAD, MUST_EXIST)
ACQUIRE(pthread_mutex_timedlock, (pthread_mutex_t *restrict m, const struct timespec *restrict ts),
        (m, ts), 0, EOWNERDEAD, MUST_EXIST)
ACQUIRE(pthread_mutex_clocklock,
        (pthread_mutex_t *restrict m, clockid_t clk, const struct timespec *restrict ts),
        (m, clk, ts), 0, EOWNERDEAD, ENOSYS)
RELEASE(pthread_mutex_unlock, (pthread_mutex_t *m), (m), 0, MUST_EXIST)

/* ------------------------------------------------------ pthread rwlocks */

ACQUIRE(pthread_rwlock_rdlock, (pthread_rwlock_t *l), (l), 0, 0, MUST_EXIST)
ACQUIRE(pthread_rwlock_wrlock, (pthread_rwlock_t *l), (l), 0, 0, MUST_EXIST)
ACQUIRE(pthread_rwlock_tryrdlock, (pthread_rwlock_t *l), (l), 0, 0, MUST_EXIST)
ACQUIRE(pthread_rwlock_trywrlock, (pthread_rwlock_t *l), (l), 0, 0, MUST_EXIST)
ACQUIRE(pthread_rwlock_timedrdlock,
        (pthread_rwlock_t *restrict l, const struct timespec *restrict ts), (l, ts), 0, 0, MUST_EXIST)
ACQUIRE(pthread_rwlock_timedwrlock,
        (pthread_rwlock_t *restrict l, const struct timespec *restrict ts), (l, ts), 0, 0, MUST_EXIST)
ACQUIRE(pthread_rwlock_clockrdlock,
        (pthread_rwlock_t *restrict l, clockid_t clk, const struct timespec *restrict ts),
        (l, clk, ts), 0, 0, ENOSYS)
ACQUIRE(pthread_rwlock_clockwrlock,
        (pthread_rwlock_t *restrict l, clockid_t clk, const struct timespec *restrict ts),
        (l, clk, ts), 0, 0, ENOSYS)
RELEASE(pthread_rwlock_unlock, (pthread_rwlock_t *l), (l), 0, MUST_EXIST)

/* ---------------------------------------------------- pthread spinlocks */

ACQUIRE(pthread_spin_lock, (pthread_spinlock_t *l), (l), 0, 0, MUST_EXIST)
ACQUIRE(pthread_spin_trylock, (pthread_spinlock_t *l), (l), 0, 0, MUST_EXIST)
RELEASE(pthread_spin_unlock, (pthread_spinlock_t *l), (l), 0, MUST_EXIST)

/* -------------------------------------------------------- C11 mutexes */

ACQUIRE(mtx_lock, (mtx_t *m), (m), thrd_success, thrd_success, MUST_EXIST)
ACQUIRE(mtx_trylock, (mtx_t *m), (m), thrd_success, thrd_success, MUST_EXIST)
ACQUIRE(mtx_timedlock, (mtx_t *restrict m, const struct timespec *restrict ts), (m, ts),
        thrd_success, thrd_success, MUST_EXIST)
RELEASE(mtx_unlock, (mtx_t *m), (m), thrd_success, MUST_EXIST)

/* ------------------------------------------------------- stdio streams */

ACQUIRE(ftrylockfile, (FILE *f), (f), 0, 0, MUST_EXIST)

PUBLIC void flockfile(FILE *f)
{
    __typeof__(flockfile) *real = REAL_NEEDED(flockfile);
    if (!in_task()) {
        real(f);
        return;
    }
    real(f);
    held();
}

PUBLIC void funlockfile(FILE *f)
{
    __typeof__(funlockfile) *real = REAL_NEEDED(funlockfile);
    if (!in_task()) {
        real(f);
        return;
    }
    real(f);
    released();
}
