/*
 * sched.c - the scheduler: context_switch(), yield, sleep and wakeup.
 *
 * The model
 * ---------
 * A CPU is a host thread.  It runs one task at a time, `cpu->curr`.  A task
 * gives up the CPU only by calling into the runtime (yield, sleep, wait,
 * exit); every such path ends in context_switch(), the ONE place where a
 * switch happens.  It has Linux's three steps:
 *
 *   prepare    accounting, states, errno of the leaving task;
 *   switch     sy__arch_switch(&prev->ctx, &next->ctx, prev), which returns
 *              `last` in the task that resumes;
 *   finish     finish_task_switch(last), run on the NEW task's stack: it
 *              restores the new task's errno, releases the lock the leaving
 *              task held across the switch, and releases the stack of a
 *              leaving task that exited (a task never frees its own stack:
 *              it is standing on it).
 *
 * Switches are direct, task to task, one per yield: there is no scheduler
 * context in between as in xv6 (whose scheduler() runs on a per-CPU stack
 * and costs two switches per yield).  Each CPU has an idle task instead,
 * running on the host thread's own stack; a CPU switches to it only when
 * its run queue is empty.  The idle task of CPU 0 is the thread that called
 * sy_run, and its idle loop returns from sy_run when no task is left.
 *
 * Run queues are FIFO (round robin) and private to their CPU: only the
 * owning CPU pushes and pops, so yield takes no lock and no atomic
 * instruction.  This is why the lock that crosses a switch is not a
 * run-queue lock here, as it is in Linux and xv6: the leaving task instead
 * holds the lock that protects its own state transition -
 *
 *   sleep:  the bucket lock of its wait channel (a waker cannot see it on the
 *           queue, and so cannot make it RUNNABLE, before its context is
 *           saved);
 *   exit:   rt.tree_lock (its parent cannot reap it before its stack is
 *           released) -
 *
 * and the task switched to releases that lock in finish_task_switch.
 *
 * Sleep and wakeup keep xv6's contract: sleep(chan, lk) is entered with the
 * condition lock `lk` held, takes the channel's bucket lock, and only then
 * drops `lk`; a waker changes the condition under `lk` and then takes the
 * bucket lock to find sleepers.  So a wakeup cannot fall between the
 * sleeper's test of the condition and its sleep.  Channels hash into
 * WAITQ_BUCKETS buckets, like futexes; a bucket's queue is FIFO, so
 * sy_wakeup_one wakes the task that slept first.
 *
 * errno belongs to the task: context_switch saves the host thread's errno
 * into the leaving task and finish restores the arriving task's.
 *
 * Accounting: by default, CPU time is sampled on a per-CPU tick (stats.c:
 * a timer on the host thread's CPU-time clock charges one tick to
 * `cpu->curr`), and time spent RUNNABLE is measured against a coarse clock
 * that the tick updates; the switch path then reads no clock at all.  With
 * SY_ACCT_PRECISE the switch reads CLOCK_MONOTONIC (about 30 ns here) and
 * charges exact intervals.
 */
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "san.h"

__thread struct cpu *sy__cpu_tls __attribute__((tls_model("initial-exec")));

/* -------------------------------------------------------------- run queue */

static inline void runq_push(struct runq *q, struct task *t)
{
    t->rq_next = NULL;
    if (q->tail)
        q->tail->rq_next = t;
    else
        q->head = t;
    q->tail = t;
    q->len++;
}

static inline struct task *runq_pop(struct runq *q)
{
    struct task *t = q->head;
    if (t) {
        q->head = t->rq_next;
        if (!q->head)
            q->tail = NULL;
        q->len--;
    }
    return t;
}

/* The clock that stamps RUNNABLE periods. */
static inline uint64_t acct_now(void)
{
    if (rt.flags & SY_ACCT_PRECISE)
        return sy__now_ns();
    return __atomic_load_n(&rt.coarse_ns, __ATOMIC_RELAXED);
}

