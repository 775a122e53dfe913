/*
 * spinlock.c - spinlocks: the wait of the runtime's own locks, the public
 * sy_spinlock calls, and, in the debug builds, a small lockdep and the
 * panic that reports what the debug checks find.
 *
 * The runtime's locks and their order (take left before right, never the
 * reverse; each is a class below):
 *
 *     rt.tree_lock -> a sy_cond's lock -> an object lock -> a wait-queue
 *         bucket lock -> a task's wait_lock -> rt.timer_lock -> the stack
 *         pool lock
 *
 *   - Object locks are the locks inside sy_mutex, sy_chan, ... (wait.h);
 *     a sy_cond's ranks above them (sy_cond_wait unlocks its mutex under
 *     it).  sy_select takes several channels' locks in address order, and
 *     only the first is tracked here.
 *   - A task's wait_lock is held from the start of its wait on records to
 *     its switch, and across the switch (wait.h).
 *
 *   - A condition lock the user passes to sy_sleep (a sy_spinlock) ranks
 *     with tree_lock: sy_sleep takes the bucket lock under it.  It is the
 *     task's, not the CPU's, and is not tracked below.
 *   - The preemptible-code map's lock (preempt.c: declared_lock) is a leaf
 *     taken alone, also before the runtime runs.
 *   - Two locks of one class are never held at once (two buckets, say),
 *     but for sy_select's channels.
 *   - Locks held across a switch: a sleeper's bucket lock or wait_lock,
 *     released by the next task on the same CPU (sched.c:
 *     finish_task_switch).
 *
 * lockdep: a runtime lock is held by a CPU, not a task: runtime code never
 * switches while it holds one, except for the lock handed to the next task
 * on the same CPU.  So in the debug builds (SY_DEBUG) each CPU keeps the
 * list of runtime locks it holds; taking one whose class is not above
 * every held one panics (a lock-order inversion, found on the first run
 * that takes the two locks, not only on the run that deadlocks), as does
 * releasing one it does not hold; assert_held() is Linux's
 * lockdep_assert_held().  With one CPU the locks are elided (internal.h:
 * rt_lock) but still tracked, so the order is checked there too.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

/* Wait until lk looks free: spin a little, then yield the host CPU each
 * round, in case the holder's host thread is preempted on our core. */
void sy__spin_wait(sy_spinlock *lk)
{
    for (unsigned n = 0; __atomic_load_n(&lk->locked, __ATOMIC_RELAXED); n++) {
        if (n < 128)
            cpu_relax();
        else
            sched_yield();
    }
}

/* A task holding a spinlock is not preempted: another task spinning for
 * it on the same CPU would wait for a holder that cannot run. */
void sy_spin_lock(sy_spinlock *lk)
{
    struct cpu *c = this_cpu();
    if (c)
        c->curr->preempt_count++;
    spin_lock(lk);
}

void sy_spin_unlock(sy_spinlock *lk)
{
    spin_unlock(lk);
    struct cpu *c = this_cpu();
    if (c) {
        c->curr->preempt_count--;
        resched_point(c);
    }
}

/* ------------------------------------------------------------- lockdep */

#if defined(SY_DEBUG)
/* xv6's panic, for the checks of the debug builds (internal.h: SY_ASSERT). */
void sy__panic(const char *what, struct task *t)
{
    char buf[160];
    int n = t ? snprintf(buf, sizeof buf, "switchyard: BUG: %s (pid %d, %s)\n", what, t->pid, t->name)
              : snprintf(buf, sizeof buf, "switchyard: BUG: %s\n", what);
    ssize_t r = write(2, buf, (size_t)n);
    (void)r;
    abort();
}

static enum lock_class lock_class(const sy_spinlock *lk)
{
    if (lk == &rt.tree_lock)
        return LOCK_TREE;
    if (lk == &rt.timer_lock)
        return LOCK_TIMER;
    const char *p = (const char *)lk;
    if (p >= (const char *)rt.waitq && p < (const char *)(rt.waitq + WAITQ_BUCKETS))
        return LOCK_BUCKET;
    return LOCK_POOL; /* stack.c's pool.lock, the only other runtime lock */
}

static const char *const class_name[] = {
    [LOCK_TREE] = "tree_lock",     [LOCK_COND] = "a sy_cond's lock",
    [LOCK_OBJ] = "an object lock", [LOCK_BUCKET] = "a bucket lock",
    [LOCK_WAIT] = "a wait_lock",   [LOCK_TIMER] = "timer_lock",
    [LOCK_POOL] = "the stack pool lock"};

static void lockdep_panic(struct cpu *c, const char *what, int cls)
{
    char buf[240];
    int n = snprintf(buf, sizeof buf, "%s %s on cpu %d, holding", what, class_name[cls], c->id);
    for (int i = 0; i < c->nheld && n < (int)sizeof buf - 24; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, " %s", class_name[c->held_cls[i]]);
    if (!c->nheld)
        snprintf(buf + n, sizeof buf - (size_t)n, " none");
    sy__panic(buf, c->curr);
}

void sy__lockdep_acquire_as(const sy_spinlock *lk, int k)
{
    struct cpu *c = this_cpu();
    if (!c)
        return; /* booting or shutting down: one thread */
    for (int i = 0; i < c->nheld; i++)
        if (c->held_cls[i] >= k)
            lockdep_panic(c, "lock order: took", k);
    if (c->nheld == LOCKDEP_DEPTH)
        lockdep_panic(c, "too many locks: took", k);
    c->held_cls[c->nheld] = (unsigned char)k;
    c->held[c->nheld++] = lk;
}

void sy__lockdep_acquire(const sy_spinlock *lk)
{
    sy__lockdep_acquire_as(lk, lock_class(lk));
}

void sy__lockdep_release(const sy_spinlock *lk)
{
    struct cpu *c = this_cpu();
    if (!c)
        return;
    for (int i = 0; i < c->nheld; i++)
        if (c->held[i] == lk) {
            c->nheld--;
            c->held[i] = c->held[c->nheld];
            c->held_cls[i] = c->held_cls[c->nheld];
            return;
        }
    lockdep_panic(c, "released", lock_class(lk));
}

bool sy__lock_held(const sy_spinlock *lk)
{
    struct cpu *c = this_cpu();
    if (!c)
        return true; /* not tracked outside the CPUs */
    for (int i = 0; i < c->nheld; i++)
        if (c->held[i] == lk)
            return true;
    return false;
}

bool sy__locks_only(const sy_spinlock *lk)
{
    struct cpu *c = this_cpu();
    return !c || c->nheld == 0 || (c->nheld == 1 && c->held[0] == lk);
}
#endif
