/*
 * wait.c - the task's side of a wait on waiter records (wait.h has the
 * protocol), and the wake that ends one.
 */
#include "internal.h"
#include "runq.h"
#include "wait.h"

const char sy__wait_records[] = "waiter records";

/* Claim p's token `want` (a wait in progress) for its own wait: atomic if
 * another host thread may claim it too. */
static inline bool token_claim(struct task *p, uint32_t want, bool shared)
{
    if (shared)
        return __atomic_compare_exchange_n(&p->wait_token, &want, want & ~1u, false,
                                           __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    return rt_cas32(&p->wait_token, want, want & ~1u);
}

/* Release the object locks of a wait: locks[0] is tracked by lockdep; the
 * others (sy_select's) are not.  A shared object's lock (a host object's:
 * hostsync.c) is always a real lock, as plain threads take it too. */
static void unlock_objects(sy_spinlock *const *locks, int nlocks, bool shared)
{
    for (int i = nlocks - 1; i >= 0; i--) {
        if (i == 0)
            sy__lockdep_release(locks[0]);
        if (rt.smp || shared)
            spin_unlock(locks[i]);
    }
}

/*
 * sy__wait - sleep until a record of the caller's current wait fires, its
 * deadline passes, or it is killed.
 * On entry: the caller holds the object locks `locks` (locks[0] the one
 * lockdep tracks; with sy_select, the others are taken in address order
 * after it and are not tracked), and has queued its records, made with
 * waiter_init since its last wait.  deadline: SY_FOREVER or an absolute
 * sy_now() time in the future.  `killable`: false for a wait that must not
 * end at a kill (sy_cond_wait's relock of its mutex): a kill then only
 * makes it look again, as a spurious wakeup.
 * Returns 0 when a record fired (task->wait_fired says which), else
 * -ETIMEDOUT, -EINTR or -ENOMEM (no memory for its timer).  The object
 * locks are released on return, whatever it returns: the caller takes again
 * those it needs to take its records off their queues (a record that did
 * not fire may still be on one).
 */
int sy__wait(struct cpu *c, sy_spinlock *const *locks, int nlocks, int64_t deadline,
             const void *wchan, int kind, unsigned flags)
{
    struct task *p = c->curr;
    uint32_t seq = p->sleep_seq + 1;
    bool killable = flags & WAIT_KILLABLE, shared = flags & WAIT_SHARED;

    /* A shared wait's waker may be a plain thread: wait_lock is taken for
     * real (the waker must find it held until our context is saved), and
     * the token's compare-and-swaps are atomic, whatever the CPU count. */
    sy__lockdep_acquire_as(&p->wait_lock, LOCK_WAIT);
    if (rt.smp || shared)
        spin_lock(&p->wait_lock);
    p->wait_shared = shared;
    p->sleep_seq = seq;
    p->wake_err = 0;
    p->wait_fired = NULL;
    WRITE_ONCE(p->wchan, wchan);
    WRITE_ONCE(p->wait_kind, kind);
    task_set_state(p, SY_SLEEPING);
    /* The token, then chan, then killed: against sy_kill, which stores
     * `killed`, then reads chan and the token (sleep.c: sy__wake_sleeper):
     * either it sees us waiting and claims the token, or we see `killed`. */
    __atomic_store_n(&p->wait_token, TOKEN_WAITING(seq), __ATOMIC_RELAXED);
    /* (With one CPU, sy_kill runs on this host thread, never between these:
     * plain stores, and no fence, which costs a fifth of a channel's round
     * trip.) */
    if (rt.smp)
        __atomic_store_n(&p->chan, WAIT_RECORDS, __ATOMIC_SEQ_CST);
    else
        __atomic_store_n(&p->chan, WAIT_RECORDS, __ATOMIC_RELAXED);
    int err = 0;
    if (killable && __atomic_load_n(&p->killed, __ATOMIC_SEQ_CST))
        err = -EINTR;
    else if (deadline != SY_FOREVER && sy__timer_add(p, (uint64_t)deadline) != 0)
        err = -ENOMEM;
    if (err && token_claim(p, TOKEN_WAITING(seq), shared)) {
        /* nobody claimed us: do not sleep */
        __atomic_store_n(&p->chan, NULL, __ATOMIC_RELAXED);
        WRITE_ONCE(p->wait_kind, WK_NONE);
        task_set_state(p, SY_RUNNING);
        sy__lockdep_release(&p->wait_lock);
        if (rt.smp || shared)
            spin_unlock(&p->wait_lock);
        unlock_objects(locks, nlocks, shared);
        return err;
    }
    /* (A kill claimed the token between our stores and the check: it waits
     * for wait_lock, and wakes us as soon as we have switched.) */

    unlock_objects(locks, nlocks, shared);

    /* wait_lock stays held across the switch; the next task releases it in
     * finish_task_switch, once our context is saved.  (With one CPU and no
     * shared wait it was not taken: only lockdep, in the debug builds,
     * needs the release, and releasing a free lock changes nothing.) */
#if !defined(SY_DEBUG)
    if (rt.smp || shared)
#endif
    {
        c->finish |= FINISH_UNLOCK;
        c->finish_lock = &p->wait_lock;
    }
    sy__schedule(c, p);

    /* Woken (c is stale: we may be on another CPU). */
    WRITE_ONCE(p->wait_kind, WK_NONE);
    if (deadline != SY_FOREVER)
        sy__timer_cancel(p);
    return p->wake_err;
}

/* Make t, whose token the caller claimed, RUNNABLE and queue it.  Under
 * t's wait_lock, which t holds until its context is saved. */
void sy__wait_wake(struct task *t)
{
    if (unlikely(READ_ONCE(t->wait_shared))) {
        sy__wait_wake_shared(t);
        return;
    }
    obj_lock(&t->wait_lock, LOCK_WAIT);
    SY_ASSERT(READ_ONCE(t->state) == SY_SLEEPING && !(READ_ONCE(t->wait_token) & 1u), t,
              "waking a task that is not asleep in a claimed wait");
    __atomic_store_n(&t->chan, NULL, __ATOMIC_RELAXED);
    task_set_runnable(t);
    rt_unlock(&t->wait_lock);
    sy__enqueue(t);
}

int sy__deadline_check_slow(int64_t deadline)
{
    if (deadline < 0)
        return -EINVAL;
    if ((uint64_t)deadline <= sy__now_ns())
        return -ETIMEDOUT;
    return 0;
}

/* sy__wait_wake for a task in a shared wait (WAIT_SHARED), from any thread:
 * a CPU's, or a plain thread of the program that released a host object
 * (hostsync.c).  wait_lock is a real lock then, held by the sleeper until
 * its context is saved.  A plain thread cannot use a run queue: it hands
 * the task to the inbox of the CPU (slot) it last ran on - the bundle that
 * is that CPU now, after a hand-off - which kicks it if it is parked. */
void sy__wait_wake_shared(struct task *t)
{
    sy__lockdep_acquire_as(&t->wait_lock, LOCK_WAIT);
    spin_lock(&t->wait_lock);
    SY_ASSERT(READ_ONCE(t->state) == SY_SLEEPING && !(READ_ONCE(t->wait_token) & 1u), t,
              "waking a task that is not asleep in a claimed wait");
    __atomic_store_n(&t->chan, NULL, __ATOMIC_RELAXED);
    t->wait_shared = false;
    task_set_runnable(t);
    sy__lockdep_release(&t->wait_lock);
    spin_unlock(&t->wait_lock);
    if (this_cpu())
        sy__enqueue(t);
    else
        sy__inbox_push(cpu_slot(t->cpu ? t->cpu->slot : 0), t);
}