/* Put a RUNNABLE task on a run queue.  One CPU for now: the caller's.  The
 * caller owns the transition to RUNNABLE (see struct task). */
void sy__make_runnable(struct task *t)
{
    struct cpu *c = this_cpu();
    t->state = SY_RUNNABLE;
    t->enq_ns = acct_now();
    t->cpu = c;
    runq_push(&c->rq, t);
}

/* ---------------------------------------------------------------- switch */

/*
 * finish_task_switch - the second half of a switch, run by the task that was
 * switched TO, on its own stack, for `last`, the task that ran before it on
 * this CPU.  `c` must be re-read after the switch by the caller: the
 * resumed task may be on a different CPU than the one it left from.
 */
static void finish_slow(struct cpu *c, struct task *last)
{
    unsigned work = c->finish;
    c->finish = 0;
    if (work & FINISH_DEAD) {
        /* last exited: its stack is ours to release (it is off it now).
         * tree_lock is still held (FINISH_UNLOCK), so its parent cannot
         * reap it before this is done. */
        sy__stack_free(last->stack_lo, last->stack_size);
        last->stack_lo = NULL;
        if (!last->parent) /* nobody will wait for it */
            sy__task_free(last);
    }
    if (work & FINISH_UNLOCK) {
        sy_spinlock *lk = c->finish_lock;
        c->finish_lock = NULL;
        rt_unlock(lk);
    }
}

static inline void finish_task_switch(struct cpu *c, struct task *self, struct task *last)
{
    *c->errno_ptr = self->saved_errno;
    if (unlikely(c->finish))
        finish_slow(c, last);
}

/*
 * stack_handoff - prev exited and next never ran: next starts on prev's stack
 * instead of its own, and prev takes next's still untouched stack, which
 * finish_task_switch releases.  prev's stack is hot in the cache and its
 * pages are resident, so a chain of short-lived tasks runs on one warm
 * stack instead of faulting in a fresh one each.  Safe because once the
 * switch has loaded next's stack pointer it touches no stack memory, and
 * prev, a ZOMBIE, never resumes.  (Not under ASan, whose fiber bookkeeping
 * would see one stack in two tasks.)
 */
static inline void stack_handoff(struct task *prev, struct task *next)
{
#if !defined(SY_ASAN)
    if (arch_ctx_fresh(&next->ctx) && next->stack_size == prev->stack_size && prev->stack_lo) {
        char *lo = next->stack_lo;
        next->stack_lo = prev->stack_lo;
        prev->stack_lo = lo;
        arch_ctx_set_stack(&next->ctx, next->stack_lo + next->stack_size);
    }
#else
    (void)prev, (void)next;
#endif
}

/*
 * context_switch - switch this CPU from prev to next.
 * On entry: prev == c->curr, prev's new state is set (RUNNABLE and on a run
 * queue, SLEEPING and on a wait queue, or ZOMBIE); next is RUNNABLE and off
 * every queue, or is this CPU's idle task.  c->finish says what the arriving
 * task must release.  Returns, on prev's stack, when prev next runs.
 */
static void context_switch(struct cpu *c, struct task *prev, struct task *next)
{
    /* prepare */
    uint64_t now;
    if (rt.flags & SY_ACCT_PRECISE) {
        now = sy__now_ns();
        prev->cpu_ns += now - c->switch_ns;
        c->switch_ns = now;
    } else {
        now = __atomic_load_n(&rt.coarse_ns, __ATOMIC_RELAXED);
    }
    next->wait_ns += now - next->enq_ns;
    if (prev->state == SY_RUNNABLE) /* yield: it waits from now on */
        prev->enq_ns = now;
    else if (prev->state == SY_ZOMBIE)
        stack_handoff(prev, next);
    next->state = SY_RUNNING;
    next->cpu = c;
    c->curr = next;
    c->nswitch++;
    prev->saved_errno = *c->errno_ptr;
    san_switch_begin(prev, next, prev->state == SY_ZOMBIE);

    /* switch */
    struct task *last = sy__arch_switch(&prev->ctx, &next->ctx, prev);

    /* finish: we are prev again, maybe on another CPU; re-read it */
    san_switch_end(prev, last);
    finish_task_switch(this_cpu(), prev, last);
}

