/*
 * hostsync.c - the host's threading objects, task-aware: pthread mutexes,
 * conditions, rwlocks, barriers, once and spinlocks, POSIX semaphores, the
 * C11 objects that map onto them, and FILE locks.
 *
 * Inside a task, these calls act as if each task were a thread: a wait
 * sleeps the task (its CPU runs others), and the owner of a lock is the
 * task, wherever it migrates.  Plain threads of the program use the same
 * objects at the same time, and both sides wait for each other: Java's fix
 * for virtual threads pinned by `synchronized`, done for C.
 *
 * How.  The interposed names (hostlock.c) call the functions here, for
 * tasks and plain threads alike, so that one implementation owns each
 * object: the C library's code never sees an object of ours (except the
 * kinds it keeps, below).  The object's storage is the C library's
 * (pthread_mutex_t ...), laid out anew here, with the fields the C
 * library's static initialisers and attribute calls set (a mutex's kind, an
 * rwlock's flags, a condition's clock) left where they are, so that
 * PTHREAD_MUTEX_INITIALIZER and its kin work.  Every object has a lock (a
 * real spinlock: plain threads take it too) and a queue of waiter records
 * (wait.h), one queue for both sides:
 *   - a task's record is the usual one, and it sleeps in sy__wait with
 *     WAIT_SHARED: its waker may be a plain thread, which claims its token
 *     with an atomic compare-and-swap and hands it to its CPU's inbox
 *     (wait.c: sy__wait_wake_shared);
 *   - a thread's record has no task: the thread sleeps on a futex in the
 *     word of its own (tfired: a thread-local word, so that a waker's
 *     late futex wake never points into a stack frame that is gone),
 *     which its waker sets and wakes.
 * So "built on waiter records, not a second mechanism": the only new thing
 * is a record whose sleeper is a thread.
 *
 * Lock words are the C library's protocol in spirit (a mutex's word: 0
 * free, 1 held, 2 held and maybe waited for; one compare-and-swap to lock,
 * one exchange to unlock, the queue's lock only when someone waits), and
 * the owner is an int: a thread's id (gettid), or minus a task's pid.
 *
 * The kinds glibc keeps (HS_FOREIGN): process-shared objects (their
 * waiters may be in another process: only the kernel's futex can wake
 * them), robust and priority-inheriting or -protecting mutexes (the kernel
 * knows their owner), named semaphores.  Those go to the real calls; a task
 * that must wait for one polls (hostlock.c), it never blocks its CPU.
 *
 * Kills: the calls that POSIX lets fail with a timeout (timed waits) end at
 * a kill with ETIMEDOUT; sem_wait ends with EINTR (POSIX allows it); the
 * others (lock, condition wait, barrier, once) are not kill points: the
 * task goes on waiting, and exits at its next kill point after the call.
 *
 * Locks: a condition's lock (class LOCK_COND) is taken before a mutex's
 * (LOCK_OBJ: sy__hc_wait releases the mutex under it); then wait_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/single_threaded.h>
#include <unistd.h>

#include "hostsync.h"
#include "wait.h"

int sy__thread_owned_holds;

/* ------------------------------------------------------------ identity */

static __thread int tls_tid;
/* A plain thread's futex word for its waits (one at a time): set to 1 by
 * the waker that fires its record.  Thread-local, not in the record: the
 * waker's futex wake comes after the store, when the waiter may have
 * returned and reused its stack. */
static __thread uint32_t tls_park;

/* This thread's id, cached (reset in a forked child: hostlock.c). */
static inline int thread_id(void)
{
    int id = tls_tid;
    if (unlikely(!id)) {
        int e = errno;
        id = tls_tid = (int)syscall(SYS_gettid);
        errno = e;
    }
    return id;
}

int sy__hs_tid(void)
{
    return thread_id();
}

void sy__hs_forked(void)
{
    tls_tid = 0;
}

/* Who owns a lock: a thread's id (> 0), or minus a task's pid. */
static inline int owner_id(struct task *t)
{
    return t ? -t->pid : thread_id();
}

/* ------------------------------------------------- futex, deadlines */

/* Sleep on *w while it is `val`, until `deadline` (sy_now() time, or
 * SY_FOREVER).  0, or -ETIMEDOUT; errno is left as it was. */
static int futex_wait_until(uint32_t *w, uint32_t val, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != SY_FOREVER) {
        ts.tv_sec = (time_t)(deadline / 1000000000);
        ts.tv_nsec = (long)(deadline % 1000000000);
        tsp = &ts;
    }
    int e = errno;
    long r = syscall(SYS_futex, w, FUTEX_WAIT_BITSET_PRIVATE, val, tsp, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    int err = r == 0 ? 0 : errno == ETIMEDOUT ? -ETIMEDOUT : 0;
    errno = e;
    return err;
}

static void futex_wake(uint32_t *w, int n)
{
    int e = errno;
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
    errno = e;
}

/* A POSIX absolute time on clock clk as a sy_now() deadline (the runtime's
 * clock is CLOCK_MONOTONIC: a CLOCK_REALTIME time is converted once, at the
 * call, so a later step of the wall clock does not move it).  0 or EINVAL. */
int sy__hs_deadline(clockid_t clk, const struct timespec *ts, int64_t *out)
{
    if (!ts || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
        return EINVAL;
    if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC)
        return EINVAL;
    int64_t d;
    if (ts->tv_sec < 0)
        d = 0;
    else if (ts->tv_sec >= INT64_MAX / 1000000000 - 1)
        d = INT64_MAX / 2; /* as good as never */
    else
        d = (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
    if (clk == CLOCK_REALTIME && d > 0 && d != INT64_MAX / 2) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        d += (int64_t)sy__now_ns() - ((int64_t)now.tv_sec * 1000000000 + now.tv_nsec);
    }
    *out = d < 0 ? 0 : d;
    return 0;
}

/* ------------------------------------------------ the queue, both sides */

/*
 * Tasks asleep on host objects (each CPU counts those that slept on it,
 * less those that woke on it).  A plain thread of the program may wake
 * them, so while any sleep and such a thread lives (hostlock.c counts
 * them), every CPU parked is no deadlock (cpu.c).
 */
static void host_waits_add(struct cpu *c, long d)
{
    __atomic_store_n(&c->host_waits, c->host_waits + d, __ATOMIC_RELAXED);
}

