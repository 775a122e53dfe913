/*
 * runq.c - moving RUNNABLE tasks between CPUs: inboxes, where a woken or
 * spawned task goes, and load balancing.
 *
 * Where a task goes (sy__choose_cpu), in order:
 *   1. a pinned task: its CPU;
 *   2. a new task: its spawner's CPU.  Spawning one idle CPU's worth of
 *      work at a time (a cross-CPU handoff for every task) made spawning
 *      and waiting for a million empty tasks on 2 CPUs cost 300 ns a task;
 *      instead the spawner tells an idle CPU there is work, and that CPU
 *      asks for half of the queue at once (below), so spawn still spreads
 *      work, in batches;
 *   3. its last CPU, if that CPU is idle: its cache is warm and nobody
 *      waits there;
 *   4. another idle CPU, if there is one: it runs the task at once;
 *   5. otherwise the waker's own CPU: every CPU is busy, and the task runs
 *      when the waker gives up its CPU, next to the data it just handed
 *      over.  Balancing fixes what this leaves uneven.
 * An idle CPU is claimed by the waker that picks it (its `idling` flag is
 * taken with a compare-and-swap), so two wakers do not pile onto one idle
 * CPU while others stay parked, and each wakeup kicks at most one CPU: no
 * thundering herd.
 *
 * Balancing is work *requesting*, not stealing (Acar, Charguéraud and
 * Rainey, "Scheduling parallel programs by work stealing with private
 * deques", PPoPP 2013): run queues stay private, so yield takes no lock and
 * no atomic instruction.  An idle CPU that finds nothing asks the CPU with
 * the longest queue for work (victim->steal_req, EV_STEAL); the victim
 * answers at its next schedule point by handing half of its queue (pinned
 * tasks excepted) to the thief's inbox.  A request stays until it is
 * answered; meanwhile other thieves ask other CPUs.  A thief that got
 * nothing asks again after a pause that doubles each time (cpu.c).
 *
 * Migration has a price (the task's structure, its stack and its parent's
 * lists move to another core's cache: about a microsecond here), so a CPU
 * whose tasks are too short-lived to pay it back gives none away, as
 * Linux keeps cache-hot tasks home (sched_migration_cost).  Each CPU's tick
 * counts the tasks that exited on it during the tick (preempt.c); more than
 * one per TINY_TASK_NS of the tick means its tasks live shorter than that.
 * Spawning and reaping a million empty tasks on 2 CPUs: 215 ns a task when
 * the idle CPU took half of them, 104 when they stay.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runq.h"

/* Wake CPU c if it is parked (on its futex: cpu.c, park). */
void sy__kick(struct cpu *c)
{
    if (__atomic_exchange_n(&c->parked, 0, __ATOMIC_SEQ_CST)) {
        if (__atomic_load_n(&c->polling, __ATOMIC_SEQ_CST))
            sy__io_kick(c); /* asleep in epoll_wait, or in its ring (io.c) */
        else /* all: a futex wait armed in its ring (uring.c) waits here too */
            syscall(SYS_futex, &c->parked, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    }
}

/* Post events to CPU c; kick it if it is parked.  The seq_cst pair (our
 * fetch_or, then load of `parked`; its store of `parked`, then load of
 * `events`: cpu.c, park) is a Dekker pair: either it sees the event or we
 * see it parked. */
void sy__post(struct cpu *c, unsigned ev)
{
    __atomic_fetch_or(&c->events, ev, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->parked, __ATOMIC_SEQ_CST))
        sy__kick(c);
    /* a detached CPU (handoff.c) runs only its task in a long call: what
     * was posted to it goes to the bundle that has its slot now.  The
     * seq_cst pair with the hand-off (it sets `detached`, then takes the
     * inbox and the finished file jobs): either it takes what we pushed, or
     * we see it detached. */
    if (unlikely(__atomic_load_n(&c->detached, __ATOMIC_SEQ_CST)))
        sy__forward(c);
}

/* What other CPUs handed to c, a detached bundle (its inbox, its finished
 * file jobs), to the active CPUs; c's own thread or any other may call it. */
