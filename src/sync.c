/*
 * sync.c - locks for tasks, on waiter records (wait.h): sy_mutex, sy_cond,
 * sy_sem, sy_rwlock, sy_waitgroup and sy_once.
 *
 * Each object has a spinlock (an object lock: elided with one CPU) that
 * guards its queue of waiter records.  The mutex and the semaphore also
 * keep their state in one word that the uncontended paths change with one
 * compare-and-swap, without the lock; the others take the lock every time
 * (a few instructions with one CPU).
 */
#include <limits.h>

#include "internal.h"
#include "wait.h"

static inline struct cpu *cpu_or_null(void)
{
    return this_cpu();
}

/* May the caller wait: not killed, deadline not passed. */
static inline int may_wait(struct task *p, int64_t deadline)
{
    if (__atomic_load_n(&p->killed, __ATOMIC_RELAXED))
        return -EINTR;
    return sy__deadline_check(deadline);
}

/* ================================================================ mutex */

/*
 * The word: the owner's pid << 3, 0 when free, and three flags -
 *   WAITERS   records may be on the queue: unlock takes the slow path;
 *   STARVING  a waiter has waited over STARVE_NS: unlock hands the mutex to
 *             the first waiter, and nobody else may take it (Go's
 *             starvation mode);
 *   WOKEN     an unlock woke a waiter to compete for the mutex, which has
 *             not yet taken it or gone back to sleep: unlocks wake nobody
 *             else meanwhile.
 * Invariant (under the lock): a free mutex with waiters has a woken waiter
 * on its way (WOKEN), so no unlock's wakeup is lost when a waiter leaves.
 * While the owner holds it, only the owner's unlock and waiters holding the
 * lock change the word; a free word is changed by compare-and-swap.
 */
#define MTX_WAITERS 0x1ull
#define MTX_STARVING 0x2ull
#define MTX_WOKEN 0x4ull
#define MTX_SHIFT 3
#define MTX_DEAD UINT64_MAX /* destroyed: no pid is that large */
#define MTX_HANDOFF 1       /* result of a record that was handed the mutex */
#define STARVE_NS 1000000ull

static inline uint64_t owner_bits(const struct task *p)
{
    return (uint64_t)(uint32_t)p->pid << MTX_SHIFT;
}

static inline bool mtx_free(uint64_t v)
{
    return (v >> MTX_SHIFT) == 0;
}

/* A waiter leaves without the mutex (deadline, kill), or a woken one gives
 * WOKEN back: keep the flags true and the invariant above.  Returns a task
 * to wake (its record fired), or NULL.  Lock held. */
static struct task *mutex_leave_locked(sy_mutex *m, bool was_woken)
{
    assert_held(&m->lock_);
    for (;;) {
        uint64_t v = __atomic_load_n(&m->word_, __ATOMIC_RELAXED), nv = v;
        if (v == MTX_DEAD)
            return NULL; /* (destroy waits for waiters: cannot happen) */
        if (was_woken)
            nv &= ~MTX_WOKEN;
        if (wq_empty(&m->q_))
            nv &= ~(MTX_WAITERS | MTX_STARVING);
        bool wake = mtx_free(nv) && (nv & MTX_WAITERS) && !(nv & MTX_WOKEN);
        if (wake)
            nv = (nv | MTX_WOKEN) & ~MTX_STARVING;
        if (!rt_cas64(&m->word_, v, nv))
            continue;
        if (!wake)
            return NULL;
        struct task *t = wq_fire_first(&m->q_, 0, NULL);
        if (t)
            return t;
        was_woken = true; /* nobody to wake after all: give WOKEN back */
    }
}