bool sy__host_waiting(void)
{
    long n = 0;
    for (int i = 0; i < rt.nbundles; i++) /* a task may wake on a spare */
        n += __atomic_load_n(&rt.bundles[i].host_waits, __ATOMIC_RELAXED);
    return n > 0 && sy__plain_threads() > 0;
}

/* An object's lock: always a real lock (plain threads take it too). */
static inline void hq_lock(sy_spinlock *lk, int cls)
{
    sy__lockdep_acquire_as(lk, cls);
    spin_lock(lk);
}

static inline void hq_unlock(sy_spinlock *lk)
{
    sy__lockdep_release(lk);
    spin_unlock(lk);
}

/* Records fired under an object's lock, woken once it is dropped. */
struct hwake {
    struct task *tasks, **ttail; /* through rq_next, as wake_chain */
    waiter_t *threads;           /* through next */
};
#define HWAKE_INIT(wk) {NULL, &(wk).tasks, NULL}

/* End w's wait with `result`: w is off its queue, its object's lock held.
 * A thread's record always takes it; a task's only if its wait is still
 * on (its timer or a kill may have ended it: then false, and the caller
 * gives what it meant for w to another). */
static bool hq_fire(waiter_t *w, int result, struct hwake *wk)
{
    struct task *t = w->task;
    if (!t) {
        w->result = result;
        w->next = wk->threads;
        wk->threads = w;
        return true;
    }
    uint32_t want = TOKEN_WAITING(w->seq);
    if (!__atomic_compare_exchange_n(&t->wait_token, &want, want & ~1u, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return false;
    w->result = result;
    t->wait_fired = w;
    t->rq_next = NULL;
    *wk->ttail = t;
    wk->ttail = &t->rq_next;
    return true;
}

/* Pop records until one takes `result`; that record, or NULL. */
static waiter_t *hq_fire_first(sy_waitq_ *q, int result, struct hwake *wk)
{
    waiter_t *w;
    while ((w = q->head_) != NULL) {
        wq_del(q, w);
        if (hq_fire(w, result, wk))
            return w;
    }
    return NULL;
}

/* Fire every record on q waiting for `key` (its data): a queue shared by
 * several objects (once's buckets, the FILE table).  Lock held. */
static void hq_fire_key(sy_waitq_ *q, uintptr_t key, struct hwake *wk)
{
    for (waiter_t *w = q->head_, *next; w; w = next) {
        next = w->next;
        if (w->data == key) {
            wq_del(q, w);
            hq_fire(w, 0, wk);
        }
    }
}

/* Wake what was fired; the object's lock is dropped.  A thread's record
 * is touched no more once tfired is set (its thread may return). */
static void hq_wake(struct hwake *wk)
{
    for (struct task *t = wk->tasks, *next; t; t = next) {
        next = t->rq_next;
        sy__wait_wake_shared(t);
    }
    for (waiter_t *w = wk->threads, *next; w; w = next) {
        next = w->next;
        uint32_t *f = w->tfired;
        __atomic_store_n(f, 1, __ATOMIC_RELEASE);
        futex_wake(f, 1); /* (at worst a spurious wake of a later user of
                             that stack address: futex users expect those) */
    }
}

/* What hq_wait returns besides a fired record's result. */
#define HQ_AGAIN (-EAGAIN) /* woken without being given anything: a kill or
                              timer ended the wait as a waker took the
                              record; look again */

/* Queue a record for the caller (t: a task; NULL: a plain thread) on q,
 * at the back, or at the front if `front` (it waited before), with `data`.
 * The object's lock held. */
static void hq_enqueue(sy_waitq_ *q, waiter_t *w, struct task *t, bool front, uint64_t data)
{
    if (t)
        waiter_init(w, t);
    else
        memset(w, 0, sizeof *w);
    w->data = data;
    if (!t) {
        tls_park = 0;
        w->tfired = &tls_park;
    }
    if (front)
        wq_push_front(q, w);
    else
        wq_push(q, w);
}

/*
 * hq_sleep - sleep on the caller's record w, queued on q (hq_enqueue),
 * until it fires, `deadline` passes, or (a task, WAIT_KILLABLE in flags)
 * it is killed.  lk held on entry, released on return.  Returns the
 * record's result when it fired; -ETIMEDOUT, -EINTR; or HQ_AGAIN.  *removed
 * (if not NULL) says whether the caller took its own record off the queue
 * (for the objects that count their waiters: whoever takes a record off
 * uncounts it).
 * A wait that is not killable is not ended by a kill: the task goes back to
 * sleep in its place in the queue.
 */
static int hq_sleep(sy_spinlock *lk, sy_waitq_ *q, waiter_t *w, int64_t deadline,
                    const void *wchan, unsigned flags, bool *removed)
{
    bool dummy;
    if (!removed)
        removed = &dummy;
    *removed = false;
    if (deadline != SY_FOREVER && (uint64_t)deadline <= sy__now_ns()) {
        wq_del(q, w);
        *removed = true;
        hq_unlock(lk);
        return -ETIMEDOUT;
    }
    struct cpu *c;
    struct task *t = hs_task(&c);
    if (t) {
        SY_ASSERT(w->task == t && w->seq == t->sleep_seq + 1, t, "hq_sleep: not our record");
        host_waits_add(c, 1);
        int r;
        for (;;) {
            sy_spinlock *l = lk;
            r = sy__wait(c, &l, 1, deadline, wchan, WK_PTHREAD, flags | WAIT_SHARED);
            c = this_cpu();
            if (r == 0 && t->wait_fired == w) {
                r = w->result;
                break;
            }
            hq_lock(lk, LOCK_OBJ);
            if (!w->queued) { /* a waker took it, and lost to the timer or kill */
                hq_unlock(lk);
                if (r == -EINTR && !(flags & WAIT_KILLABLE))
                    r = HQ_AGAIN;
                break;
            }
            if (r == -EINTR && !(flags & WAIT_KILLABLE) &&
                !__atomic_load_n(&rt.deadlocked, __ATOMIC_RELAXED)) {
                w->seq = t->sleep_seq + 1; /* sleep on in the same place */
                continue;
            }
            if (r == -EINTR && !(flags & WAIT_KILLABLE)) {
                /* The runtime found a deadlock and kills every task: this
                 * wait cannot end otherwise (it is one of the deadlock's),
                 * so the task ends here, as at a kill point. */
                wq_del(q, w);
                hq_unlock(lk);
                host_waits_add(c, -1);
                sy__task_exit(c, SY_EXIT_KILLED);
            }
            wq_del(q, w);
            *removed = true;
            hq_unlock(lk);
            break;
        }
        host_waits_add(c, -1); /* (c: where it woke) */
        return r;
    }

    /* a plain thread: sleeps on its record's futex word */
    hq_unlock(lk);
    int64_t dl = deadline;
    while (!__atomic_load_n(w->tfired, __ATOMIC_ACQUIRE)) {
        if (futex_wait_until(w->tfired, 0, dl) != -ETIMEDOUT)
            continue;
        hq_lock(lk, LOCK_OBJ);
        bool was = w->queued;
        if (was)
            wq_del(q, w);
        hq_unlock(lk);
        if (was) {
            *removed = true;
            return -ETIMEDOUT;
        }
        dl = SY_FOREVER; /* fired meanwhile: its waker sets tfired next */
    }
    return w->result;
}

/* hq_enqueue, then hq_sleep. */
static int hq_wait(sy_spinlock *lk, sy_waitq_ *q, bool front, int64_t deadline,
                   const void *wchan, unsigned flags, uint64_t data, bool *removed)
{
    struct cpu *c;
    waiter_t w;
    hq_enqueue(q, &w, hs_task(&c), front, data);
    return hq_sleep(lk, q, &w, deadline, wchan, flags, removed);
}

/* A short sleep that no kill ends (a task that polls an object glibc
 * keeps, or a spinlock's holder that sleeps). */
void sy__hs_nap(struct task *t, struct cpu *c, uint64_t ns, const void *wchan)
{
    (void)t;
    sy__wait(c, NULL, 0, (int64_t)(sy__now_ns() + ns), wchan, WK_PTHREAD, 0);
}

/* ============================================================ mutexes */

/*
 * pthread_mutex_t, as laid out here.  kind stays where glibc has it (its
 * static initialisers set it); the rest of glibc's fields are reused.
 */
struct hmutex {
    uint32_t word;  /* 0 free, 1 held, 2 held and maybe waited for */
    uint32_t count; /* a recursive mutex: its depth */
    int owner;      /* owner_id of the holder, 0 when free (atomic) */
    uint32_t nusers_;
    int kind;       /* PTHREAD_MUTEX_* | flags; -1 destroyed */
    sy_spinlock lock;
    sy_waitq_ q;
};
_Static_assert(offsetof(struct hmutex, kind) == offsetof(pthread_mutex_t, __data.__kind),
               "a mutex's kind is where glibc's static initialisers put it");
_Static_assert(sizeof(struct hmutex) <= sizeof(pthread_mutex_t), "fits a pthread_mutex_t");

#define HM(m) ((struct hmutex *)(void *)(m))
#define HM_TYPE(kind) ((kind) & 3) /* NORMAL, RECURSIVE, ERRORCHECK, ADAPTIVE */
/* robust 16, priority inherit 32, priority protect 64, process-shared
 * 128 (glibc's kind bits); a destroyed one (-1) has them all: glibc then
 * answers EINVAL */
#define HM_FOREIGN_BITS (16 | 32 | 64 | 128)

bool sy__hm_foreign(const pthread_mutex_t *m)
{
    return __atomic_load_n(&((const struct hmutex *)(const void *)m)->kind, __ATOMIC_RELAXED) &
           HM_FOREIGN_BITS;
}

int sy__hm_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
    int type = PTHREAD_MUTEX_DEFAULT, robust = PTHREAD_MUTEX_STALLED, proto = PTHREAD_PRIO_NONE,
        pshared = PTHREAD_PROCESS_PRIVATE;
    if (a) {
        pthread_mutexattr_gettype(a, &type);
        pthread_mutexattr_getrobust(a, &robust);
        pthread_mutexattr_getprotocol(a, &proto);
        pthread_mutexattr_getpshared(a, &pshared);
    }
    if (robust != PTHREAD_MUTEX_STALLED || proto != PTHREAD_PRIO_NONE ||
        pshared != PTHREAD_PROCESS_PRIVATE)
        return HS_FOREIGN;
    memset(m, 0, sizeof *m);
    HM(m)->kind = type & 3;
    return 0;
}

int sy__hm_destroy(pthread_mutex_t *m)
{
    struct hmutex *hm = HM(m);
    if (__atomic_load_n(&hm->word, __ATOMIC_ACQUIRE) != 0)
        return EBUSY;
    hq_lock(&hm->lock, LOCK_OBJ);
    bool busy = !wq_empty(&hm->q);
    if (!busy)
        __atomic_store_n(&hm->kind, -1, __ATOMIC_RELAXED);
    hq_unlock(&hm->lock);
    return busy ? EBUSY : 0;
}

/* Wait for the mutex (it was held a moment ago).  0 once we hold it. */
static __attribute__((noinline)) int hm_lock_slow(struct hmutex *m, int how, clockid_t clk,
                                                  const struct timespec *ts)
{
    int64_t deadline = SY_FOREVER;
    if (how == HS_TIMED) {
        int e = sy__hs_deadline(clk, ts, &deadline);
        if (e)
            return e;
    }
    /* with several host CPUs the holder may be about to unlock: look a
     * few times before queueing (a plain thread always does: it must not
     * read rt, which sy_run may be setting up) */
    struct cpu *c = this_cpu();
    if (!c || rt.ncpu != 1)
        for (int i = 0; i < 64; i++) {
            cpu_relax();
            uint32_t z = 0;
            if (__atomic_load_n(&m->word, __ATOMIC_RELAXED) == 0 &&
                __atomic_compare_exchange_n(&m->word, &z, 1, false, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return 0;
        }
    bool again = false;
    for (;;) {
        hq_lock(&m->lock, LOCK_OBJ);
        /* 2: whoever unlocks looks at the queue, which has us by then */
        if (__atomic_exchange_n(&m->word, 2, __ATOMIC_ACQUIRE) == 0) {
            hq_unlock(&m->lock);
            return 0;
        }
        int r = hq_wait(&m->lock, &m->q, again, deadline, m,
                        how == HS_TIMED ? WAIT_KILLABLE : 0, 0, NULL);
        if (r == -ETIMEDOUT || r == -EINTR)
            return ETIMEDOUT; /* a kill ends a timed lock early */
        again = true;         /* woken (or a kill's spurious wake): look again */
    }
}

/* Unlock without the safe point (sy__hc_wait, which switches next).
 * `all`: a recursive mutex's every level (its depth to *depth). */
static int hm_unlock(struct hmutex *m, struct task *t, bool resched, bool all, uint32_t *depth)
{
    int type = HM_TYPE(__atomic_load_n(&m->kind, __ATOMIC_RELAXED));
    if (type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) {
        if (__atomic_load_n(&m->owner, __ATOMIC_RELAXED) != owner_id(t))
            return EPERM;
        if (type == PTHREAD_MUTEX_RECURSIVE) {
            if (depth)
                *depth = m->count;
            if (!all && --m->count) {
                if (t)
                    hs_released(t, resched);
                return 0;
            }
            if (t) /* the levels above the last: their counts */
                for (uint32_t i = 1; i < m->count; i++)
                    hs_released(t, false);
            m->count = 0;
        }
    }
    __atomic_store_n(&m->owner, 0, __ATOMIC_RELAXED);
    uint32_t old_;
    if (__libc_single_threaded) {
        old_ = __atomic_load_n(&m->word, __ATOMIC_RELAXED);
        __atomic_store_n(&m->word, 0, __ATOMIC_RELAXED);
    } else {
        old_ = __atomic_exchange_n(&m->word, 0, __ATOMIC_RELEASE);
    }
    if (old_ == 2) {
        struct hwake wk = HWAKE_INIT(wk);
        hq_lock(&m->lock, LOCK_OBJ);
        hq_fire_first(&m->q, 0, &wk);
        hq_unlock(&m->lock);
        hq_wake(&wk);
    }
    if (t)
        hs_released(t, resched);
    return 0;
}

int sy__hm_lock(pthread_mutex_t *pm, int how, clockid_t clk, const struct timespec *ts)
{
    struct hmutex *m = HM(pm);
    struct cpu *c;
    struct task *t = hs_task(&c);
    int me = owner_id(t);
    int type = HM_TYPE(__atomic_load_n(&m->kind, __ATOMIC_RELAXED));
    if ((type == PTHREAD_MUTEX_RECURSIVE || type == PTHREAD_MUTEX_ERRORCHECK) &&
        __atomic_load_n(&m->owner, __ATOMIC_RELAXED) == me) {
        if (type == PTHREAD_MUTEX_ERRORCHECK)
            return how == HS_TRY ? EBUSY : EDEADLK;
        if (m->count == UINT32_MAX)
            return EAGAIN;
        m->count++;
        if (t)
            hs_held(t);
        return 0;
    }
    uint32_t z = 0;
    if (__libc_single_threaded && __atomic_load_n(&m->word, __ATOMIC_RELAXED) == 0) {
        /* no other thread: no atomic instruction (hostlock.c: fast_take) */
        __atomic_store_n(&m->word, 1, __ATOMIC_RELAXED);
    } else if (!__atomic_compare_exchange_n(&m->word, &z, 1, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED)) {
        if (how == HS_TRY)
            return EBUSY;
        int e = hm_lock_slow(m, how, clk, ts);
        if (e)
            return e;
    }
    __atomic_store_n(&m->owner, me, __ATOMIC_RELAXED);
    if (type == PTHREAD_MUTEX_RECURSIVE)
        m->count = 1;
    if (t)
        hs_held(t);
    return 0;
}

int sy__hm_unlock(pthread_mutex_t *pm)
{
    struct cpu *c;
    struct task *t = hs_task(&c);
    return hm_unlock(HM(pm), t, true, false, NULL);
}

/* ========================================================= conditions */

/*
 * pthread_cond_t, as laid out here.  glibc's __wrefs keeps its place and
 * its two low bits: process-shared (then the condition is glibc's) and
 * CLOCK_MONOTONIC (pthread_condattr_setclock).
 */
struct hcond {
    sy_spinlock lock;
    uint32_t nwait; /* records queued, or about to leave (atomic: read
                       without the lock by a signal) */
    sy_waitq_ q;
};
#define HC(cv) ((struct hcond *)(void *)(cv))
#define HC_WREFS(cv) (&(cv)->__data.__wrefs)
#define HC_SHARED 1u
#define HC_MONOTONIC 2u
_Static_assert(sizeof(struct hcond) <= offsetof(pthread_cond_t, __data.__wrefs),
               "a condition's queue is before glibc's __wrefs");

static inline bool hc_foreign(pthread_cond_t *cv)
{
    return __atomic_load_n(HC_WREFS(cv), __ATOMIC_RELAXED) & HC_SHARED;
}

int sy__hc_init(pthread_cond_t *cv, const pthread_condattr_t *a)
{
    int pshared = PTHREAD_PROCESS_PRIVATE;
    clockid_t clk = CLOCK_REALTIME;
    if (a) {
        pthread_condattr_getpshared(a, &pshared);
        pthread_condattr_getclock(a, &clk);
    }
    if (pshared != PTHREAD_PROCESS_PRIVATE)
        return HS_FOREIGN;
    memset(cv, 0, sizeof *cv);
    if (clk == CLOCK_MONOTONIC)
        *HC_WREFS(cv) = HC_MONOTONIC;
    return 0;
}

int sy__hc_destroy(pthread_cond_t *cv)
{
    if (hc_foreign(cv))
        return HS_FOREIGN;
    struct hcond *c = HC(cv);
    hq_lock(&c->lock, LOCK_COND);
    bool busy = !wq_empty(&c->q) || __atomic_load_n(&c->nwait, __ATOMIC_ACQUIRE);
    hq_unlock(&c->lock);
    return busy ? EBUSY : 0;
}

/* Release m for a wait (all levels of a recursive one: *depth), without
 * the safe point: the wait switches next. */
static int mutex_release(pthread_mutex_t *m, struct task *t, uint32_t *depth)
{
    *depth = 0;
    if (sy__hm_foreign(m)) {
        int e = REAL(pthread_mutex_unlock)(m);
        if (!e && t) {
            hs_thread_owned(-1);
            hs_released(t, false);
        }
        return e;
    }
    return hm_unlock(HM(m), t, false, true, depth);
}

/* Take m back after a wait, whatever happens (no timeout, no kill). */
static void mutex_retake(pthread_mutex_t *m, struct task *t, struct cpu *c, uint32_t depth)
{
    if (sy__hm_foreign(m)) {
        if (!t) {
            REAL(pthread_mutex_lock)(m);
            return;
        }
        for (unsigned n = 0;; n++) { /* a task polls (hostlock.c has why) */
            int e = REAL(pthread_mutex_trylock)(m);
            if (e != EBUSY) {
                if (e == 0 || e == EOWNERDEAD) {
                    hs_thread_owned(1);
                    hs_held(t);
                }
                return;
            }
            sy__hs_nap(t, c, hs_backoff_ns(n), m);
            c = this_cpu();
        }
    }
    sy__hm_lock(m, HS_BLOCK, 0, NULL);
    if (depth > 1) { /* a recursive mutex: its depth back */
        HM(m)->count = depth;
        if (t)
            for (uint32_t i = 1; i < depth; i++)
                hs_held(t);
    }
}

int sy__hc_wait(pthread_cond_t *cv, pthread_mutex_t *m, clockid_t clk, const struct timespec *ts)
{
    if (hc_foreign(cv))
        return HS_FOREIGN;
    struct hcond *hc = HC(cv);
    int64_t deadline = SY_FOREVER;
    if (ts) {
        if (clk == (clockid_t)-1)
            clk = __atomic_load_n(HC_WREFS(cv), __ATOMIC_RELAXED) & HC_MONOTONIC
                      ? CLOCK_MONOTONIC
                      : CLOCK_REALTIME;
        int e = sy__hs_deadline(clk, ts, &deadline);
        if (e)
            return e;
    }
    struct cpu *c;
    struct task *t = hs_task(&c);
    /* queued under the condition's lock before the mutex is released: a
     * signal sent under the mutex after that finds us */
    hq_lock(&hc->lock, LOCK_COND);
    waiter_t w;
    hq_enqueue(&hc->q, &w, t, false, 0);
    __atomic_add_fetch(&hc->nwait, 1, __ATOMIC_RELAXED);
    uint32_t depth;
    int e = mutex_release(m, t, &depth);
    if (e) {
        wq_del(&hc->q, &w);
        __atomic_sub_fetch(&hc->nwait, 1, __ATOMIC_RELAXED);
        hq_unlock(&hc->lock);
        return e;
    }
    bool removed;
    int r = hq_sleep(&hc->lock, &hc->q, &w, deadline, cv, ts ? WAIT_KILLABLE : 0, &removed);
    if (removed)
        __atomic_sub_fetch(&hc->nwait, 1, __ATOMIC_RELAXED);
    mutex_retake(m, t, this_cpu(), depth);
    /* a kill ends a timed wait early; an untimed one it only wakes,
     * spuriously, as POSIX allows */
    return r == -ETIMEDOUT || r == -EINTR ? ETIMEDOUT : 0;
}

int sy__hc_wake(pthread_cond_t *cv, bool all)
{
    if (hc_foreign(cv))
        return HS_FOREIGN;
    struct hcond *hc = HC(cv);
    /* Nobody queued: nothing to do.  A waiter counts itself before it
     * releases the mutex, so a signaller holding the mutex sees it here. */
    if (!__atomic_load_n(&hc->nwait, __ATOMIC_ACQUIRE))
        return 0;
    struct hwake wk = HWAKE_INIT(wk);
    hq_lock(&hc->lock, LOCK_COND);
    waiter_t *w;
    while ((w = hc->q.head_) != NULL) {
        wq_del(&hc->q, w); /* taken off: uncounted by whoever takes it */
        __atomic_sub_fetch(&hc->nwait, 1, __ATOMIC_RELAXED);
        if (hq_fire(w, 0, &wk) && !all)
            break;
    }
    hq_unlock(&hc->lock);
    hq_wake(&wk);
    return 0;
}

/* ============================================================ rwlocks */

/*
 * pthread_rwlock_t, as laid out here: the first 16 bytes and 32..48; glibc's
 * __flags (the preference its initialisers set) and __shared keep their
 * places, outside both.
 */
struct hrw {
    sy_spinlock lock;
    uint32_t readers; /* read holds */
    int writer;       /* owner_id of the write holder, 0 if none */
    uint32_t wwait;   /* writers queued */
    char pad_[16];
    sy_waitq_ q;      /* readers and writers, in arrival order */
};
#define HRW(rw) ((struct hrw *)(void *)(rw))
#define RW_WRITER (1ull << 63) /* a record's data: a writer (| its owner_id) */
_Static_assert(offsetof(pthread_rwlock_t, __data.__flags) >= offsetof(struct hrw, q) + 16 ||
                   offsetof(pthread_rwlock_t, __data.__flags) < offsetof(struct hrw, pad_),
               "glibc's __flags outside our fields");
_Static_assert(offsetof(pthread_rwlock_t, __data.__shared) < offsetof(struct hrw, q) &&
                   offsetof(pthread_rwlock_t, __data.__shared) >= offsetof(struct hrw, pad_),
               "glibc's __shared outside our fields");
_Static_assert(sizeof(struct hrw) <= sizeof(pthread_rwlock_t), "fits a pthread_rwlock_t");

static inline bool hrw_foreign(pthread_rwlock_t *rw)
{
    return __atomic_load_n(&rw->__data.__shared, __ATOMIC_RELAXED) != 0;
}

/* writers first (PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP); glibc's
 * default prefers readers, and so do we then */
static inline bool hrw_writers_first(pthread_rwlock_t *rw)
{
    return __atomic_load_n(&rw->__data.__flags, __ATOMIC_RELAXED) ==
           PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP;
}

int sy__hrw_init(pthread_rwlock_t *rw, const pthread_rwlockattr_t *a)
{
    int pshared = PTHREAD_PROCESS_PRIVATE, kind = PTHREAD_RWLOCK_DEFAULT_NP;
    if (a) {
        pthread_rwlockattr_getpshared(a, &pshared);
        pthread_rwlockattr_getkind_np(a, &kind);
    }
    if (pshared != PTHREAD_PROCESS_PRIVATE)
        return HS_FOREIGN;
    memset(rw, 0, sizeof *rw);
    rw->__data.__flags = (__typeof__(rw->__data.__flags))kind;
    return 0;
}

int sy__hrw_destroy(pthread_rwlock_t *rw)
{
    if (hrw_foreign(rw))
        return HS_FOREIGN;
    struct hrw *h = HRW(rw);
    hq_lock(&h->lock, LOCK_OBJ);
    bool busy = h->readers || h->writer || !wq_empty(&h->q);
    hq_unlock(&h->lock);
    return busy ? EBUSY : 0;
}

/* Admit waiters in arrival order while they can hold it together: readers
 * until a writer is first, a writer when nobody holds it.  Lock held. */
static void rw_grant(struct hrw *h, struct hwake *wk)
{
    waiter_t *w;
    while ((w = h->q.head_) != NULL && !h->writer) {
        bool writer = w->data & RW_WRITER;
        if (writer && h->readers)
            return;
        wq_del(&h->q, w);
        if (writer)
            h->wwait--; /* taken off: uncounted by whoever takes it */
        if (!hq_fire(w, 0, wk))
            continue; /* its wait ended meanwhile */
        if (!writer) {
            h->readers++;
            continue;
        }
        h->writer = (int)(uint32_t)w->data;
        return;
    }
}

int sy__hrw_lock(pthread_rwlock_t *rw, bool write, int how, clockid_t clk,
                 const struct timespec *ts)
{
    if (hrw_foreign(rw))
        return HS_FOREIGN;
    struct hrw *h = HRW(rw);
    struct cpu *c;
    struct task *t = hs_task(&c);
    int me = owner_id(t);
    int64_t deadline = SY_FOREVER;
    bool again = false;
    for (;;) {
        hq_lock(&h->lock, LOCK_OBJ);
        if (h->writer == me) {
            hq_unlock(&h->lock);
            return how == HS_TRY ? EBUSY : EDEADLK;
        }
        bool free = write ? !h->writer && !h->readers
                          : !h->writer && (!h->wwait || !hrw_writers_first(rw));
        if (free) {
            if (write) {
                h->writer = me;
            } else if (h->readers == UINT32_MAX) {
                hq_unlock(&h->lock);
                return EAGAIN;
            } else {
                h->readers++;
            }
            hq_unlock(&h->lock);
            if (t)
                hs_held(t);
            return 0;
        }
        if (how == HS_TRY) {
            hq_unlock(&h->lock);
            return EBUSY;
        }
        if (how == HS_TIMED && !again) {
            int e = sy__hs_deadline(clk, ts, &deadline);
            if (e) {
                hq_unlock(&h->lock);
                return e;
            }
        }
        if (write)
            h->wwait++;
        bool removed;
        int r = hq_wait(&h->lock, &h->q, again, deadline, rw,
                        how == HS_TIMED ? WAIT_KILLABLE : 0,
                        write ? RW_WRITER | (uint32_t)me : 0, &removed);
        if (r == 0) { /* granted: rw_grant counted us in */
            if (t)
                hs_held(t);
            return 0;
        }
        if (removed) {
            /* gone from the queue: uncount, and let in whoever our place
             * held back (readers behind a writer that gave up) */
            struct hwake wk = HWAKE_INIT(wk);
            hq_lock(&h->lock, LOCK_OBJ);
            if (write)
                h->wwait--;
            rw_grant(h, &wk);
            hq_unlock(&h->lock);
            hq_wake(&wk);
        }
        if (r == -ETIMEDOUT || r == -EINTR)
            return ETIMEDOUT;
        again = true;
    }
}

int sy__hrw_unlock(pthread_rwlock_t *rw)
{
    if (hrw_foreign(rw))
        return HS_FOREIGN;
    struct hrw *h = HRW(rw);
    struct cpu *c;
    struct task *t = hs_task(&c);
    struct hwake wk = HWAKE_INIT(wk);
    hq_lock(&h->lock, LOCK_OBJ);
    if (h->writer) {
        if (h->writer != owner_id(t)) {
            hq_unlock(&h->lock);
            return EPERM;
        }
        h->writer = 0;
    } else if (h->readers) {
        h->readers--;
    } else {
        hq_unlock(&h->lock);
        return EPERM;
    }
    rw_grant(h, &wk);
    hq_unlock(&h->lock);
    hq_wake(&wk);
    if (t)
        hs_released(t, true);
    return 0;
}

/* ========================================================= semaphores */

/*
 * sem_t, as laid out here: glibc's 64-bit word (value in the low half,
 * waiters in the high half: glibc's sem_getvalue reads it as it is) and its
 * `private` field (FUTEX_PRIVATE_FLAG for ours; 0, process-shared, for a
 * sem_init(s, 1, n) or a sem_open: those are glibc's).
 */
struct hsem {
    uint64_t data;
    int private_;
    sy_spinlock lock;
    sy_waitq_ q;
};
#define HSEM(s) ((struct hsem *)(void *)(s))
#define SEM_NW1 (1ull << 32) /* one waiter, in data */
_Static_assert(sizeof(struct hsem) <= sizeof(sem_t), "fits a sem_t");

static inline bool hsem_foreign(sem_t *s)
{
    return __atomic_load_n(&HSEM(s)->private_, __ATOMIC_RELAXED) != FUTEX_PRIVATE_FLAG;
}

int sy__hsem_init(sem_t *s, int pshared, unsigned value)
{
    if (pshared)
        return HS_FOREIGN;
    if (value > SEM_VALUE_MAX)
        return EINVAL;
    memset(s, 0, sizeof *s);
    HSEM(s)->data = value;
    HSEM(s)->private_ = FUTEX_PRIVATE_FLAG;
    return 0;
}

/* Take a unit if there is one. */
static inline bool sem_take(struct hsem *s)
{
    uint64_t v = __atomic_load_n(&s->data, __ATOMIC_RELAXED);
    while ((uint32_t)v)
        if (__atomic_compare_exchange_n(&s->data, &v, v - 1, true, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return true;
    return false;
}

int sy__hsem_wait(sem_t *sem, int how, clockid_t clk, const struct timespec *ts)
{
    if (hsem_foreign(sem))
        return HS_FOREIGN;
    struct hsem *s = HSEM(sem);
    if (sem_take(s))
        return 0;
    if (how == HS_TRY)
        return EAGAIN;
    int64_t deadline = SY_FOREVER;
    if (how == HS_TIMED) {
        int e = sy__hs_deadline(clk, ts, &deadline);
        if (e)
            return e;
    }
    for (;;) {
        hq_lock(&s->lock, LOCK_OBJ);
        /* counted before looking again: a post that saw no waiter fails
         * its compare-and-swap on the word and comes to the queue */
        __atomic_add_fetch(&s->data, SEM_NW1, __ATOMIC_SEQ_CST);
        uint64_t v = __atomic_load_n(&s->data, __ATOMIC_RELAXED);
        bool got = false;
        while ((uint32_t)v && !got)
            got = __atomic_compare_exchange_n(&s->data, &v, v - 1 - SEM_NW1, true,
                                              __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
        if (got) {
            hq_unlock(&s->lock);
            return 0;
        }
        bool removed;
        int r = hq_wait(&s->lock, &s->q, false, deadline, sem, WAIT_KILLABLE, 0, &removed);
        if (removed)
            __atomic_sub_fetch(&s->data, SEM_NW1, __ATOMIC_RELAXED);
        if (r == 0)
            return 0; /* a post handed us its unit (and uncounted us) */
        if (r == -ETIMEDOUT)
            return ETIMEDOUT;
        if (r == -EINTR)
            return EINTR;
    }
}

int sy__hsem_post(sem_t *sem)
{
    if (hsem_foreign(sem))
        return HS_FOREIGN;
    struct hsem *s = HSEM(sem);
    uint64_t v = __atomic_load_n(&s->data, __ATOMIC_RELAXED);
    while (!(v >> 32)) { /* nobody waits: one more unit */
        if ((uint32_t)v >= SEM_VALUE_MAX)
            return EOVERFLOW;
        if (__atomic_compare_exchange_n(&s->data, &v, v + 1, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            return 0;
    }
    struct hwake wk = HWAKE_INIT(wk);
    int err = 0;
    hq_lock(&s->lock, LOCK_OBJ);
    waiter_t *w;
    for (;;) {
        w = s->q.head_;
        if (!w) { /* the counted waiters have not queued, or gave up */
            v = __atomic_load_n(&s->data, __ATOMIC_RELAXED);
            do {
                if ((uint32_t)v >= SEM_VALUE_MAX) {
                    err = EOVERFLOW;
                    break;
                }
            } while (!__atomic_compare_exchange_n(&s->data, &v, v + 1, true, __ATOMIC_RELEASE,
                                                  __ATOMIC_RELAXED));
            break;
        }
        wq_del(&s->q, w);
        __atomic_sub_fetch(&s->data, SEM_NW1, __ATOMIC_RELEASE);
        if (hq_fire(w, 0, &wk)) /* the unit goes straight to it */
            break;
    }
    hq_unlock(&s->lock);
    hq_wake(&wk);
    return err;
}

/* =========================================================== barriers */

/* pthread_barrier_t, as laid out here; `shared` is where glibc keeps its
 * own: FUTEX_PRIVATE_FLAG for ours (and a private one of glibc's, which
 * never exists: init is interposed); 0 for a process-shared one, glibc's. */
struct hbar {
    sy_spinlock lock;
    uint32_t count;   /* how many make a round */
    uint32_t arrived; /* in this round */
    int shared;
    sy_waitq_ q;
};
#define HBAR(b) ((struct hbar *)(void *)(b))
_Static_assert(sizeof(struct hbar) <= sizeof(pthread_barrier_t), "fits a pthread_barrier_t");

int sy__hbar_init(pthread_barrier_t *b, const pthread_barrierattr_t *a, unsigned count)
{
    int pshared = PTHREAD_PROCESS_PRIVATE;
    if (a)
        pthread_barrierattr_getpshared(a, &pshared);
    if (pshared != PTHREAD_PROCESS_PRIVATE)
        return HS_FOREIGN;
    if (count == 0)
        return EINVAL;
    memset(b, 0, sizeof *b);
    HBAR(b)->count = count;
    HBAR(b)->shared = FUTEX_PRIVATE_FLAG;
    return 0;
}

int sy__hbar_destroy(pthread_barrier_t *b)
{
    struct hbar *h = HBAR(b);
    if (__atomic_load_n(&h->shared, __ATOMIC_RELAXED) != FUTEX_PRIVATE_FLAG)
        return HS_FOREIGN;
    hq_lock(&h->lock, LOCK_OBJ);
    bool busy = h->arrived != 0;
    hq_unlock(&h->lock);
    return busy ? EBUSY : 0;
}

int sy__hbar_wait(pthread_barrier_t *b)
{
    struct hbar *h = HBAR(b);
    if (__atomic_load_n(&h->shared, __ATOMIC_RELAXED) != FUTEX_PRIVATE_FLAG)
        return HS_FOREIGN;
    hq_lock(&h->lock, LOCK_OBJ);
    if (++h->arrived == h->count) { /* the last: the round is over */
        h->arrived = 0;
        struct hwake wk = HWAKE_INIT(wk);
        while (hq_fire_first(&h->q, 0, &wk))
            ;
        hq_unlock(&h->lock);
        hq_wake(&wk);
        return PTHREAD_BARRIER_SERIAL_THREAD;
    }
    /* not a kill point; HQ_AGAIN: the round ended as a kill woke us */
    hq_wait(&h->lock, &h->q, false, SY_FOREVER, b, 0, 0, NULL);
    return 0;
}

/* ================================================================ once */

/*
 * pthread_once_t and C11's once_flag: one int, 0 before the first call
 * (the static initialisers).  ONCE_RUNNING while a caller runs the
 * routine, ONCE_WAITERS when others wait for it, ONCE_DONE after.  An int
 * has no room for a queue: waiters queue in a small table of queues hashed
 * by the int's address (as Linux's futex hash, Go's semaphore table).
 */
#define ONCE_RUNNING 1
#define ONCE_DONE 2
#define ONCE_WAITERS 4

#define ONCE_BUCKETS 64
static struct once_bucket {
    sy_spinlock lock;
    sy_waitq_ q;
} once_buckets[ONCE_BUCKETS];

static struct once_bucket *once_bucket(const int *ctl)
{
    uintptr_t a = (uintptr_t)ctl;
    return &once_buckets[(a >> 2 ^ a >> 9) % ONCE_BUCKETS];
}

/* The routine ran, or its runner left it (pthread_once's cleanup, when the
 * routine did not return): set `to`, wake the waiters. */
static void once_finish(int *ctl, int to)
{
    if (!(__atomic_exchange_n(ctl, to, __ATOMIC_RELEASE) & ONCE_WAITERS))
        return;
    struct once_bucket *b = once_bucket(ctl);
    struct hwake wk = HWAKE_INIT(wk);
    hq_lock(&b->lock, LOCK_OBJ);
    hq_fire_key(&b->q, (uintptr_t)ctl, &wk);
    hq_unlock(&b->lock);
    hq_wake(&wk);
}

int sy__honce(int *ctl, void (*fn)(void))
{
    for (;;) {
        int v = __atomic_load_n(ctl, __ATOMIC_ACQUIRE);
        if (v == ONCE_DONE)
            return 0;
        if (v == 0) {
            if (!__atomic_compare_exchange_n(ctl, &v, ONCE_RUNNING, false, __ATOMIC_ACQUIRE,
                                             __ATOMIC_ACQUIRE))
                continue;
            fn();
            once_finish(ctl, ONCE_DONE);
            return 0;
        }
        /* running: wait for its end */
        struct once_bucket *b = once_bucket(ctl);
        hq_lock(&b->lock, LOCK_OBJ);
        v = __atomic_load_n(ctl, __ATOMIC_ACQUIRE);
        if (!(v & ONCE_RUNNING) ||
            (!(v & ONCE_WAITERS) && !__atomic_compare_exchange_n(ctl, &v, v | ONCE_WAITERS,
                                                                 false, __ATOMIC_ACQ_REL,
                                                                 __ATOMIC_ACQUIRE))) {
            hq_unlock(&b->lock);
            continue;
        }
        hq_wait(&b->lock, &b->q, false, SY_FOREVER, ctl, 0, (uintptr_t)ctl, NULL);
    }
}

/* ========================================================== spinlocks */

/* A task that finds a pthread spinlock held spins a little, then lets the
 * CPU run others (the holder may be one of them, or asleep: a holder may
 * now sleep or yield), then naps, longer each time, up to a millisecond.
 * The lock stays glibc's: plain threads spin on it as before. */
int sy__hspin_lock(pthread_spinlock_t *l, struct task *t)
{
    for (unsigned n = 0;; n++) {
        int e = REAL(pthread_spin_trylock)(l);
        if (e != EBUSY)
            return e;
        if (n < 64) {
            cpu_relax();
        } else if (n < 80 && !__atomic_load_n(&t->killed, __ATOMIC_RELAXED)) {
            sy_yield(); /* (a kill point: a killed task naps instead) */
        } else {
            struct cpu *c = this_cpu();
            sy__hs_nap(c->curr, c, n < 90 ? 50000u << (n - 80) / 2 : 1000000u, (const void *)(uintptr_t)l);
        }
    }
}

/* ========================================================== FILE locks */

/*
 * flockfile.  glibc's FILE lock is recursive by host thread, and its
 * stdio calls take it inside the C library, by host thread too.  Between
 * tasks, the lock is the task's: a table of the FILEs that tasks hold
 * (owner, depth), under one lock, and one queue of records (data: the
 * FILE) for tasks that wait for a FILE another task holds.  A task that
 * takes a FILE also takes glibc's lock, once, and stays on its CPU (its
 * host thread) until it releases it: glibc's lock belongs to that thread.
 * A FILE held by a plain thread (or by stdio inside a call on another host
 * thread) is waited for by polling.
 * Not given: exclusion against a plain stdio call (printf) made by another
 * task on the same CPU while the holder is switched out - glibc takes that
 * lock inside the C library, where the host thread already owns it.
 */
#define FILE_SLOTS 256
static struct {
    sy_spinlock lock;
    sy_waitq_ q;
    int used;
    struct file_slot {
        FILE *f;
        struct task *owner;
        unsigned depth;
        int pin; /* the owner's pin before it took the FILE */
    } slot[FILE_SLOTS];
} files;

static struct file_slot *file_find(FILE *f)
{
    for (int i = 0; i < FILE_SLOTS && files.used; i++)
        if (files.slot[i].f == f)
            return &files.slot[i];
    return NULL;
}

/* Try to take f for t: 1 taken, 0 held by another task (queue), -1 held
 * by a thread or the table is full (poll).  files.lock held. */
static int file_take(FILE *f, struct task *t, struct cpu *c)
{
    struct file_slot *s = file_find(f);
    if (s) {
        if (s->owner != t)
            return 0;
        s->depth++;
        return 1;
    }
    for (int i = 0; i < FILE_SLOTS; i++) {
        s = &files.slot[i];
        if (s->f)
            continue;
        if (REAL(ftrylockfile)(f) != 0)
            return -1;
        s->f = f;
        s->owner = t;
        s->depth = 1;
        s->pin = t->pin;
        t->pin = c->slot; /* glibc's lock is this host thread's */
        hs_thread_owned(1);
        files.used++;
        return 1;
    }
    return -1;
}

int sy__hfile_trylock(FILE *f, struct task *t, struct cpu *c)
{
    hq_lock(&files.lock, LOCK_OBJ);
    int r = file_take(f, t, c);
    hq_unlock(&files.lock);
    if (r != 1)
        return -1;
    hs_held(t);
    return 0;
}

void sy__hfile_lock(FILE *f, struct task *t, struct cpu *c)
{
    for (unsigned n = 0;; n++) {
        hq_lock(&files.lock, LOCK_OBJ);
        int r = file_take(f, t, c);
        if (r == 1) {
            hq_unlock(&files.lock);
            hs_held(t);
            return;
        }
        if (r == 0) {
            n = 0;
            hq_wait(&files.lock, &files.q, false, SY_FOREVER, f, 0, (uintptr_t)f, NULL);
        } else {
            hq_unlock(&files.lock);
            sy__hs_nap(t, c, hs_backoff_ns(n), f);
        }
        c = this_cpu();
    }
}

void sy__hfile_unlock(FILE *f, struct task *t)
{
    struct hwake wk = HWAKE_INIT(wk);
    hq_lock(&files.lock, LOCK_OBJ);
    struct file_slot *s = file_find(f);
    if (!s || s->owner != t) {
        hq_unlock(&files.lock);
        REAL(funlockfile)(f); /* not a task's: as glibc would */
        return;
    }
    if (--s->depth == 0) {
        REAL(funlockfile)(f);
        t->pin = s->pin;
        hs_thread_owned(-1);
        s->f = NULL;
        s->owner = NULL;
        files.used--;
        hq_fire_key(&files.q, (uintptr_t)f, &wk);
    }
    hq_unlock(&files.lock);
    hq_wake(&wk);
    hs_released(t, true);
}