void sy__forward(struct cpu *c)
{
    struct task *t = __atomic_exchange_n(&c->inbox, NULL, __ATOMIC_SEQ_CST);
    while (t) {
        struct task *next = t->rq_next;
        sy__inbox_push(sy__active_cpu(c, t), t);
        t = next;
    }
    int slot = READ_ONCE(c->slot);
    if (__atomic_load_n(&c->file_done, __ATOMIC_SEQ_CST) && slot >= 0)
        sy__file_forward(c, cpu_slot(slot));
}

/* No task is left: every CPU leaves its idle loop, every spare thread its
 * pool. */
void sy__stop_all(void)
{
    for (int i = 0; i < rt.ncpu; i++)
        sy__post(cpu_slot(i), EV_STOP);
    sy__spares_stop();
}

/* Hand a chain of RUNNABLE tasks (first .. last, linked through rq_next,
 * LIFO: the inbox is drained in reverse) to another CPU, with one CAS. */
static void inbox_push_chain(struct cpu *target, struct task *first, struct task *last)
{
    struct task *head = __atomic_load_n(&target->inbox, __ATOMIC_RELAXED);
    do
        last->rq_next = head;
    while (!__atomic_compare_exchange_n(&target->inbox, &head, first, true, __ATOMIC_SEQ_CST,
                                        __ATOMIC_RELAXED));
    sy__post(target, EV_INBOX);
}

/* Hand a RUNNABLE task to another CPU. */
void sy__inbox_push(struct cpu *target, struct task *t)
{
    inbox_push_chain(target, t, t);
}

/* Move the inbox, in the order it was filled, to the end of the run queue. */
static void inbox_drain(struct cpu *c)
{
    if (unlikely(__atomic_load_n(&c->detached, __ATOMIC_RELAXED))) {
        sy__forward(c); /* handoff.c: its run queue stays empty */
        return;
    }
    struct task *t = __atomic_exchange_n(&c->inbox, NULL, __ATOMIC_ACQUIRE), *fifo = NULL;
    while (t) { /* the inbox is LIFO: reverse it */
        struct task *next = t->rq_next;
        t->rq_next = fifo;
        fifo = t;
        t = next;
    }
    while (fifo) {
        struct task *next = fifo->rq_next;
        runq_push(&c->rq, fifo);
        fifo = next;
    }
}

/* Answer a request for work: half of our queue, pinned tasks excepted, to the
 * thief's inbox. */
static void donate(struct cpu *c)
{
    struct cpu *thief = __atomic_exchange_n(&c->steal_req, NULL, __ATOMIC_ACQ_REL);
    if (!thief || c->tiny_tasks)
        return; /* withdrawn, or not worth moving */
    unsigned long n = (c->rq.len + 1) / 2, kept = 0, given = 0;
    struct runq keep = {0};
    struct task *chain = NULL, *chain_last = NULL;
    while (given < n && c->rq.len) {
        struct task *t = runq_pop(&c->rq);
        if (t->pin >= 0 || t->stay_home) {
            runq_push(&keep, t);
            kept++;
            continue;
        }
        t->rq_next = chain; /* LIFO, as the inbox wants it */
        chain = t;
        if (!chain_last)
            chain_last = t;
        given++;
    }
    if (chain)
        inbox_push_chain(thief, chain, chain_last);
    /* the pinned and preempted ones go back to the front, in order */
    if (keep.head) {
        keep.tail->rq_next = c->rq.head;
        if (!c->rq.head)
            c->rq.tail = keep.tail;
        c->rq.head = keep.head;
        __atomic_store_n(&c->rq.len, c->rq.len + kept, __ATOMIC_RELAXED);
    }
    /* Nothing to give: say nothing.  Waking the thief to ask again made the
     * two CPUs trade requests and denials at full speed (a CPU with only
     * pinned tasks); it retries on its own, backing off (cpu.c). */
}

/* Handle what other CPUs (or our tick) posted, of the kinds in `mask`.
 * EV_TIMER takes bucket locks: a caller that may hold one (a task on its way
 * to sleep) leaves it out, and the timers run at the next schedule point. */
void sy__cpu_events(struct cpu *c, unsigned mask)
{
    unsigned ev = __atomic_fetch_and(&c->events, ~mask, __ATOMIC_ACQ_REL) & mask;
    if (ev & EV_INBOX)
        inbox_drain(c);
    if (ev & EV_TIMER)
        sy__run_timers();
    if (ev & EV_STEAL)
        donate(c);
    if (ev & EV_FILE)
        sy__file_done(c);
    if (ev & EV_IO)
        sy__io_events();
}