static __attribute__((noinline)) int mutex_lock_slow(struct cpu *c, sy_mutex *m,
                                                     int64_t deadline, bool killable)
{
    struct task *p = c->curr;
    uint64_t me = owner_bits(p);
    bool woken = false;  /* an unlock woke us: we hold WOKEN */
    uint64_t since = 0;  /* when we first waited */
    int spins = 0;
    for (;;) {
        uint64_t v = __atomic_load_n(&m->word_, __ATOMIC_RELAXED);
        if (v == MTX_DEAD)
            return -EINVAL;
        if ((v & ~(MTX_WAITERS | MTX_STARVING | MTX_WOKEN)) == me)
            return -EDEADLK;
        if (mtx_free(v) && !(v & MTX_STARVING)) {
            uint64_t nv = me | (v & MTX_WAITERS) | (woken ? 0 : v & MTX_WOKEN);
            if (rt_cas64(&m->word_, v, nv)) {
                WRITE_ONCE(p->mutexes, p->mutexes + 1); /* sy_ps reads it */
                return 0;
            }
            continue;
        }
        /* With several CPUs the owner may be about to unlock: look again a
         * few times before sleeping (Go spins 4 x 30 pauses). */
        if (rt.ncpu > 1 && !(v & MTX_STARVING) && spins < 4) {
            spins++;
            for (int i = 0; i < 30; i++)
                cpu_relax();
            continue;
        }
        int err = killable ? may_wait(p, deadline) : sy__deadline_check(deadline);
        if (err) {
            if (woken) {
                obj_lock(&m->lock_, LOCK_OBJ);
                struct task *t = mutex_leave_locked(m, true);
                obj_unlock(&m->lock_);
                if (t)
                    sy__wait_wake(t);
            }
            return err;
        }

        obj_lock(&m->lock_, LOCK_OBJ);
        v = __atomic_load_n(&m->word_, __ATOMIC_RELAXED);
        if (v == MTX_DEAD) {
            obj_unlock(&m->lock_);
            return -EINVAL;
        }
        if (mtx_free(v)) {
            /* freed meanwhile: take it (a free mutex is never left
             * starving: clear that first) */
            if (v & MTX_STARVING)
                rt_cas64(&m->word_, v, v & ~MTX_STARVING);
            obj_unlock(&m->lock_);
            continue;
        }
        bool again = since != 0;
        uint64_t nv = v | MTX_WAITERS;
        if (woken)
            nv &= ~MTX_WOKEN;
        if (again && sy__now_ns() - since > STARVE_NS)
            nv |= MTX_STARVING;
        if (!rt_cas64(&m->word_, v, nv)) {
            obj_unlock(&m->lock_);
            continue;
        }
        woken = false;
        if (!again)
            since = sy__now_ns();
        waiter_t w;
        waiter_init(&w, p);
        w.data = since;
        if (again)
            wq_push_front(&m->q_, &w); /* it waited before: it goes first (Go) */
        else
            wq_push(&m->q_, &w);
        waits_add(&m->waits_, 1);
        sy_spinlock *lk = &m->lock_;
        err = sy__wait(c, &lk, 1, deadline, m, WK_MUTEX, killable ? WAIT_KILLABLE : 0);
        c = this_cpu();
        if (p->wait_fired == &w) {
            waits_add(&m->waits_, -1); /* (looping back counts again) */
            if (w.result == MTX_HANDOFF) {
                WRITE_ONCE(p->mutexes, p->mutexes + 1); /* sy_ps reads it */
                return 0;
            }
            woken = true;
            spins = 0;
            continue;
        }
        /* the timer, a kill or no memory: leave nothing behind */
        obj_lock(&m->lock_, LOCK_OBJ);
        if (w.queued)
            wq_del(&m->q_, &w);
        struct task *t = mutex_leave_locked(m, false);
        waits_add(&m->waits_, -1);
        obj_unlock(&m->lock_);
        if (t)
            sy__wait_wake(t);
        if (!killable && err == -EINTR && !READ_ONCE(rt.deadlocked))
            continue; /* sy_cond_wait's relock: a kill is only a wakeup */
        return err;
    }
}

static inline int mutex_lock(sy_mutex *m, int64_t deadline, bool killable)
{
    struct cpu *c = cpu_or_null();
    if (unlikely(!c))
        return -EPERM;
    if (unlikely(!m))
        return -EINVAL;
    struct task *p = c->curr;
    if (likely(rt_cas64(&m->word_, 0, owner_bits(p)))) {
        WRITE_ONCE(p->mutexes, p->mutexes + 1); /* sy_ps reads it */
        return 0;
    }
    return mutex_lock_slow(c, m, deadline, killable);
}

int sy_mutex_lock(sy_mutex *m)
{
    return mutex_lock(m, SY_FOREVER, true);
}

int sy_mutex_lock_until(sy_mutex *m, int64_t deadline)
{
    return mutex_lock(m, deadline, true);
}

