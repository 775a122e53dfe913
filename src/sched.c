/*
 * sched.c - the scheduler: context_switch(), yield, sleep and wakeup.
 *
 * The model
 * ---------
 * A CPU is a host thread.  It runs one task at a time, `cpu->curr`.  A task
 * gives up the CPU by calling into the runtime (yield, sleep, wait, exit),
 * or is made to by the CPU's tick (preempt.c, from its signal handler:
 * involuntary() below); every such path ends in context_switch(), the ONE
 * place where a switch happens.  It has Linux's three steps:
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
 * running on the host thread's own stack (cpu.c); a CPU switches to it only
 * when it has nothing else to run.
 *
 * Run queues are FIFO (round robin) and private to their CPU: only the
 * owning CPU pushes and pops, so yield takes no lock and no atomic
 * instruction.  (A preempted task waits one turn off the queue before it
 * rejoins the tail: rejoin_preempted.)  Other CPUs hand a CPU tasks through
 * its inbox and tell it through its `events` word, which every schedule
 * point checks with one load (runq.h, runq.c: placement of woken tasks,
 * load balancing).
 *
 * Rejected: one lock per run queue, taken by the leaving task and released
 * by the arriving one, as in Linux and xv6.  It costs an atomic instruction
 * on every yield (about 5 ns here, more than half of the whole yield) to
 * protect against other CPUs, which only need to hand tasks over and ask
 * for work: an inbox and a request flag do that without touching the
 * owner's fast path.  So what crosses a switch is not a run-queue lock
 * here, but whatever protects the leaving task's own state transition -
 *
 *   sleep:  the bucket lock of its wait channel (a waker cannot see it on the
 *           queue, and so cannot make it RUNNABLE, before its context is
 *           saved), which the task switched to releases in
 *           finish_task_switch;
 *   exit:   no lock (tree_lock was held across the last switch once, and
 *           kept the spawner and the reaper on other CPUs waiting), but the
 *           task's `dying` flag: its parent does not reap it, nor anybody
 *           free it, until the task switched to has released its stack and
 *           cleared the flag (task.c: sy__task_dead).
 *
 * Sleep and wakeup (sleep.c) keep xv6's contract on top of this.
 *
 * errno belongs to the task: context_switch saves the host thread's errno
 * into the leaving task and finish restores the arriving task's, on the
 * host thread it arrives on.
 *
 * After any switch a task may be on another CPU: nothing here keeps a
 * struct cpu pointer across context_switch(); this_cpu() is read again.
 *
 * Accounting: by default, CPU time is sampled on a per-CPU tick (preempt.c:
 * a timer on the host thread's CPU-time clock charges one tick to
 * `cpu->curr`), and time spent RUNNABLE is measured against a coarse clock
 * that the tick updates; the switch path then reads no clock at all.  With
 * SY_ACCT_PRECISE the switch reads CLOCK_MONOTONIC (about 30 ns here) and
 * charges exact intervals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "runq.h"
#include "san.h"


/* ------------------------------------------------------------ placement */

/* Put a RUNNABLE task that is on no queue on some CPU's (runq.c: where). */
void sy__enqueue(struct task *t)
{
    struct cpu *self = this_cpu();
    if (unlikely(self->detached)) { /* a task in a long call woke it (handoff.c) */
        sy__inbox_push(sy__active_cpu(self, t), t);
        return;
    }
    if (rt.ncpu == 1) { /* the one place it can go (a pinned task too) */
        runq_push(&self->rq, t);
        return;
    }
    struct cpu *target = sy__choose_cpu(self, t);
    if (target == self)
        runq_push(&self->rq, t);
    else
        sy__inbox_push(target, t);
}

void sy__make_runnable(struct task *t)
{
    task_set_runnable(t);
    sy__enqueue(t);
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
    if (work & FINISH_LONG) { /* before FINISH_DEAD: the task is still ours */
        struct task *t = c->long_task;
        c->long_task = NULL;
        if (t)
            __atomic_store_n(&t->long_since, 0, __ATOMIC_RELAXED);
    }
    if (work & FINISH_REJOIN) {
        /* last left this detached CPU RUNNABLE, its context is saved now:
         * another CPU may run it (handoff.c) */
        SY_ASSERT(c->detached && last == c->rejoin_task && READ_ONCE(last->state) == SY_RUNNABLE,
                  last, "rejoin: not the detached CPU's task, or not RUNNABLE");
        c->rejoin_task = NULL;
        sy__inbox_push(sy__active_cpu(c, last), last);
    }
    if (work & FINISH_DEAD) {
        /* last exited: its stack is ours to release (it is off it now).
         * Its parent does not reap it before sy__task_dead says it may
         * (last->dying), so no lock is held across its last switch. */
        san_task_dead(last);
        c->nexits++;
        sy__stack_free(last->stack_lo, last->stack_size);
        last->stack_lo = NULL;
        sy__task_dead(last);
    }
    if (work & FINISH_UNLOCK) {
        sy_spinlock *lk = c->finish_lock;
        c->finish_lock = NULL;
        /* a real unlock even with one CPU: a shared wait (wait.c) took it
         * for real; otherwise it is free already and stays so */
        sy__lockdep_release(lk);
        spin_unlock(lk);
    }
}

