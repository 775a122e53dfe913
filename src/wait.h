/*
 * wait.h - waiter records: how a task waits on the queues of objects
 * (mutexes, conditions, semaphores, channels, ...), and on several at once
 * (select).  Linux's wait_queue_entry, Go's sudog.
 *
 * A waiter record (struct sy_waiter_) is one task's place on one object's
 * queue.  It lives on the waiting task's stack, for the length of one wait;
 * a task waiting on several queues (sy_select) has one record on each.  The
 * object's own lock protects its queue and the `queued` flag of the records
 * on it.
 *
 * The protocol (wait.c has the task's side):
 *
 *   waiter:  lock the object(s); find it must wait; put a record on the
 *            queue(s), carrying the number of the wait it is for (`seq`:
 *            the task's sleep_seq + 1); sy__wait(): it takes its own
 *            wait_lock, publishes its wake token (seq, "waiting"), becomes
 *            SLEEPING, drops the object locks and switches, holding only
 *            wait_lock across the switch (the next task releases it).
 *   waker:   under the object's lock, takes a record off the queue and
 *            fires it (wait_fire): a compare-and-swap of the record's task's
 *            token from "waiting in wait seq" to "woken".  Only one waker
 *            wins a given wait - the one record that fires, the timer, or
 *            sy_kill - and only the winner touches the task: it writes the
 *            record's result (and copies a channel's element), then, once
 *            it has dropped the object lock, makes the task RUNNABLE under
 *            the task's wait_lock (sy__wait_wake), which it cannot get
 *            before the task's context is saved.  A record whose task was
 *            woken already is only taken off the queue.
 *   after:   the woken task finds which record fired (task->wait_fired, NULL
 *            for a timer or a kill, whose error is task->wake_err) and takes
 *            its other records off their queues, under their locks, before
 *            it returns: no record outlives its wait.
 *
 * So a queued record always belongs to its task's current wait (or to one
 * that ended a moment ago and is being cleaned up: its token no longer
 * matches).  The timer and sy_kill wake through sy__wake_sleeper (sleep.c),
 * which sees t->chan == WAIT_RECORDS and fires the token instead of a
 * bucket's queue.
 *
 * Locks: object locks (class LOCK_OBJ; a condition's, LOCK_COND, ranks
 * above a mutex's, which sy_cond_wait takes under it), then the task's
 * wait_lock (LOCK_WAIT), then timer_lock.  Wakers never wait for a
 * wait_lock while holding an object lock they could need... they may: a
 * sleeper holds its wait_lock only from publishing its token to its switch,
 * and takes no object lock meanwhile (it only drops them).
 * With one CPU the locks are elided and the compare-and-swaps are plain
 * (rt_cas): one host thread runs all runtime code, which is never preempted
 * - until a first hand-off (handoff.c) lets a second one in: rt.smp.
 */
#ifndef SY_WAIT_H
#define SY_WAIT_H

#include "internal.h"

struct sy_waiter_ {
    struct sy_waiter_ *next, *prev; /* on the object's queue */
    struct task *task;
    uint32_t seq;                   /* the wait it belongs to */
    bool queued;                    /* on its queue (under the queue's lock) */
    int index;                      /* sy_select: the case */
    void *elem;                     /* channels: the element to send, or where
                                       to receive one */
    int result;                     /* written by the waker that fired it */
    uint32_t *tfired;               /* a plain thread's record (task NULL,
                                       hostsync.c): its thread's futex word,
                                       1 once fired */
    uint64_t data;                  /* the primitive's own (a mutex: when the
                                       wait began; an rwlock: a writer) */
};
typedef struct sy_waiter_ waiter_t;

/* task->chan of a task waiting on records (not on a bucket). */
extern const char sy__wait_records[] HIDDEN;
#define WAIT_RECORDS ((const void *)sy__wait_records)

/* What a task waits on, for sy_ps (task->wait_kind). */
enum wait_kind {
    WK_NONE,
    WK_SLEEP,
    WK_WAIT,
    WK_MUTEX,
    WK_COND,
    WK_SEM,
    WK_RWLOCK,
    WK_WAITGROUP,
    WK_ONCE,
    WK_CHAN,
    WK_SELECT,
    WK_IO,
    WK_PTHREAD, /* a host object: pthread, C11, sem_t, FILE (hostsync.c) */
};

/* Compare-and-swap, plain with one CPU (see above). */
static inline bool rt_cas64(uint64_t *p, uint64_t old, uint64_t new)
{
    if (rt.smp)
        return __atomic_compare_exchange_n(p, &old, new, false, __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED);
    if (*p != old)
        return false;
    *p = new;
    return true;
}

static inline bool rt_cas32(uint32_t *p, uint32_t old, uint32_t new)
{
    if (rt.smp)
        return __atomic_compare_exchange_n(p, &old, new, false, __ATOMIC_ACQ_REL,
                                           __ATOMIC_RELAXED);
    if (*p != old)
        return false;
    *p = new;
    return true;
}

/* Object locks: runtime locks (elided with one CPU) of a given class. */
static inline void obj_lock(sy_spinlock *lk, int cls)
{
    sy__lockdep_acquire_as(lk, cls);
    if (rt.smp)
        spin_lock(lk);
}