int sy_mutex_trylock(sy_mutex *m)
{
    struct cpu *c = cpu_or_null();
    if (unlikely(!c))
        return -EPERM;
    if (unlikely(!m))
        return -EINVAL;
    struct task *p = c->curr;
    uint64_t me = owner_bits(p);
    for (;;) {
        uint64_t v = __atomic_load_n(&m->word_, __ATOMIC_RELAXED);
        if (v == MTX_DEAD)
            return -EINVAL;
        if ((v & ~(MTX_WAITERS | MTX_STARVING | MTX_WOKEN)) == me)
            return -EDEADLK;
        if (!mtx_free(v) || (v & MTX_STARVING))
            return -EBUSY;
        if (rt_cas64(&m->word_, v, me | (v & (MTX_WAITERS | MTX_WOKEN)))) {
            WRITE_ONCE(p->mutexes, p->mutexes + 1); /* sy_ps reads it */
            return 0;
        }
    }
}

/* The unlock with waiters, or an error.  The owner holds m. */
static __attribute__((noinline)) int mutex_unlock_slow(sy_mutex *m, struct task *p)
{
    uint64_t v = __atomic_load_n(&m->word_, __ATOMIC_RELAXED);
    if (v == MTX_DEAD)
        return -EINVAL;
    if ((v & ~(MTX_WAITERS | MTX_STARVING | MTX_WOKEN)) != owner_bits(p))
        return -EPERM;
    obj_lock(&m->lock_, LOCK_OBJ);
    /* Nobody else changes the word while we own it but under this lock. */
    v = __atomic_load_n(&m->word_, __ATOMIC_RELAXED);
    struct task *t = NULL;
    uint64_t nv;
    if (v & MTX_STARVING) {
        /* hand it to the first waiter that is still waiting */
        waiter_t *w = NULL;
        t = wq_fire_first(&m->q_, MTX_HANDOFF, &w);
        if (t) {
            nv = owner_bits(t) | (v & MTX_WOKEN);
            /* starving while its next waiter has waited long too (Go:
             * until a waiter is the last, or waited under STARVE_NS) */
            if (!wq_empty(&m->q_)) {
                nv |= MTX_WAITERS;
                if (sy__now_ns() - w->data > STARVE_NS)
                    nv |= MTX_STARVING;
            }
        } else {
            nv = v & MTX_WOKEN;
        }
    } else {
        nv = v & (MTX_WAITERS | MTX_WOKEN);
        if ((v & MTX_WAITERS) && !(v & MTX_WOKEN)) {
            t = wq_fire_first(&m->q_, 0, NULL);
            if (t)
                nv |= MTX_WOKEN;
        }
        if (wq_empty(&m->q_))
            nv &= ~MTX_WAITERS;
    }
    __atomic_store_n(&m->word_, nv, __ATOMIC_RELEASE);
    obj_unlock(&m->lock_);
    WRITE_ONCE(p->mutexes, p->mutexes - 1);
    if (t)
        sy__wait_wake(t);
    return 0;
}

static inline int mutex_unlock(sy_mutex *m, struct task *p)
{
    if (likely(rt_cas64(&m->word_, owner_bits(p), 0))) {
        WRITE_ONCE(p->mutexes, p->mutexes - 1);
        return 0;
    }
    return mutex_unlock_slow(m, p);
}

int sy_mutex_unlock(sy_mutex *m)
{
    struct cpu *c = cpu_or_null();
    if (unlikely(!c))
        return -EPERM;
    if (unlikely(!m))
        return -EINVAL;
    return mutex_unlock(m, c->curr);
}

int sy_mutex_init(sy_mutex *m)
{
    if (!m)
        return -EINVAL;
    *m = (sy_mutex)SY_MUTEX_INIT;
    return 0;
}

int sy_mutex_destroy(sy_mutex *m)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!m)
        return -EINVAL;
    obj_lock(&m->lock_, LOCK_OBJ);
    uint64_t v = __atomic_load_n(&m->word_, __ATOMIC_RELAXED);
    int err = 0;
    if (v == MTX_DEAD)
        err = -EINVAL;
    else if (v != 0 || !wq_empty(&m->q_) || !waits_none(&m->waits_) ||
             !rt_cas64(&m->word_, 0, MTX_DEAD))
        err = -EBUSY;
    obj_unlock(&m->lock_);
    return err;
}

int sy_mutex_owner(const sy_mutex *m)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!m)
        return -EINVAL;
    uint64_t v = __atomic_load_n(&m->word_, __ATOMIC_RELAXED);
    if (v == MTX_DEAD)
        return -EINVAL;
    return (int)(v >> MTX_SHIFT);
}