/* First code a new task runs (called from sy__arch_task_entry). */
void sy__task_start(struct task *last)
{
    struct cpu *c = this_cpu();
    struct task *self = c->curr;
    san_task_first(self, last);
    finish_task_switch(c, self, last);
    sy__task_exit(this_cpu(), self->fn(self->arg));
}

/* The idle task of this CPU, as a RUNNABLE-less stand-in for `next`. */
static inline struct task *idle_task(struct cpu *c)
{
    c->idle.enq_ns = acct_now(); /* keeps its wait_ns meaningless but bounded */
    return &c->idle;
}

/*
 * schedule - give up the CPU after the caller has changed prev's state away
 * from RUNNING (SLEEPING or ZOMBIE).  Runs the next RUNNABLE task, or the
 * idle task.  Returns when prev runs again (never for a ZOMBIE).
 */
void sy__schedule(struct cpu *c, struct task *prev)
{
    struct task *next = runq_pop(&c->rq);
    if (!next)
        next = idle_task(c);
    prev->nvcsw++;
    context_switch(c, prev, next);
}

/* --------------------------------------------------------- public: yield */

int sy_yield(void)
{
    struct cpu *c = this_cpu();
    if (unlikely(!c))
        return -EPERM;
    struct task *prev = c->curr;
    if (unlikely(__atomic_load_n(&prev->killed, __ATOMIC_RELAXED)))
        sy__task_exit(c, SY_EXIT_KILLED);
    struct task *next = runq_pop(&c->rq);
    if (!next)
        return 0; /* nothing else to run: keep the CPU */
    prev->state = SY_RUNNABLE;
    runq_push(&c->rq, prev);
    prev->nvcsw++;
    context_switch(c, prev, next);
    return 0;
}

/* ------------------------------------------------------ sleep and wakeup */

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
 * user's lock (sy_sleep), which is always real. */
static inline void lock_release(sy_spinlock *lk)
{
    if (lk == &rt.tree_lock)
        rt_unlock(lk);
    else if (lk)
        spin_unlock(lk);
}

static inline void lock_acquire(sy_spinlock *lk)
{
    if (lk == &rt.tree_lock)
        rt_lock(lk);
    else if (lk)
        spin_lock(lk);
}

/*
 * sleep - xv6's sleep(chan, lk).  The caller holds lk (or passes NULL).
 * Returns 0 when woken by a wakeup, -EINTR when killed; lk is held again on
 * return either way.  `lk` may be rt.tree_lock (sy_wait sleeps that way).
 */
int sy__sleep(struct cpu *c, const void *chan, sy_spinlock *lk)
{
    struct task *p = c->curr;
    struct waitq_bucket *b = bucket_of(chan);

    /* Take the bucket lock before dropping lk: a waker must take it too, so
     * it cannot run between our test of the condition and our sleep.  And be
     * on the queue, SLEEPING, before lk is dropped: whoever holds lk may
     * look at our state (sy__task_exit does, under tree_lock). */
    rt_lock(&b->lock);
    p->wake_err = 0;
    p->state = SY_SLEEPING;
    waitq_append(b, p);
    __atomic_store_n(&p->chan, chan, __ATOMIC_RELAXED);

    /* Against sy_kill, which stores `killed` and then reads `chan` without
     * our bucket lock: with a full fence on both sides, either it sees our
     * chan (and wakes us once it gets the bucket lock) or we see `killed`. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&p->killed, __ATOMIC_RELAXED)) {
        waitq_remove(b, p);
        __atomic_store_n(&p->chan, NULL, __ATOMIC_RELAXED);
        p->state = SY_RUNNING;
        rt_unlock(&b->lock);
        return -EINTR; /* lk still held */
    }
    lock_release(lk);

    /* The bucket lock stays held across the switch; the next task releases
     * it in finish_task_switch, once our context is saved. */
    c->finish |= FINISH_UNLOCK;
    c->finish_lock = &b->lock;
    sy__schedule(c, p);

    /* Woken: the waker took us off the queue and made us RUNNABLE. */
    int err = p->wake_err;
    lock_acquire(lk);
    return err;
}