/* The tick's mask at a switch (preempt.c: one tick frame per stack), out of
 * line: a preemption's path, never a yield's between running tasks. */
static __attribute__((noinline, cold)) void tick_unblock_unless_preempted(struct cpu *c,
                                                                          struct task *self)
{
    if (!self->in_tick)
        tick_block(c, false);
}

static __attribute__((noinline, cold)) void tick_block_for_preempted(struct cpu *c)
{
    if (!c->tick_masked)
        tick_block(c, true);
}

static inline void finish_task_switch(struct cpu *c, struct task *self, struct task *last)
{
    *c->errno_ptr = self->saved_errno;
    /* the tick: blocked while a task preempted in its handler returns from
     * it (rt_sigreturn unblocks it then), unblocked for any other task */
    if (unlikely(c->tick_masked))
        tick_unblock_unless_preempted(c, self);
#if defined(SY_DEBUG)
    /* last is off its stack and its context is saved: another CPU may run
     * it from now on */
    if (READ_ONCE(last->state) != SY_ZOMBIE)
        __atomic_store_n(&last->on_cpu, 0, __ATOMIC_RELEASE);
#endif
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
 * Never inlined: it must be the one call site of sy__arch_switch, whose
 * `ret` then always matches its `call` (the build checks: Makefile).
 */
static __attribute__((noinline)) void context_switch(struct cpu *c, struct task *prev,
                                                     struct task *next)
{
    /* prepare */
    uint64_t now;
    if (rt.flags & SY_ACCT_PRECISE) {
        now = sy__now_ns();
        WRITE_ONCE(prev->cpu_ns, prev->cpu_ns + now - c->switch_ns); /* ps reads these */
        c->switch_ns = now;
    } else {
        now = __atomic_load_n(&rt.coarse_ns, __ATOMIC_RELAXED);
    }
    WRITE_ONCE(next->wait_ns, next->wait_ns + now - next->enq_ns);
    if (READ_ONCE(prev->state) == SY_RUNNABLE) /* yield: it waits from now on */
        prev->enq_ns = now;
    else if (READ_ONCE(prev->state) == SY_ZOMBIE)
        stack_handoff(prev, next);
    if (next->cpu != c) {
        if (next->cpu)
            WRITE_ONCE(next->nmigrations, next->nmigrations + 1);
        WRITE_ONCE(next->cpu, c);
    }
#if defined(SY_DEBUG)
    /* the running guard: no task runs on two CPUs at once */
    if (__atomic_exchange_n(&next->on_cpu, 1, __ATOMIC_ACQ_REL))
        sy__panic("task runs on two CPUs at once", next);
#endif
    /* a task preempted inside its tick handler resumes with the tick
     * blocked, so that no second tick frame lands on its stack before it
     * has returned from the first (preempt.c) */
    if (unlikely(next->in_tick))
        tick_block_for_preempted(c);
    /* only the lock handed to next may be held across the switch */
    assert_locks_only(c->finish & FINISH_UNLOCK ? c->finish_lock : NULL);
    SY_ASSERT(prev == c->curr && (prev == &c->idle || READ_ONCE(prev->state) != SY_RUNNING), prev,
              "context_switch: prev is not this CPU's task, or still RUNNING");
    task_set_state(next, SY_RUNNING);
    c->curr = next;
    WRITE_ONCE(c->nswitch, c->nswitch + 1); /* (the hand-off monitor reads it) */
    c->need_resched = 0; /* any switch is the reschedule that was wanted */
    prev->saved_errno = *c->errno_ptr;
    san_switch_begin(prev, next, READ_ONCE(prev->state) == SY_ZOMBIE);
    san_tsan_switch(next);

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
    /* Two statements on purpose: the body may switch and move us to another
     * CPU, and C leaves the order of a call's arguments open (GCC for
     * AArch64 read this_cpu() first when this was one expression). */
    int status = self->fn(self->arg);
    sy__task_exit(this_cpu(), status);
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
    /* prev may hold a bucket lock: no timers here */
    struct task *next = pick_next(c, EV_LOCKFREE);
    if (!next)
        next = idle_task(c);
    WRITE_ONCE(prev->nvcsw, prev->nvcsw + 1);
    prev->stay_home = false; /* a voluntary switch: free to move again */
    context_switch(c, prev, next);
}

/* How far the running task's turn fell short of its due (> 0: a wakeup
 * preempted it; a quantum at most) or ran over it (< 0: a late tick;
 * SLICE_DEBT_MAX quanta at most): its next turns make up for it (preempt.c:
 * turns). */
#define SLICE_DEBT_MAX 20
static int64_t slice_carry(const struct cpu *c)
{
    int64_t q = (int64_t)rt.quantum_ns, d = c->slice_limit - (int64_t)c->slice_ns;
    return d > q ? q : d < -SLICE_DEBT_MAX * q ? -SLICE_DEBT_MAX * q : d;
}

/* An involuntary switch, after handling what other CPUs and the timers
 * posted (the caller holds no runtime lock): prev waits off the queue for
 * one turn (rejoin_preempted).  `always`: switch even if that made nobody
 * new runnable here.  `home`: prev was interrupted at an arbitrary
 * instruction (preempt.c) and must resume on this CPU. */
static void involuntary(struct cpu *c, bool always, bool home)
{
    struct task *prev = c->curr;
    unsigned long queued = c->rq.len;
    if (cpu_has_events(c))
        sy__cpu_events(c, EV_ALL);
    if (!always && c->rq.len <= queued)
        return; /* nobody new here: finish the quantum */
    struct task *next = pick_next(c, 0); /* events just handled */
    if (!next) {
        if (unlikely(c->detached)) { /* back from a long call (handoff.c) */
            WRITE_ONCE(prev->nivcsw, prev->nivcsw + 1);
            sy__rejoin(c);
        }
        return; /* nobody else wants the CPU: keep it */
    }
    task_set_state(prev, SY_RUNNABLE);
    prev->stay_home = home;
    if (rt.quantum_ns)
        prev->slice_carry = slice_carry(c);
    WRITE_ONCE(c->preempted, prev); /* rejoins the queue when next's turn ends */
    WRITE_ONCE(prev->nivcsw, prev->nivcsw + 1);
    context_switch(c, prev, next);
}

/* The tick preempts the running task (preempt.c: tick_handler, which has
 * checked that it may): its quantum is over, or events are pending (due
 * timers, tasks in the inbox, a request for work: runq.c) that may make a
 * task runnable here, which then runs at once (wakeup preemption, as
 * Linux's).  If it switched, the task resumes here, on this CPU, when it is
 * switched back in, and returns from its signal handler. */
void sy__preempt(struct cpu *c, bool quantum_over)
{
    involuntary(c, quantum_over, true);
}

/* A safe point after the tick wanted to preempt: give up the CPU now. */
void sy__resched(struct cpu *c)
{
    c->need_resched = 0;
    involuntary(c, true, false);
}

/*
 * sy__rejoin - the task of a detached CPU (its P was handed off while the
 * task was in a long call: handoff.c) has come back to a point where it may
 * switch: it becomes an ordinary RUNNABLE task on an active CPU, and this
 * CPU switches to its idle task, which takes the host thread back to the
 * spare pool (cpu.c: sy__idle_loop).  Called with no runtime lock held, by
 * the task itself (yield, a reschedule), never from its tick handler
 * (preempt.c: detached_tick).
 */
void sy__rejoin(struct cpu *c)
{
    struct task *prev = c->curr;
    SY_ASSERT(c->detached && prev != &c->idle && READ_ONCE(prev->state) == SY_RUNNING, prev,
              "rejoin: CPU not detached, or not its running task");
    task_set_runnable(prev);
    prev->stay_home = false; /* it changes host thread anyway */
    c->rejoin_task = prev;   /* queued once its context is saved (finish) */
    c->finish |= FINISH_REJOIN;
    context_switch(c, prev, idle_task(c));
}

/* The tick of a detached CPU found its task in the program's own code
 * while tasks preempted on this host thread wait in its leftover queue
 * (handoff.c): they take turns on this same thread, as on any CPU (the
 * task resumes here, in its handler, when its turn comes again). */
void sy__preempt_leftover(struct cpu *c)
{
    struct task *prev = c->curr, *next = runq_pop(&c->leftover);
    SY_ASSERT(c->detached && next && READ_ONCE(prev->state) == SY_RUNNING, prev,
              "preempt_leftover: not a detached CPU's running task, or nobody waits");
    task_set_state(prev, SY_RUNNABLE);
    prev->stay_home = true;
    runq_push(&c->leftover, prev);
    WRITE_ONCE(prev->nivcsw, prev->nivcsw + 1);
    context_switch(c, prev, next);
}

/* The idle loop runs a task (cpu.c). */
void sy__switch_from_idle(struct cpu *c, struct task *next)
{
    context_switch(c, &c->idle, next);
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
    struct task *next = pick_next(c, EV_ALL);
    if (!next) {
        if (unlikely(c->detached)) { /* back from a long call (handoff.c) */
            WRITE_ONCE(prev->nvcsw, prev->nvcsw + 1);
            sy__rejoin(c);
        }
        return 0; /* nothing else to run: keep the CPU */
    }
    task_set_state(prev, SY_RUNNABLE);
    prev->stay_home = false;
    runq_push(&c->rq, prev);
    WRITE_ONCE(prev->nvcsw, prev->nvcsw + 1);
    context_switch(c, prev, next);
    return 0;
}