/* ======================================================== condition */

#define DEAD_MARK 0x64656164 /* "dead": spare_/state_ of a destroyed object */

int sy_cond_init(sy_cond *cv)
{
    if (!cv)
        return -EINVAL;
    *cv = (sy_cond)SY_COND_INIT;
    return 0;
}

int sy_cond_destroy(sy_cond *cv)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!cv)
        return -EINVAL;
    obj_lock(&cv->lock_, LOCK_COND);
    int err = cv->spare_ == DEAD_MARK                           ? -EINVAL
              : !wq_empty(&cv->q_) || !waits_none(&cv->waits_) ? -EBUSY
                                                                 : 0;
    if (!err)
        __atomic_store_n(&cv->spare_, DEAD_MARK, __ATOMIC_RELAXED); /* wait reads it unlocked */
    obj_unlock(&cv->lock_);
    return err;
}

int sy_cond_wait_until(sy_cond *cv, sy_mutex *m, int64_t deadline)
{
    struct cpu *c = cpu_or_null();
    if (!c)
        return -EPERM;
    if (!cv || !m)
        return -EINVAL;
    struct task *p = c->curr;
    uint64_t v = __atomic_load_n(&m->word_, __ATOMIC_RELAXED);
    if (v == MTX_DEAD)
        return -EINVAL;
    if ((v & ~(MTX_WAITERS | MTX_STARVING | MTX_WOKEN)) != owner_bits(p))
        return -EPERM;
    if (__atomic_load_n(&cv->spare_, __ATOMIC_RELAXED) == DEAD_MARK)
        return -EINVAL; /* bad input first, then the deadline */
    int err = may_wait(p, deadline);
    if (err)
        return err;
    obj_lock(&cv->lock_, LOCK_COND);
    if (cv->spare_ == DEAD_MARK) {
        obj_unlock(&cv->lock_);
        return -EINVAL;
    }
    /* On the queue before the mutex is released: a signal sent by its next
     * holder finds us (it takes the condition's lock, which we hold until
     * we sleep). */
    waiter_t w;
    waiter_init(&w, p);
    wq_push(&cv->q_, &w);
    waits_add(&cv->waits_, 1);
    mutex_unlock(m, p);
    sy_spinlock *lk = &cv->lock_;
    err = sy__wait(c, &lk, 1, deadline, cv, WK_COND, WAIT_KILLABLE);
    if (p->wait_fired != &w) {
        obj_lock(&cv->lock_, LOCK_COND);
        if (w.queued)
            wq_del(&cv->q_, &w);
        waits_add(&cv->waits_, -1);
        obj_unlock(&cv->lock_);
    } else {
        waits_add(&cv->waits_, -1);
        err = 0;
    }
    mutex_lock(m, SY_FOREVER, false); /* whatever happened: not a kill point */
    return err;
}

int sy_cond_wait(sy_cond *cv, sy_mutex *m)
{
    return sy_cond_wait_until(cv, m, SY_FOREVER);
}

static int cond_wake(sy_cond *cv, bool all)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!cv)
        return -EINVAL;
    struct task *chain = NULL, **tail = &chain;
    obj_lock(&cv->lock_, LOCK_COND);
    if (cv->spare_ == DEAD_MARK) {
        obj_unlock(&cv->lock_);
        return -EINVAL;
    }
    if (all)
        wq_fire_all(&cv->q_, 0, &tail);
    else
        chain = wq_fire_first(&cv->q_, 0, NULL);
    obj_unlock(&cv->lock_);
    if (chain && !all)
        chain->rq_next = NULL;
    wake_chain(chain);
    return 0;
}

int sy_cond_signal(sy_cond *cv)
{
    return cond_wake(cv, false);
}

int sy_cond_broadcast(sy_cond *cv)
{
    return cond_wake(cv, true);
}

/* ======================================================== semaphore */

/* The word: the count in the low 32 bits, the number of records on the
 * queue in the high 32 (changed under the lock; whoever takes a record off
 * the queue takes it off the number too).  While records wait the count is
 * 0, and a post hands its unit to the first waiter. */
#define SEM_DEAD UINT64_MAX
#define SEM_ONE_WAITER (1ull << 32)

static inline uint32_t sem_count(uint64_t v)
{
    return (uint32_t)v;
}

