/*
 * timer.c - the clock and deadlines: sy__now_ns, sy_nanosleep and
 * sy_sleep_timeout.
 *
 * A task that sleeps with a deadline is put in a min-heap ordered by
 * deadline (rt.theap, under rt.timer_lock), while it holds the bucket lock
 * of its channel (sleep.c: sy__sleep), so the timer cannot fire before the
 * task is on the wait queue.  Lock order: bucket -> timer_lock.
 *
 * Timers fire in sy__run_timers, on an idle CPU parked until the earliest
 * deadline (cpu.c) or on a busy CPU whose tick found one due (preempt.c).
 * It pops the due tasks under timer_lock, marking each `tm_firing`, and
 * wakes them after dropping it (so no bucket lock is taken under
 * timer_lock).  A task woken otherwise in the meantime (sy_wakeup, sy_kill)
 * finds its timer gone when it cancels it, and waits there until the firing
 * is done with it: so the firing never touches a task that has moved on,
 * exited or been freed.  The firing's wake is for one particular sleep
 * (sleep_seq must match) and is dropped if the task was woken already.
 */
#include <stdlib.h>

#include "internal.h"
#include "runq.h"

/* The runtime's clock: CLOCK_MONOTONIC in ns (through the vDSO: about 20 ns). */
uint64_t sy__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define HEAP_PARENT(i) (((i)-1) / 2)

static void heap_set(uint32_t i, struct task *t)
{
    rt.theap[i] = t;
    t->tm_index = (int32_t)i;
}

static void sift_up(uint32_t i)
{
    struct task *t = rt.theap[i];
    while (i > 0 && rt.theap[HEAP_PARENT(i)]->tm_deadline > t->tm_deadline) {
        heap_set(i, rt.theap[HEAP_PARENT(i)]);
        i = HEAP_PARENT(i);
    }
    heap_set(i, t);
}

static void sift_down(uint32_t i)
{
    struct task *t = rt.theap[i];
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        uint64_t md = t->tm_deadline;
        if (l < rt.ntimers && rt.theap[l]->tm_deadline < md)
            m = l, md = rt.theap[l]->tm_deadline;
        if (r < rt.ntimers && rt.theap[r]->tm_deadline < md)
            m = r;
        if (m == i)
            break;
        heap_set(i, rt.theap[m]);
        i = m;
    }
    heap_set(i, t);
}

static void heap_remove(struct task *t)
{
    uint32_t i = (uint32_t)t->tm_index;
    struct task *last = rt.theap[--rt.ntimers];
    t->tm_index = -1;
    if (i == rt.ntimers)
        return;
    heap_set(i, last);
    if (i > 0 && rt.theap[HEAP_PARENT(i)]->tm_deadline > last->tm_deadline)
        sift_up(i);
    else
        sift_down(i);
}

static void publish_next(void)
{
    __atomic_store_n(&rt.timer_next, rt.ntimers ? rt.theap[0]->tm_deadline : UINT64_MAX,
                     __ATOMIC_SEQ_CST);
}

/* Arm t's timer for its current sleep.  Bucket lock of its channel held.
 * Returns 0 or -ENOMEM. */
int sy__timer_add(struct task *t, uint64_t deadline)
{
    SY_ASSERT(READ_ONCE(t->state) == SY_SLEEPING && t == this_cpu()->curr, t,
              "a timer for a task that is not falling asleep");
    rt_lock(&rt.timer_lock);
    if (rt.ntimers == rt.captimers) {
        uint32_t cap = rt.captimers ? rt.captimers * 2 : 64;
        struct task **h = realloc(rt.theap, cap * sizeof *h);
        if (!h) {
            rt_unlock(&rt.timer_lock);
            return -ENOMEM;
        }
        rt.theap = h;
        rt.captimers = cap;
    }
    t->tm_deadline = deadline;
    t->tm_seq = t->sleep_seq;
    heap_set(rt.ntimers++, t);
    sift_up(rt.ntimers - 1);
    bool earliest = rt.theap[0] == t;
    publish_next();
    rt_unlock(&rt.timer_lock);

    if (earliest && rt.ncpu > 1) {
        /* the CPU parked until the old earliest deadline must re-arm; with
         * no such CPU, wake an idle one to take the timers over */
        struct cpu *owner = __atomic_load_n(&rt.timer_owner, __ATOMIC_SEQ_CST);
        if (owner) {
            sy__post(owner, EV_TIMER);
        } else if (__atomic_load_n(&rt.nidle, __ATOMIC_RELAXED) > 0) {
            for (int i = 0; i < rt.ncpu; i++)
                if (__atomic_load_n(&cpu_slot(i)->idling, __ATOMIC_RELAXED)) {
                    sy__post(cpu_slot(i), EV_TIMER);
                    break;
                }
        }
    }
    return 0;
}