static inline void obj_unlock(sy_spinlock *lk)
{
    rt_unlock(lk);
}

/* ------------------------------------------------------------- queues */

static inline bool wq_empty(const sy_waitq_ *q)
{
    return q->head_ == NULL;
}

static inline void wq_push(sy_waitq_ *q, waiter_t *w)
{
    w->next = NULL;
    w->prev = q->tail_;
    if (q->tail_)
        q->tail_->next = w;
    else
        q->head_ = w;
    q->tail_ = w;
    w->queued = true;
}

static inline void wq_push_front(sy_waitq_ *q, waiter_t *w)
{
    w->prev = NULL;
    w->next = q->head_;
    if (q->head_)
        q->head_->prev = w;
    else
        q->tail_ = w;
    q->head_ = w;
    w->queued = true;
}

static inline void wq_del(sy_waitq_ *q, waiter_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head_ = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail_ = w->prev;
    w->next = w->prev = NULL;
    w->queued = false;
}

/* A record for the calling task's next wait. */
static inline void waiter_init(waiter_t *w, struct task *self)
{
    w->task = self;
    w->seq = self->sleep_seq + 1;
    w->queued = false;
    w->index = 0;
    w->elem = NULL;
    w->result = 0;
    w->data = 0;
}

/* Waits in progress on an object: destroy returns -EBUSY while any.  Up
 * under the object's lock when a waiter queues its record; down when the
 * waiter is done with the object - after its wait was ended by the object
 * (it never touches the object again), or after it took its record off,
 * under the lock - so that no destroy frees or marks an object a waiter
 * will still lock.  Atomic (the down may be lockless), plain with one CPU. */
static inline void waits_add(int *w, int d)
{
    if (rt.smp)
        __atomic_add_fetch(w, d, __ATOMIC_RELEASE);
    else
        *w += d;
}

static inline bool waits_none(const int *w)
{
    return __atomic_load_n(w, __ATOMIC_ACQUIRE) == 0;
}

/* ---------------------------------------------------------- the waker */

#define TOKEN_WAITING(seq) ((uint32_t)(seq) << 1 | 1u)

/* Claim w's task for w: true if this wake is the one that ends its wait,
 * with `result` as w's result; false if its task was woken already (by
 * another record, its timer or a kill).  Lock of w's queue held; w is off
 * the queue or about to be.  If true, the caller wakes w->task with
 * sy__wait_wake once it has dropped the object's lock, and touches w no
 * more after dropping it. */
static inline bool wait_fire(waiter_t *w, int result)
{
    struct task *t = w->task;
    uint32_t want = TOKEN_WAITING(w->seq);
    if (!rt_cas32(&t->wait_token, want, want & ~1u))
        return false;
    w->result = result;
    t->wait_fired = w;
    return true;
}

/* Pop records off q until one fires (or q is empty): returns the fired
 * record's task, NULL if none fired.  Object lock held. */
static inline struct task *wq_fire_first(sy_waitq_ *q, int result, waiter_t **fired)
{
    waiter_t *w;
    while ((w = q->head_) != NULL) {
        wq_del(q, w);
        if (wait_fire(w, result)) {
            if (fired)
                *fired = w;
            return w->task;
        }
    }
    return NULL;
}

/* wait.c */
HIDDEN void sy__wait_wake(struct task *t);
HIDDEN void sy__wait_wake_shared(struct task *t);
/* sy__wait's flags */
#define WAIT_KILLABLE 0x1u /* a kill ends it (-EINTR) */
#define WAIT_SHARED 0x2u   /* plain threads may end it (hostsync.c): the
                              object locks and wait_lock are real locks and
                              the token's compare-and-swaps atomic, even with
                              one CPU */
HIDDEN int sy__wait(struct cpu *c, sy_spinlock *const *locks, int nlocks, int64_t deadline,
                    const void *wchan, int kind, unsigned flags);
HIDDEN int sy__deadline_check_slow(int64_t deadline);

/* Before a wait: may the caller wait until `deadline`?  0 if so, -ETIMEDOUT
 * if it has passed, -EINVAL for a negative deadline other than SY_FOREVER. */
static inline int sy__deadline_check(int64_t deadline)
{
    return deadline == SY_FOREVER ? 0 : sy__deadline_check_slow(deadline);
}

/* Fire every record on q with `result`, appending the tasks that were
 * still waiting to a chain (through rq_next: they are on no run queue while
 * fired and not yet woken) for wake_chain once the lock is dropped.
 * Returns how many.  Object lock held. */
static inline int wq_fire_all(sy_waitq_ *q, int result, struct task ***tail)
{
    struct task *t;
    int n = 0;
    while ((t = wq_fire_first(q, result, NULL)) != NULL) {
        t->rq_next = NULL;
        **tail = t;
        *tail = &t->rq_next;
        n++;
    }
    return n;
}

/* Wake a chain of fired tasks linked through rq_next (they are on no run
 * queue while fired and not yet woken). */
static inline void wake_chain(struct task *t)
{
    while (t) {
        struct task *next = t->rq_next;
        sy__wait_wake(t);
        t = next;
    }
}

#endif