int sy_sem_init(sy_sem *s, unsigned value)
{
    if (!s || value > SY_SEM_MAX)
        return -EINVAL;
    *s = (sy_sem)SY_SEM_INIT(value);
    return 0;
}

int sy_sem_destroy(sy_sem *s)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!s)
        return -EINVAL;
    obj_lock(&s->lock_, LOCK_OBJ);
    int err;
    for (;;) {
        uint64_t v = __atomic_load_n(&s->word_, __ATOMIC_RELAXED);
        if (v == SEM_DEAD) {
            err = -EINVAL;
        } else if ((v >> 32) || !waits_none(&s->waits_)) {
            err = -EBUSY;
        } else {
            if (!rt_cas64(&s->word_, v, SEM_DEAD))
                continue;
            err = 0;
        }
        break;
    }
    obj_unlock(&s->lock_);
    return err;
}

/* Take a unit if there is one: 1 taken, 0 none, -EINVAL destroyed. */
static inline int sem_take(sy_sem *s)
{
    uint64_t v = __atomic_load_n(&s->word_, __ATOMIC_RELAXED);
    for (;;) {
        if (v == SEM_DEAD)
            return -EINVAL;
        if (sem_count(v) == 0)
            return 0;
        if (rt_cas64(&s->word_, v, v - 1))
            return 1;
        v = __atomic_load_n(&s->word_, __ATOMIC_RELAXED);
    }
}

int sy_sem_wait_until(sy_sem *s, int64_t deadline)
{
    struct cpu *c = cpu_or_null();
    if (!c)
        return -EPERM;
    if (!s)
        return -EINVAL;
    int r = sem_take(s);
    if (r)
        return r < 0 ? r : 0;
    struct task *p = c->curr;
    int err = may_wait(p, deadline);
    if (err)
        return err;
    obj_lock(&s->lock_, LOCK_OBJ);
    for (;;) {
        uint64_t v = __atomic_load_n(&s->word_, __ATOMIC_RELAXED);
        if (v == SEM_DEAD || sem_count(v) > 0) {
            r = sem_take(s);
            obj_unlock(&s->lock_);
            if (r)
                return r < 0 ? r : 0;
            obj_lock(&s->lock_, LOCK_OBJ); /* taken by a fast waiter: again */
            continue;
        }
        if (rt_cas64(&s->word_, v, v + SEM_ONE_WAITER))
            break;
    }
    waiter_t w;
    waiter_init(&w, p);
    wq_push(&s->q_, &w);
    waits_add(&s->waits_, 1);
    sy_spinlock *lk = &s->lock_;
    err = sy__wait(c, &lk, 1, deadline, s, WK_SEM, WAIT_KILLABLE);
    if (p->wait_fired == &w) {
        waits_add(&s->waits_, -1);
        return 0; /* the poster handed us its unit */
    }
    obj_lock(&s->lock_, LOCK_OBJ);
    if (w.queued) {
        wq_del(&s->q_, &w);
        __atomic_fetch_sub(&s->word_, SEM_ONE_WAITER, __ATOMIC_RELAXED);
    }
    waits_add(&s->waits_, -1);
    obj_unlock(&s->lock_);
    return err;
}

int sy_sem_wait(sy_sem *s)
{
    return sy_sem_wait_until(s, SY_FOREVER);
}

int sy_sem_trywait(sy_sem *s)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!s)
        return -EINVAL;
    int r = sem_take(s);
    return r < 0 ? r : r ? 0 : -EAGAIN;
}

int sy_sem_post(sy_sem *s)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!s)
        return -EINVAL;
    uint64_t v = __atomic_load_n(&s->word_, __ATOMIC_RELAXED);
    for (;;) {
        if (v == SEM_DEAD)
            return -EINVAL;
        if (v >> 32)
            break; /* waiters: hand the unit over */
        if (sem_count(v) >= SY_SEM_MAX)
            return -EOVERFLOW;
        if (rt_cas64(&s->word_, v, v + 1))
            return 0;
        v = __atomic_load_n(&s->word_, __ATOMIC_RELAXED);
    }
    obj_lock(&s->lock_, LOCK_OBJ);
    struct task *t = NULL;
    waiter_t *w;
    while (!t && (w = s->q_.head_) != NULL) {
        wq_del(&s->q_, w);
        __atomic_fetch_sub(&s->word_, SEM_ONE_WAITER, __ATOMIC_RELAXED);
        if (wait_fire(w, 0))
            t = w->task;
    }
    int err = 0;
    if (!t) { /* every waiter had left: count it */
        for (;;) {
            v = __atomic_load_n(&s->word_, __ATOMIC_RELAXED);
            if (sem_count(v) >= SY_SEM_MAX) {
                err = -EOVERFLOW;
                break;
            }
            if (rt_cas64(&s->word_, v, v + 1))
                break;
        }
    }
    obj_unlock(&s->lock_);
    if (t)
        sy__wait_wake(t);
    return err;
}

