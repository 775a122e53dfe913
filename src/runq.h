/*
 * runq.h - run queues and inboxes (the hot, inline part; runq.c has the rest).
 *
 * A CPU's run queue is a FIFO private to that CPU: only its own host thread
 * pushes and pops, with plain loads and stores.  Other CPUs hand it tasks
 * through its inbox, a lock-free LIFO list (push: compare-and-swap; the
 * owner takes the whole list with one exchange and appends it to its run
 * queue in the order it was pushed), and tell it so through `events`.
 */
#ifndef SY_RUNQ_H
#define SY_RUNQ_H

#include "internal.h"

/* len is also read, racily, by idle CPUs looking for work: it is written
 * with relaxed atomic stores (plain stores on x86-64 and AArch64). */
static inline void runq_push(struct runq *q, struct task *t)
{
    t->rq_next = NULL;
    if (q->tail)
        q->tail->rq_next = t;
    else
        q->head = t;
    q->tail = t;
    __atomic_store_n(&q->len, q->len + 1, __ATOMIC_RELAXED);
}

static inline struct task *runq_pop(struct runq *q)
{
    struct task *t = q->head;
    if (t) {
        q->head = t->rq_next;
        if (!q->head)
            q->tail = NULL;
        __atomic_store_n(&q->len, q->len - 1, __ATOMIC_RELAXED);
    }
    return t;
}

/* Events another CPU (or this CPU's signal handler) posts to a CPU; the CPU
 * handles them at its next schedule point (yield, sleep, exit, idle). */
#define EV_INBOX 0x1u /* tasks in the inbox */
#define EV_STEAL 0x2u /* an idle CPU asks for work (cpu->steal_req) */
#define EV_TIMER 0x4u /* a timer is due */
#define EV_STOP 0x8u  /* no task is left: leave the idle loop */
#define EV_IO 0x10u   /* poll the fds tasks wait on (io.c) */
#define EV_FILE 0x20u /* file jobs done by the workers (fileio.c) */

/* runq.c */
HIDDEN void sy__cpu_events(struct cpu *c, unsigned mask);
#define EV_LOCKFREE (EV_INBOX | EV_STEAL) /* safe with a runtime lock held */
#define EV_ALL (EV_INBOX | EV_STEAL | EV_TIMER | EV_IO | EV_FILE)
HIDDEN void sy__post(struct cpu *c, unsigned ev);
HIDDEN void sy__kick(struct cpu *c);
HIDDEN void sy__stop_all(void);
HIDDEN void sy__inbox_push(struct cpu *target, struct task *t);
HIDDEN void sy__forward(struct cpu *c);
HIDDEN struct cpu *sy__choose_cpu(struct cpu *self, struct task *t);
HIDDEN void sy__offer_work(struct cpu *self);
enum { STEAL_NONE, STEAL_ASKED, STEAL_BUSY };
HIDDEN int sy__steal(struct cpu *c);

/* cpu->parked: how a CPU sleeps on its futex */
#define PARKED_TIMED 1 /* until a deadline: timers, or a retry for work */
#define PARKED_IDLE 2  /* until kicked: it saw no work anywhere */

/* Tasks wait here and some CPU is parked without looking for work? */
static inline bool offer_work_needed(const struct cpu *c)
{
    return c->rq.len && __atomic_load_n(&rt.nparked, __ATOMIC_RELAXED);
}

/* Pending events?  One load on every schedule point. */
static inline bool cpu_has_events(struct cpu *c)
{
    return __atomic_load_n(&c->events, __ATOMIC_RELAXED) != 0;
}

/*
 * A preempted task does not go straight to the tail of the queue: it waits
 * off the queue (cpu->preempted) until the turn of the task that ran after
 * it ends, and rejoins the tail then, behind whatever that task made
 * runnable.  The order stays round-robin; what changes is that a task woken
 * by a timer (a server's request generator, say) that spawns or wakes a
 * worker gets that worker served before the compute-bound task it
 * preempted, instead of a whole quantum later (b_preempt latency).  The
 * tick puts it there (sched.c: involuntary).
 */
static inline void rejoin_preempted(struct cpu *c)
{
    struct task *p = READ_ONCE(c->preempted); /* (the hand-off monitor reads it) */
    if (unlikely(p != NULL)) {
        WRITE_ONCE(c->preempted, NULL);
        runq_push(&c->rq, p);
    }
}

/*
 * The step before a switch, the same at every schedule point (yield,
 * sleep, exit, preemption, the idle loop): handle what other CPUs and the
 * timers posted (`events`: EV_ALL; EV_LOCKFREE when the caller holds a
 * runtime lock; 0 when it has just handled them), let the preempted task
 * rejoin the queue (`rejoin`; so the CPU never goes idle with one waiting),
 * and hand work to a parked CPU if tasks wait here.  The caller then pops
 * the next task (pick_next); spawn, which does not switch, stops here.
 */
static inline void before_switch(struct cpu *c, unsigned events, bool rejoin)
{
    if (events && unlikely(cpu_has_events(c)))
        sy__cpu_events(c, events);
    if (rejoin)
        rejoin_preempted(c);
    if (unlikely(offer_work_needed(c)))
        sy__offer_work(c);
}

/* Prefetching for the tasks that run next, two deep: the top KiB of the
 * stack of the task after the one being picked (the frames it returns
 * through when it resumes: its wait's, its I/O call's), found in its struct
 * task, which the pick before fetched; and the three lines of struct task a
 * switch touches, for the task after that.  With thousands of tasks (a
 * server's connections) each of these lines is a miss the switch, and the
 * returns after it, would wait for, and a stack's address is known only
 * once its task's line is in (b_io PingPong4K/c1000, side by side: 5 % less
 * CPU per request than with the struct and two stack lines one deep; b_core
 * yield unchanged).
 * (always_inline: left out of line, GCC 12 took it for a function without
 * effects, the prefetches being none to it, and deleted its calls.) */
static inline __attribute__((always_inline)) void prefetch_next(const struct task *t)
{
    if (!t)
        return;
    for (uintptr_t l = 0; l < 16; l++)
        __builtin_prefetch((const void *)(uintptr_t)(t->ctx.sp + 64 * l));
    const struct task *u = t->rq_next;
    if (!u)
        return;
    __builtin_prefetch(u);
    __builtin_prefetch((const char *)u + 64);
    __builtin_prefetch((const char *)u + 128);
}

static inline struct task *pick_next(struct cpu *c, unsigned events)
{
    before_switch(c, events, true);
    struct task *t = runq_pop(&c->rq);
    prefetch_next(c->rq.head);
    return t;
}

#endif
