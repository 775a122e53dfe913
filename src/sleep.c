/*
 * sleep.c - sleep and wakeup, xv6's, on hashed wait queues.
 *
 * Sleep and wakeup keep xv6's contract: sleep(chan, lk) is entered with the
 * condition lock `lk` held, takes the channel's bucket lock, and only then
 * drops `lk`; a waker changes the condition under `lk` and then takes the
 * bucket lock to find sleepers.  So a wakeup cannot fall between the
 * sleeper's test of the condition and its sleep.  Channels hash into
 * WAITQ_BUCKETS buckets, like futexes; a bucket's queue is FIFO, so
 * sy_wakeup_one wakes the task that slept first.
 *
 * A sleeper holds its bucket lock across its switch (sched.c: the lock that
 * crosses a switch), so a waker cannot make it RUNNABLE before its context
 * is saved.  Timed sleeps arm a timer (timer.c) under the bucket lock;
 * sy_kill wakes a sleeper through sy__wake_sleeper.
 */
#include "internal.h"
#include "runq.h"
#include "wait.h"

static inline struct waitq_bucket *bucket_of(const void *chan)
{
    uint64_t h = (uint64_t)(uintptr_t)chan * 0x9e3779b97f4a7c15ull;
    return &rt.waitq[h >> (64 - 12)];
}
_Static_assert(WAITQ_BUCKETS == 1 << 12, "bucket_of hashes to 12 bits");

static inline void waitq_append(struct waitq_bucket *b, struct task *t)
{
    t->wq_next = NULL;
    t->wq_prev = b->tail;
    if (b->tail)
        b->tail->wq_next = t;
    else
        b->head = t;
    b->tail = t;
}

static inline void waitq_remove(struct waitq_bucket *b, struct task *t)
{
    if (t->wq_prev)
        t->wq_prev->wq_next = t->wq_next;
    else
        b->head = t->wq_next;
    if (t->wq_next)
        t->wq_next->wq_prev = t->wq_prev;
    else
        b->tail = t->wq_prev;
    t->wq_next = t->wq_prev = NULL;
}

/* The lock a sleeper holds may be the runtime's own tree_lock (sy_wait) or a
 * user's sy_spinlock (sy_sleep), which is always real and keeps its holder
 * non-preemptible (its count travels with the task). */
static inline void lock_release(struct task *self, sy_spinlock *lk)
{
    if (lk == &rt.tree_lock) {
        rt_unlock(lk);
    } else if (lk) {
        spin_unlock(lk);
        self->preempt_count--;
    }
}

static inline void lock_acquire(struct task *self, sy_spinlock *lk)
{
    if (lk == &rt.tree_lock) {
        rt_lock(lk);
    } else if (lk) {
        self->preempt_count++;
        spin_lock(lk);
    }
}

/*
 * sleep - xv6's sleep(chan, lk), with an optional deadline (0: none).
 * The caller holds lk (or passes NULL).  Returns 0 when woken by a wakeup,
 * -ETIMEDOUT at the deadline, -EINTR when killed; lk is held again on
 * return in every case.  `lk` may be rt.tree_lock (sy_wait sleeps that way).
 */
int sy__sleep(struct cpu *c, const void *chan, sy_spinlock *lk, uint64_t deadline)
{
    struct task *p = c->curr;
    struct waitq_bucket *b = bucket_of(chan);

    /* Take the bucket lock before dropping lk: a waker must take it too, so
     * it cannot run between our test of the condition and our sleep.  And be
     * on the queue, SLEEPING, before lk is dropped: whoever holds lk may
     * look at our state (sy__task_exit does, under tree_lock). */
    rt_lock(&b->lock);
    p->sleep_seq++;
    p->wake_err = 0;
    WRITE_ONCE(p->wchan, chan);
    WRITE_ONCE(p->wait_kind, chan == p ? WK_WAIT : WK_SLEEP); /* sy_wait sleeps on itself */
    task_set_state(p, SY_SLEEPING);
    waitq_append(b, p);

    /* Against sy_kill, which stores `killed` and then reads `chan` without
     * our bucket lock: we store `chan` and then read `killed`, all four
     * sequentially consistent, so either it sees our chan (and wakes us
     * once it gets the bucket lock) or we see `killed`. */
    __atomic_store_n(&p->chan, chan, __ATOMIC_SEQ_CST);
    int err = 0;
    if (__atomic_load_n(&p->killed, __ATOMIC_SEQ_CST))
        err = -EINTR;
    else if (deadline && sy__timer_add(p, deadline) != 0)
        err = -ENOMEM;
    if (err) {
        waitq_remove(b, p);
        __atomic_store_n(&p->chan, NULL, __ATOMIC_RELAXED);
        task_set_state(p, SY_RUNNING);
        rt_unlock(&b->lock);
        return err; /* lk still held */
    }
    lock_release(p, lk);

    /* The bucket lock stays held across the switch; the next task releases
     * it in finish_task_switch, once our context is saved. */
    c->finish |= FINISH_UNLOCK;
    c->finish_lock = &b->lock;
    sy__schedule(c, p);

    /* Woken: the waker took us off the queue and made us RUNNABLE.  We may
     * be on another CPU now: c is stale. */
    err = p->wake_err;
    if (deadline)
        sy__timer_cancel(p); /* gone, or firing: then wait for it to finish */
    lock_acquire(p, lk);
    return err;
}