int sy_sem_value(const sy_sem *s)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!s)
        return -EINVAL;
    uint64_t v = __atomic_load_n(&s->word_, __ATOMIC_RELAXED);
    return v == SEM_DEAD ? -EINVAL : (int)sem_count(v);
}

/* ============================================================ rwlock */

/* Under the lock: readers_ counts the readers inside (-1: a writer is,
 * writer_ its pid); wwait_ the writers' records on the queue (whoever takes
 * one off the queue takes it off the count).  A record's data is 1 for a
 * writer.  Admission (rw_grant) hands the lock to waiters, who return
 * holding it. */
#define RW_DEAD INT_MIN

int sy_rwlock_init(sy_rwlock *rw)
{
    if (!rw)
        return -EINVAL;
    *rw = (sy_rwlock)SY_RWLOCK_INIT;
    return 0;
}

int sy_rwlock_destroy(sy_rwlock *rw)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!rw)
        return -EINVAL;
    obj_lock(&rw->lock_, LOCK_OBJ);
    int err = rw->readers_ == RW_DEAD                        ? -EINVAL
              : rw->readers_ != 0 || !wq_empty(&rw->q_) || !waits_none(&rw->waits_) ? -EBUSY
                                                             : 0;
    if (!err)
        rw->readers_ = RW_DEAD;
    obj_unlock(&rw->lock_);
    return err;
}

/* Let waiters in: every waiting reader if readers are preferred (a writer
 * just left) or no writer waits; else, once nobody is inside, the first
 * writer.  Returns the chain of tasks to wake.  Lock held. */
static struct task *rw_grant(sy_rwlock *rw, bool prefer_readers)
{
    struct task *chain = NULL, **tail = &chain;
    if (rw->readers_ < 0)
        return NULL;
    if (prefer_readers || rw->wwait_ == 0) {
        for (waiter_t *w = rw->q_.head_, *next; w; w = next) {
            next = w->next;
            if (w->data)
                continue;
            wq_del(&rw->q_, w);
            if (wait_fire(w, 0)) {
                rw->readers_++;
                w->task->rq_next = NULL;
                *tail = w->task;
                tail = &w->task->rq_next;
            }
        }
    }
    if (rw->readers_ == 0) {
        for (waiter_t *w = rw->q_.head_, *next; w; w = next) {
            next = w->next;
            if (!w->data)
                continue;
            wq_del(&rw->q_, w);
            rw->wwait_--;
            if (wait_fire(w, 0)) {
                rw->readers_ = -1;
                rw->writer_ = w->task->pid;
                w->task->rq_next = NULL;
                *tail = w->task;
                break;
            }
        }
    }
    return chain;
}

static int rw_lock(sy_rwlock *rw, bool writer, int64_t deadline, bool try)
{
    struct cpu *c = cpu_or_null();
    if (!c)
        return -EPERM;
    if (!rw)
        return -EINVAL;
    struct task *p = c->curr;
    obj_lock(&rw->lock_, LOCK_OBJ);
    int err = 0;
    if (rw->readers_ == RW_DEAD) {
        err = -EINVAL;
    } else if (rw->readers_ == -1 && rw->writer_ == p->pid) {
        err = -EDEADLK;
    } else if (writer ? rw->readers_ == 0 : rw->readers_ >= 0 && rw->wwait_ == 0) {
        if (writer) {
            rw->readers_ = -1;
            rw->writer_ = p->pid;
        } else {
            rw->readers_++;
        }
        obj_unlock(&rw->lock_);
        WRITE_ONCE(p->rwlocks, p->rwlocks + 1);
        return 0;
    } else {
        err = try ? -EBUSY : may_wait(p, deadline);
    }
    if (err) {
        obj_unlock(&rw->lock_);
        return err;
    }
    waiter_t w;
    waiter_init(&w, p);
    w.data = writer;
    wq_push(&rw->q_, &w);
    waits_add(&rw->waits_, 1);
    if (writer)
        rw->wwait_++;
    sy_spinlock *lk = &rw->lock_;
    err = sy__wait(c, &lk, 1, deadline, rw, WK_RWLOCK, WAIT_KILLABLE);
    if (p->wait_fired == &w) {
        waits_add(&rw->waits_, -1);
        WRITE_ONCE(p->rwlocks, p->rwlocks + 1);
        return 0; /* admitted */
    }
    obj_lock(&rw->lock_, LOCK_OBJ);
    if (w.queued) {
        wq_del(&rw->q_, &w);
        if (writer)
            rw->wwait_--;
    }
    struct task *chain = rw_grant(rw, false); /* readers held back by us may go */
    waits_add(&rw->waits_, -1);
    obj_unlock(&rw->lock_);
    wake_chain(chain);
    return err;
}