/* t was woken before its deadline: take its timer out, or, if it is firing
 * right now, wait until the firing is done with t. */
void sy__timer_cancel(struct task *t)
{
    rt_lock(&rt.timer_lock);
    if (t->tm_index >= 0) {
        heap_remove(t);
        publish_next();
    }
    rt_unlock(&rt.timer_lock);
    while (__atomic_load_n(&t->tm_firing, __ATOMIC_ACQUIRE))
        cpu_relax();
}

void sy__run_timers(void)
{
    for (;;) {
        struct task *due[64];
        int n = 0;
        uint64_t now = sy__now_ns();
        rt_lock(&rt.timer_lock);
        while (n < 64 && rt.ntimers && rt.theap[0]->tm_deadline <= now) {
            struct task *t = rt.theap[0];
            heap_remove(t);
            __atomic_store_n(&t->tm_firing, 1, __ATOMIC_RELAXED);
            due[n++] = t;
        }
        publish_next();
        rt_unlock(&rt.timer_lock);
        for (int i = 0; i < n; i++) {
            sy__wake_sleeper(due[i], due[i]->tm_seq, -ETIMEDOUT);
            __atomic_store_n(&due[i]->tm_firing, 0, __ATOMIC_RELEASE);
        }
        if (n < 64)
            return;
    }
}

void sy__timers_fini(void)
{
    free(rt.theap);
    rt.theap = NULL;
    rt.ntimers = rt.captimers = 0;
}

/* ------------------------------------------------------------ public */

int sy_nanosleep(uint64_t ns)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (ns == 0)
        return sy_yield();
    struct task *self = c->curr;
    uint64_t now = sy__now_ns();
    /* saturate, as sy_sleep_timeout does: now + UINT64_MAX wrapped into the
     * past and the "endless" sleep returned at once */
    uint64_t deadline = ns > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + ns;
    /* a channel nobody else sleeps on: the task's own timer field */
    int r = sy__sleep(c, &self->tm_deadline, NULL, deadline);
    return r == -ETIMEDOUT ? 0 : r;
}

int sy_sleep_timeout(const void *chan, sy_spinlock *lk, uint64_t ns)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (!chan)
        return -EINVAL;
    uint64_t now = sy__now_ns();
    /* UINT64_MAX is "no timer" (rt.timer_next): the latest deadline is one less */
    uint64_t deadline = ns > UINT64_MAX - 1 - now ? UINT64_MAX - 1 : now + ns;
    return sy__sleep(c, chan, lk, deadline);
}

int64_t sy_now(void)
{
    return (int64_t)sy__now_ns();
}

int sy_sleep_until(const void *chan, sy_spinlock *lk, int64_t deadline)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    if (!chan)
        return -EINVAL;
    if (deadline == SY_FOREVER)
        return sy__sleep(c, chan, lk, 0);
    if (deadline < 0)
        return -EINVAL;
    if ((uint64_t)deadline <= sy__now_ns()) /* lk still held, as after any sleep */
        return __atomic_load_n(&c->curr->killed, __ATOMIC_RELAXED) ? -EINTR : -ETIMEDOUT;
    return sy__sleep(c, chan, lk, (uint64_t)deadline);
}