/* Claim an idle CPU other than `self`, or return NULL. */
static struct cpu *claim_idle(struct cpu *self)
{
    int n = rt.ncpu;
    unsigned start = __atomic_fetch_add(&rt.spread, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < n; i++) {
        struct cpu *c = cpu_slot((int)((start + (unsigned)i) % (unsigned)n));
        int one = 1;
        if (c != self && __atomic_load_n(&c->idling, __ATOMIC_RELAXED) &&
            __atomic_compare_exchange_n(&c->idling, &one, 0, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_RELAXED)) {
            __atomic_fetch_sub(&rt.nidle, 1, __ATOMIC_RELAXED);
            return c;
        }
    }
    return NULL;
}

/* An active CPU for t, RUNNABLE, leaving d, a detached bundle (handoff.c):
 * its pinned CPU, an idle one, or the one that has d's slot now. */
struct cpu *sy__active_cpu(struct cpu *d, struct task *t)
{
    if (t->pin >= 0)
        return cpu_slot(t->pin);
    if (__atomic_load_n(&rt.nidle, __ATOMIC_RELAXED) > 0) {
        struct cpu *c = claim_idle(NULL);
        if (c)
            return c;
    }
    int slot = READ_ONCE(d->slot);
    return cpu_slot(slot >= 0 ? slot : 0);
}

struct cpu *sy__choose_cpu(struct cpu *self, struct task *t)
{
    if (t->pin >= 0)
        return cpu_slot(t->pin);
    if (rt.ncpu == 1)
        return self;
    struct cpu *last = t->cpu;
    if (last == self || !last)
        return self;
    int one = 1;
    if (last && __atomic_load_n(&last->idling, __ATOMIC_RELAXED) &&
        __atomic_compare_exchange_n(&last->idling, &one, 0, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED)) {
        __atomic_fetch_sub(&rt.nidle, 1, __ATOMIC_RELAXED);
        return last;
    }
    if (__atomic_load_n(&rt.nidle, __ATOMIC_RELAXED) > (self->is_idle ? 1 : 0)) {
        struct cpu *c = claim_idle(self);
        if (c)
            return c;
    }
    return self;
}

/* The calling CPU has tasks waiting while some CPU is parked with nothing to
 * look for: nudge one (an empty EV_INBOX post wakes it, and its idle loop
 * asks for work).  Called at schedule points when rt.nparked says there is
 * such a CPU (runq.h: offer_work_needed).  A nudged CPU that gets nothing
 * retries on a timer, and is no longer counted in rt.nparked, so this does
 * not repeat for it. */
void sy__offer_work(struct cpu *self)
{
    if (self->tiny_tasks)
        return;
    for (int i = 0; i < rt.ncpu; i++) {
        struct cpu *c = cpu_slot(i);
        if (c != self && __atomic_load_n(&c->parked, __ATOMIC_RELAXED) == PARKED_IDLE) {
            sy__post(c, EV_INBOX);
            return;
        }
    }
}

/* An idle CPU with nothing to run asks the CPU with the longest queue for
 * work.  STEAL_NONE: no CPU has tasks waiting; STEAL_ASKED: a request is
 * out, and its answer will kick us; STEAL_BUSY: tasks wait somewhere but the
 * CPU that has them is being asked by another thief already: try again soon
 * (cpu.c parks with a short timeout then). */
int sy__steal(struct cpu *c)
{
    if (rt.ncpu == 1)
        return STEAL_NONE;
    struct cpu *best = NULL;
    unsigned long best_len = 0;
    for (int i = 0; i < rt.ncpu; i++) {
        struct cpu *v = cpu_slot(i);
        unsigned long len = __atomic_load_n(&v->rq.len, __ATOMIC_RELAXED);
        if (v != c && len > best_len) {
            best = v;
            best_len = len;
        }
    }
    if (!best)
        return STEAL_NONE;
    struct cpu *none = NULL;
    if (!__atomic_compare_exchange_n(&best->steal_req, &none, c, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return none == c ? STEAL_ASKED : STEAL_BUSY; /* ours, or another thief's */
    sy__post(best, EV_STEAL);
    return STEAL_ASKED;
}