int sy_rwlock_rdlock(sy_rwlock *rw)
{
    return rw_lock(rw, false, SY_FOREVER, false);
}

int sy_rwlock_rdlock_until(sy_rwlock *rw, int64_t deadline)
{
    return rw_lock(rw, false, deadline, false);
}

int sy_rwlock_tryrdlock(sy_rwlock *rw)
{
    return rw_lock(rw, false, SY_FOREVER, true);
}

int sy_rwlock_wrlock(sy_rwlock *rw)
{
    return rw_lock(rw, true, SY_FOREVER, false);
}

int sy_rwlock_wrlock_until(sy_rwlock *rw, int64_t deadline)
{
    return rw_lock(rw, true, deadline, false);
}

int sy_rwlock_trywrlock(sy_rwlock *rw)
{
    return rw_lock(rw, true, SY_FOREVER, true);
}

int sy_rwlock_unlock(sy_rwlock *rw)
{
    struct cpu *c = cpu_or_null();
    if (!c)
        return -EPERM;
    if (!rw)
        return -EINVAL;
    obj_lock(&rw->lock_, LOCK_OBJ);
    int err = 0;
    struct task *chain = NULL;
    if (rw->readers_ == RW_DEAD) {
        err = -EINVAL;
    } else if (rw->readers_ == -1) {
        if (rw->writer_ != c->curr->pid) {
            err = -EPERM;
        } else {
            rw->readers_ = 0;
            rw->writer_ = 0;
            chain = rw_grant(rw, true);
        }
    } else if (rw->readers_ > 0) {
        rw->readers_--;
        chain = rw_grant(rw, false);
    } else {
        err = -EPERM;
    }
    obj_unlock(&rw->lock_);
    if (!err)
        WRITE_ONCE(c->curr->rwlocks, c->curr->rwlocks - 1);
    wake_chain(chain);
    return err;
}

/* ========================================================= waitgroup */

int sy_waitgroup_init(sy_waitgroup *wg)
{
    if (!wg)
        return -EINVAL;
    *wg = (sy_waitgroup)SY_WAITGROUP_INIT;
    return 0;
}

int sy_waitgroup_destroy(sy_waitgroup *wg)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!wg)
        return -EINVAL;
    obj_lock(&wg->lock_, LOCK_OBJ);
    int err = wg->spare_ == DEAD_MARK                           ? -EINVAL
              : !wq_empty(&wg->q_) || !waits_none(&wg->waits_) ? -EBUSY
                                                                 : 0;
    if (!err)
        wg->spare_ = DEAD_MARK;
    obj_unlock(&wg->lock_);
    return err;
}

int sy_waitgroup_add(sy_waitgroup *wg, int64_t n)
{
    if (!cpu_or_null())
        return -EPERM;
    if (!wg)
        return -EINVAL;
    struct task *chain = NULL, **tail = &chain;
    obj_lock(&wg->lock_, LOCK_OBJ);
    int err = 0;
    int64_t nc;
    if (wg->spare_ == DEAD_MARK || __builtin_add_overflow(wg->count_, n, &nc) || nc < 0) {
        err = -EINVAL;
    } else {
        wg->count_ = nc;
        if (nc == 0)
            wq_fire_all(&wg->q_, 0, &tail);
    }
    obj_unlock(&wg->lock_);
    wake_chain(chain);
    return err;
}

int sy_waitgroup_done(sy_waitgroup *wg)
{
    return sy_waitgroup_add(wg, -1);
}