/* Take t off its wait queue and make it RUNNABLE with `err` as the result of
 * its sleep; the caller queues it (sy__enqueue) once it has dropped the
 * bucket lock.  Bucket lock of t->chan held. */
static void wake_locked(struct waitq_bucket *b, struct task *t, int err)
{
    assert_held(&b->lock);
    waitq_remove(b, t);
    __atomic_store_n(&t->chan, NULL, __ATOMIC_RELAXED);
    t->wake_err = err;
    task_set_runnable(t);
}

/* Queue a chain of woken tasks (linked through rq_next: they are on no run
 * queue, and nobody else may queue them). */
static void enqueue_chain(struct task *t)
{
    while (t) {
        struct task *next = t->rq_next;
        sy__enqueue(t);
        t = next;
    }
}

/* Wake up to `max` tasks asleep on chan (max < 0: all); returns how many. */
int sy__wakeup(const void *chan, int max)
{
    struct waitq_bucket *b = bucket_of(chan);
    struct task *woken = NULL, **tail = &woken;
    int n = 0;
    rt_lock(&b->lock);
    for (struct task *t = b->head, *next; t && n != max; t = next) {
        next = t->wq_next;
        if (t->chan == chan) {
            wake_locked(b, t, 0);
            t->rq_next = NULL;
            *tail = t;
            tail = &t->rq_next;
            n++;
        }
    }
    rt_unlock(&b->lock);
    enqueue_chain(woken);
    return n;
}

/* Wake t if it is still asleep in the sleep numbered `seq` (ANY_SLEEP:
 * whichever sleep it is in), with `err` as the result of that sleep;
 * returns whether it woke it.  Callers: sy_kill (ANY_SLEEP, after setting
 * t->killed: see sy__sleep; tree_lock held, so t is not freed under us),
 * and a timer that fired (its own sleep only: a late timer must not end a
 * later sleep; timer.c keeps t from moving on meanwhile). */
bool sy__wake_sleeper(struct task *t, uint64_t seq, int err)
{
    SY_ASSERT(seq != ANY_SLEEP || sy__lock_held(&rt.tree_lock), t,
              "a sleeper woken by pid without tree_lock");
    const void *chan = __atomic_load_n(&t->chan, __ATOMIC_SEQ_CST);
    if (!chan)
        return false;
    if (chan == WAIT_RECORDS) {
        /* a wait on records (wait.h): claim its token, as a record would */
        uint32_t tok = __atomic_load_n(&t->wait_token, __ATOMIC_ACQUIRE);
        if (!(tok & 1u) || (seq != ANY_SLEEP && tok != TOKEN_WAITING(seq)))
            return false;
        /* atomic for a shared wait: a plain thread may claim it too */
        if (READ_ONCE(t->wait_shared)
                ? !__atomic_compare_exchange_n(&t->wait_token, &tok, tok & ~1u, false,
                                               __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)
                : !rt_cas32(&t->wait_token, tok, tok & ~1u))
            return false;
        t->wake_err = err;
        t->wait_fired = NULL;
        sy__wait_wake(t);
        return true;
    }
    struct waitq_bucket *b = bucket_of(chan);
    bool woke = false;
    rt_lock(&b->lock);
    if (READ_ONCE(t->state) == SY_SLEEPING && t->chan == chan &&
        (seq == ANY_SLEEP || t->sleep_seq == seq)) {
        wake_locked(b, t, err);
        woke = true;
    }
    rt_unlock(&b->lock);
    if (woke)
        sy__enqueue(t);
    return woke;
}

int sy_sleep(const void *chan, sy_spinlock *lk)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (!chan)
        return -EINVAL;
    return sy__sleep(c, chan, lk, 0);
}

int sy_wakeup(const void *chan)
{
    if (!this_cpu())
        return -EPERM;
    if (!chan)
        return -EINVAL;
    int n = sy__wakeup(chan, -1);
    resched_point(this_cpu());
    return n;
}

int sy_wakeup_one(const void *chan)
{
    if (!this_cpu())
        return -EPERM;
    if (!chan)
        return -EINVAL;
    int n = sy__wakeup(chan, 1);
    resched_point(this_cpu());
    return n;
}
