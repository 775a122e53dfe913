/*
 * wait.c - the task's side of a wait on waiter records (wait.h has the
 * protocol), and the wake that ends one.
 */
#include "internal.h"
#include "runq.h"
#include "wait.h"

const char sy__wait_records[] = "waiter records";

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
             const void *wchan, int kind, bool killable)
{
    struct task *p = c->curr;
    uint32_t seq = p->sleep_seq + 1;

    obj_lock(&p->wait_lock, LOCK_WAIT);
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
    if (err && rt_cas32(&p->wait_token, TOKEN_WAITING(seq), TOKEN_WAITING(seq) & ~1u)) {
        /* nobody claimed us: do not sleep */
        __atomic_store_n(&p->chan, NULL, __ATOMIC_RELAXED);
        WRITE_ONCE(p->wait_kind, WK_NONE);
        task_set_state(p, SY_RUNNING);
        rt_unlock(&p->wait_lock);
        for (int i = nlocks - 1; i >= 0; i--)
            if (i == 0)
                obj_unlock(locks[0]);
            else if (rt.smp)
                spin_unlock(locks[i]);
        return err;
    }
    /* (A kill claimed the token between our stores and the check: it waits
     * for wait_lock, and wakes us as soon as we have switched.) */

    for (int i = nlocks - 1; i >= 0; i--)
        if (i == 0)
            obj_unlock(locks[0]);
        else if (rt.smp)
            spin_unlock(locks[i]);

    /* wait_lock stays held across the switch; the next task releases it in
     * finish_task_switch, once our context is saved.  (With one CPU it was
     * not taken: only lockdep, in the debug builds, needs the release.) */
#if !defined(SY_DEBUG)
    if (rt.smp)
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