int sy_waitgroup_wait_until(sy_waitgroup *wg, int64_t deadline)
{
    struct cpu *c = cpu_or_null();
    if (!c)
        return -EPERM;
    if (!wg)
        return -EINVAL;
    struct task *p = c->curr;
    obj_lock(&wg->lock_, LOCK_OBJ);
    int err = wg->spare_ == DEAD_MARK ? -EINVAL : wg->count_ == 0 ? 1 : may_wait(p, deadline);
    if (err) {
        obj_unlock(&wg->lock_);
        return err > 0 ? 0 : err;
    }
    waiter_t w;
    waiter_init(&w, p);
    wq_push(&wg->q_, &w);
    waits_add(&wg->waits_, 1);
    sy_spinlock *lk = &wg->lock_;
    err = sy__wait(c, &lk, 1, deadline, wg, WK_WAITGROUP, WAIT_KILLABLE);
    if (p->wait_fired == &w) {
        waits_add(&wg->waits_, -1);
        return 0;
    }
    obj_lock(&wg->lock_, LOCK_OBJ);
    if (w.queued)
        wq_del(&wg->q_, &w);
    waits_add(&wg->waits_, -1);
    obj_unlock(&wg->lock_);
    return err;
}

int sy_waitgroup_wait(sy_waitgroup *wg)
{
    return sy_waitgroup_wait_until(wg, SY_FOREVER);
}

/* ============================================================== once */

/* state_: 0 not run, > 0 the pid of the task running it, -1 done.
 * The runner keeps a frame on its stack, linked from the task, so that if
 * it exits inside the initialiser (killed), sy__once_abandon (task.c: exit)
 * puts the once back to "not run" and wakes its waiters, one of whom then
 * runs it. */
struct once_frame {
    sy_once *once;
    struct once_frame *prev;
};

/* Wake every waiter of `once` (they look at its state again).  Lock held. */
static struct task *once_wake_locked(sy_once *once)
{
    struct task *chain = NULL, **tail = &chain;
    wq_fire_all(&once->q_, 0, &tail);
    return chain;
}

void sy__once_abandon(struct task *p)
{
    for (struct once_frame *f = p->once_top; f; f = f->prev) {
        obj_lock(&f->once->lock_, LOCK_OBJ);
        __atomic_store_n(&f->once->state_, 0, __ATOMIC_RELAXED);
        struct task *chain = once_wake_locked(f->once);
        obj_unlock(&f->once->lock_);
        wake_chain(chain);
    }
    p->once_top = NULL;
}

int sy_once_run(sy_once *once, void (*fn)(void *arg), void *arg)
{
    struct cpu *c = cpu_or_null();
    if (!c)
        return -EPERM;
    if (likely(once && __atomic_load_n(&once->state_, __ATOMIC_ACQUIRE) == -1))
        return 0;
    if (!once || !fn)
        return -EINVAL;
    struct task *p = c->curr;
    for (;;) {
        obj_lock(&once->lock_, LOCK_OBJ);
        int s = once->state_;
        if (s == -1) {
            obj_unlock(&once->lock_);
            return 0;
        }
        if (s == 0) {
            __atomic_store_n(&once->state_, p->pid, __ATOMIC_RELAXED); /* the fast path reads it */
            obj_unlock(&once->lock_);
            struct once_frame f = {once, p->once_top};
            p->once_top = &f;
            fn(arg);
            p->once_top = f.prev;
            obj_lock(&once->lock_, LOCK_OBJ);
            __atomic_store_n(&once->state_, -1, __ATOMIC_RELEASE);
            struct task *chain = once_wake_locked(once);
            obj_unlock(&once->lock_);
            wake_chain(chain);
            return 0;
        }
        int err = s == p->pid ? -EDEADLK : may_wait(p, SY_FOREVER);
        if (err) {
            obj_unlock(&once->lock_);
            return err;
        }
        waiter_t w;
        waiter_init(&w, p);
        wq_push(&once->q_, &w);
        sy_spinlock *lk = &once->lock_;
        err = sy__wait(c, &lk, 1, SY_FOREVER, once, WK_ONCE, WAIT_KILLABLE);
        c = this_cpu();
        if (p->wait_fired == &w)
            continue; /* done, or abandoned by a runner that exited: look */
        obj_lock(&once->lock_, LOCK_OBJ);
        if (w.queued)
            wq_del(&once->q_, &w);
        obj_unlock(&once->lock_);
        return err;
    }
}