/* Take t off its wait queue and make it RUNNABLE with `err` as the result of
 * its sleep.  Bucket lock of t->chan held. */
static void wake_locked(struct waitq_bucket *b, struct task *t, int err)
{
    waitq_remove(b, t);
    __atomic_store_n(&t->chan, NULL, __ATOMIC_RELAXED);
    t->wake_err = err;
    sy__make_runnable(t);
}

/* Wake up to `max` tasks asleep on chan (max < 0: all); returns how many. */
int sy__wakeup(const void *chan, int max)
{
    struct waitq_bucket *b = bucket_of(chan);
    int n = 0;
    rt_lock(&b->lock);
    for (struct task *t = b->head, *next; t && n != max; t = next) {
        next = t->wq_next;
        if (t->chan == chan) {
            wake_locked(b, t, 0);
            n++;
        }
    }
    rt_unlock(&b->lock);
    return n;
}

/* Wake t if it is asleep (sy_kill, after setting t->killed and a full
 * fence: see sy__sleep); returns whether it was. */
bool sy__wake_task(struct task *t, int err)
{
    const void *chan = __atomic_load_n(&t->chan, __ATOMIC_RELAXED);
    if (!chan)
        return false;
    struct waitq_bucket *b = bucket_of(chan);
    bool woke = false;
    rt_lock(&b->lock);
    if (t->state == SY_SLEEPING && t->chan == chan) {
        wake_locked(b, t, err);
        woke = true;
    }
    rt_unlock(&b->lock);
    return woke;
}

int sy_sleep(const void *chan, sy_spinlock *lk)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (!chan)
        return -EINVAL;
    return sy__sleep(c, chan, lk);
}

int sy_wakeup(const void *chan)
{
    if (!this_cpu())
        return -EPERM;
    if (!chan)
        return -EINVAL;
    return sy__wakeup(chan, -1);
}

int sy_wakeup_one(const void *chan)
{
    if (!this_cpu())
        return -EPERM;
    if (!chan)
        return -EINVAL;
    return sy__wakeup(chan, 1);
}

void sy_spin_lock(sy_spinlock *lk)
{
    spin_lock(lk);
}

void sy_spin_unlock(sy_spinlock *lk)
{
    spin_unlock(lk);
}

/* -------------------------------------------------------------- the idle */

/* Nothing can run and nothing can wake anyone: every live task is asleep on
 * one CPU with no other source of wakeups.  Report, then kill everybody so
 * that sy_run can return (-EDEADLK). */
static void deadlock(void)
{
    static const char msg[] =
        "switchyard: deadlock: every task is asleep and nothing can wake one; "
        "killing all tasks\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    sy_ps_print(2);
    rt_lock(&rt.tree_lock);
    rt.deadlocked = true;
    rt_unlock(&rt.tree_lock);
    sy__kill_all();
}

/*
 * The idle task: runs on the host thread's own stack whenever this CPU's run
 * queue is empty.  On CPU 0 it returns once no task is left.
 */
void sy__idle_loop(struct cpu *c)
{
    struct task *idle = &c->idle;
    for (;;) {
        struct task *next = runq_pop(&c->rq);
        if (next) {
            context_switch(c, idle, next);
            c = this_cpu();
            continue;
        }
        if (__atomic_load_n(&rt.nlive, __ATOMIC_ACQUIRE) == 0)
            return;
        deadlock();
    }
}
