/*
 * handoff.c - no task holds its CPU hostage: Go's P/M split for a task stuck
 * in a long call.
 *
 * The tick switches a task only where it finds it in the program's own code
 * (preempt.c).  A task inside a shared library (compress2, qsort, libm) or a
 * blocking system call the runtime does not know (a read on a pipe, waitpid,
 * flock) keeps its host thread, and without this file its CPU too: every
 * task queued there, and any timer or poller duty the CPU had, waited for
 * the call to end.  Go meets it by splitting the P (the right to run Go
 * code, with its run queue) from the M (the host thread): sysmon retakes
 * the P of an M stuck in a system call or a cgo call and gives it to
 * another M.
 *
 * Here a struct cpu is both.  Rather than put an indirection between them
 * on the hot paths (this_cpu() is one thread-local load), bundles move:
 *
 *   rt.bundles   every struct cpu: the ncpu that boot starts, then up to
 *                handoff_threads spares, whose threads start lazily;
 *   rt.cpus[i]   the bundle that is active CPU i now (its "slot": pins,
 *                balancing, kicks and wakeups go through it);
 *   detached     a bundle that is not in a slot: a spare in the pool, or a
 *                bundle whose task is in a long call.
 *
 * The monitor, one host thread started with the runtime, looks at the
 * active CPUs every half bound (50 ms at most) while one of them runs a
 * task, and sleeps on a futex while they are all idle (set_idle in cpu.c
 * wakes it).  A CPU that
 * has not switched for the bound (sy_config.handoff_us), while work waits
 * for it (tasks queued or in its inbox, a preempted task, a request for
 * work, pending timers or fd waits), and whose thread is computing (its
 * CPU-time clock advanced) or asleep in the kernel (/proc: state S or D) -
 * not merely descheduled by a loaded host - gets a probe: the tick's signal,
 * sent with tgkill.  Its handler (preempt.c), on the stuck thread itself,
 * checks that the CPU has not switched since, and the interrupted PC:
 * outside the runtime's code, outside the code the tick may switch in and
 * outside code that is always short (the vDSO, the sanitizer runtimes),
 * the task is in a long call, and the handler hands the P over
 * (sy__handoff_probe, below): the run queue, the preempted task, the
 * pending events, the request for work go to a spare bundle, which takes
 * the slot; what sits in the inbox and the finished file jobs are
 * forwarded; the stuck bundle becomes detached and keeps only its task and
 * the tasks preempted in their handler on its thread (they must resume on
 * it: program code may hold that thread's &errno in a register), on its
 * `leftover` queue.
 *   Doing the move on the stuck thread is what makes it safe: the run queue
 * is private to its thread and changes without a lock, and the handler runs
 * between two instructions of that thread, outside the runtime (the PC
 * says so).  Whatever runtime code might be further up its stack (a runtime
 * call into the C library, which the PC cannot tell from the task's own)
 * goes on with its own bundle, now detached and with an empty queue, and
 * everything it may then do on it is redirected: an enqueue (sched.c), an
 * inbox drain or a post (runq.c: sy__forward).  The debug builds refuse
 * the hand-off while the thread holds a runtime lock (lockdep knows).
 *
 * A detached bundle's task is back to normal at its first runtime call
 * that yields, reschedules, sleeps or exits (sched.c: sy__rejoin, or the
 * idle task after a sleep or an exit).  The tick never moves it to another
 * thread (the same &errno reason), so until that call it runs on its own
 * thread beside the CPU's other tasks; the tick only takes turns with the
 * leftover tasks, and a killed task found in program code exits there (a
 * kill takes effect when the call returns: preempt.c, detached_tick).  It is queued on an active CPU as a woken
 * task is (an idle one if any, else the one in its old slot), and the
 * detached thread goes to its idle task, which takes it to the spare pool
 * (cpu.c: sy__idle_loop, sy__retire below) - once its io_uring ring has no
 * request or cancel in flight: only this thread may reap them, so until
 * then it serves and parks in its ring, out of the pool (uring.c:
 * sy__uring_detached_serve).  With the spare pool empty and
 * handoff_threads all started, a stuck CPU stays stuck until a call
 * returns: the documented wait at the bound.
 *
 * Invariants (asserted in the debug builds):
 *   - the tasks preempted on a detached bundle's thread wait on its
 *     `leftover` queue, which its idle task runs, each until its first
 *     runtime call, before it retires; its run queue stays empty (but for
 *     what runtime code the probe interrupted may put there), so that its
 *     running task rejoins an active CPU at its first runtime call;
 *   - only a bundle's own thread detaches it (in its tick handler), with no
 *     runtime lock held (debug builds), its current task RUNNING on its own
 *     stack (not mid-switch); only a hand-off makes a spare active again;
 *   - rt.nlong counts the detached bundles whose task has not left them:
 *     the deadlock check (cpu.c: park) finds no deadlock while it is not 0,
 *     and the last one to leave wakes a parked CPU to check again;
 *   - after the first hand-off, more than one host thread may run runtime
 *     code even with one CPU: rt.smp turns the elided locks on, for good.
 *
 * Left out: ThreadSanitizer runs no signal handler in a thread blocked in a
 * system call it intercepts until the call returns, so under TSan only long
 * computations are handed off.
 *
 * Rejected: a hand-off decided by the monitor and done by another thread.
 * The run queue would then be touched by two threads without a lock, and
 * the stuck thread could return into the runtime in the middle of it.
 * Also rejected: let the spare thread take over the same struct cpu.  The
 * stuck thread's runtime frames and its this_cpu() would then share it
 * with the new thread.
 */
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "runq.h"

/* cpu->spare_go */
#define SPARE_WAIT 0 /* in the pool */
#define SPARE_GO 1   /* a hand-off gave it a slot */
#define SPARE_STOP 2 /* no task is left */

static struct {
    pthread_t thread;
    bool started;
    int stop;                /* atomic */
    int sleeping;            /* futex word: 1 while every CPU is idle */
    sigset_t boot_mask;      /* the spares start with the booting thread's mask */
    int start_ok;            /* futex word of a spare's start: 1 ok, -1 failed */
    int nstarted;            /* spares started (the monitor's own) */
    bool start_failed;       /* the system refused one: no more tries */
    int stopping;            /* atomic: no task is left */
    sy_spinlock pool_lock;   /* the pool; never held across a call */
    struct cpu **pool;
    int npool;
} mon;

static long futex(int *uaddr, int op, int val, const struct timespec *ts)
{
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

/* ------------------------------------------------------------- the pool */

static struct cpu *pool_pop(void)
{
    spin_lock(&mon.pool_lock);
    struct cpu *c = mon.npool ? mon.pool[--mon.npool] : NULL;
    spin_unlock(&mon.pool_lock);
    return c;
}

static void pool_push(struct cpu *c)
{
    spin_lock(&mon.pool_lock);
    mon.pool[mon.npool++] = c;
    spin_unlock(&mon.pool_lock);
}

static bool pool_empty(void)
{
    spin_lock(&mon.pool_lock);
    bool empty = mon.npool == 0;
    spin_unlock(&mon.pool_lock);
    return empty;
}

/* Wake a parked CPU that waits for a kick: with no task left in a long call,
 * it checks for a deadlock again (cpu.c: park). */
static void nudge_parked(void)
{
    for (int i = 0; i < rt.ncpu; i++) {
        struct cpu *c = cpu_slot(i);
        if (__atomic_load_n(&c->parked, __ATOMIC_SEQ_CST) == PARKED_IDLE) {
            sy__post(c, EV_INBOX);
            return;
        }
    }
}

/*
 * sy__retire - the idle task of c, a detached bundle, once its task has
 * left it (or a spare thread that just started): hand on what is left, go
 * into the spare pool, and wait there.  True when a hand-off made c an
 * active CPU again; false when no task is left (the idle loop returns).
 */
bool sy__retire(struct cpu *c)
{
    SY_ASSERT(c == this_cpu() && c->curr == &c->idle && c->detached && !c->preempted &&
                  !c->leftover.len,
              NULL, "retire: not the idle task of a detached CPU");
    struct task *t;
    while ((t = runq_pop(&c->rq)) != NULL) /* (nothing, by the invariant) */
        sy__inbox_push(sy__active_cpu(c, t), t);
    sy__forward(c);
    (void)__atomic_exchange_n(&c->steal_req, NULL, __ATOMIC_ACQ_REL); /* the thief retries */
    __atomic_and_fetch(&c->events, 0, __ATOMIC_ACQ_REL); /* timers, fds: any CPU's */
    c->need_resched = 0;
    if (c->counted_long) {
        c->counted_long = false;
        if (__atomic_sub_fetch(&rt.nlong, 1, __ATOMIC_SEQ_CST) == 0)
            nudge_parked();
    }
    pool_push(c);
    sy__tick_park(c, true);
    int g;
    for (;;) {
        g = __atomic_load_n(&c->spare_go, __ATOMIC_ACQUIRE);
        if (g != SPARE_WAIT)
            break;
        futex(&c->spare_go, FUTEX_WAIT_PRIVATE, SPARE_WAIT, NULL);
    }
    if (g == SPARE_STOP)
        return false;
    __atomic_store_n(&c->spare_go, SPARE_WAIT, __ATOMIC_RELAXED);
    c->steal_backoff = 0; /* a fresh start in its slot */
    c->tiny_tasks = false;
    c->need_resched = 0;
    sy__tick_park(c, false);
    SY_ASSERT(!c->detached && cpu_slot(c->slot) == c, NULL, "a spare woke without a slot");
    return true;
}

/* No task is left: every spare leaves the pool (runq.c: sy__stop_all). */
void sy__spares_stop(void)
{
    if (!rt.handoff_ns)
        return;
    __atomic_store_n(&mon.stopping, 1, __ATOMIC_SEQ_CST);
    for (int i = 0; i < rt.nbundles; i++) {
        struct cpu *c = &rt.bundles[i];
        int w = SPARE_WAIT;
        if (__atomic_compare_exchange_n(&c->spare_go, &w, SPARE_STOP, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_RELAXED))
            futex(&c->spare_go, FUTEX_WAKE_PRIVATE, 1, NULL);
    }
}

/* ------------------------------------------------------------ hand-off */

/*
 * sy__handoff_probe - the monitor's probe, in the tick handler of bundle b,
 * on b's own thread, which was interrupted at `uc` running task t.  If t is
 * in a long call (outside the runtime and outside the code the tick may
 * switch in), b's P goes to a spare bundle, which starts running it, and b
 * keeps only t.  True if it did.
 */
bool sy__handoff_probe(struct cpu *b, struct task *t, void *uc)
{
    SY_ASSERT(b == this_cpu(), t, "hand-off probe off its thread");
    if (t == &b->idle || READ_ONCE(t->state) != SY_RUNNING || b->detached || b->tick_masked)
        return false;
    /* a section that must not be preempted (sy_preempt_disable, a held
     * spinlock or host lock) or a task exempt from preemption keeps its CPU
     * to itself, as the program asked: on one CPU nothing else runs */
    if (t->preempt_count || t->nopreempt)
        return false;
    /* some task holds a lock that belongs to a host thread (a FILE lock, a
     * robust or process-shared mutex: hostsync.c); it must unlock from that
     * thread, and a hand-off would move it, asleep or queued here, to a
     * spare's: no hand-off meanwhile */
    if (__atomic_load_n(&sy__thread_owned_holds, __ATOMIC_RELAXED))
        return false;
    /* mid-switch (curr is already the next task, we still stand on the
     * previous one's stack, or the host thread's), the run queue may hold
     * a task whose context is not saved yet: never move it then */
    char *sp = __builtin_frame_address(0);
    if (sp < t->stack_lo || sp >= t->stack_lo + t->stack_size)
        return false;
#if defined(SY_DEBUG)
    if (b->nheld)
        return false; /* the runtime's own call into a library, under its lock */
    /* the task that ran before this one is queued, but its finish (which
     * clears its running guard) has not run yet: a probe that TSan delivers
     * at its own points can land there */
    for (struct task *x = b->rq.head; x; x = x->rq_next)
        if (__atomic_load_n(&x->on_cpu, __ATOMIC_ACQUIRE))
            return false;
    if (b->preempted && __atomic_load_n(&b->preempted->on_cpu, __ATOMIC_ACQUIRE))
        return false;
#endif
    if (!sy__pc_long_call(arch_uc_pc(uc)))
        return false;
    struct cpu *s = pool_pop();
    if (!s)
        return false; /* every spare is busy: the CPU waits for the call */
    SY_ASSERT(s->detached && s->curr == &s->idle && !s->rq.len, NULL, "a spare that is not idle");
    if (!rt.smp)
        __atomic_store_n(&rt.smp, true, __ATOMIC_SEQ_CST); /* two threads from now on */

    /* the P: the run queue and the slot (s's thread waits in the pool and
     * reads these after its spare_go, below) - but a task preempted in its
     * tick handler stays: it resumes on this host thread (stay_home) */
    SY_ASSERT(!s->rq.len && !b->leftover.len, NULL, "a spare with tasks");
    for (struct task *x; (x = runq_pop(&b->rq)) != NULL;)
        runq_push(x->stay_home ? &b->leftover : &s->rq, x);
    struct task *p = b->preempted;
    if (p) {
        WRITE_ONCE(b->preempted, NULL);
        runq_push(p->stay_home ? &b->leftover : &s->rq, p);
    }
    WRITE_ONCE(s->slot, b->slot); /* (forwarders read it: runq.c) */
    __atomic_store_n(&s->detached, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&rt.cpus[b->slot], s, __ATOMIC_SEQ_CST);
    __atomic_store_n(&b->detached, 1, __ATOMIC_SEQ_CST);

    /* t is in a long call now (sy_ps), until it leaves b (sched.c:
     * finish_slow, FINISH_LONG) */
    b->counted_long = true;
    __atomic_add_fetch(&rt.nlong, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&t->long_since, sy__now_ns(), __ATOMIC_RELAXED);
    b->long_task = t;
    b->finish |= FINISH_LONG;

    /* what others asked of b: a request for work, events, its inbox and
     * finished file jobs (after `detached`: runq.c, sy__post) */
    struct cpu *thief = __atomic_exchange_n(&b->steal_req, NULL, __ATOMIC_ACQ_REL);
    if (thief)
        __atomic_store_n(&s->steal_req, thief, __ATOMIC_RELEASE);
    unsigned ev = __atomic_exchange_n(&b->events, 0, __ATOMIC_ACQ_REL) & ~EV_STOP;
    __atomic_fetch_or(&s->events, ev | EV_INBOX | (thief ? EV_STEAL : 0), __ATOMIC_SEQ_CST);
    __atomic_store_n(&s->spare_go, SPARE_GO, __ATOMIC_RELEASE);
    futex(&s->spare_go, FUTEX_WAKE_PRIVATE, 1, NULL);
    sy__forward(b);
    return true;
}

/* ----------------------------------------------------------- the monitor */

static void *spare_thread(void *arg)
{
    struct cpu *c = arg;
    int ok = sy__cpu_enter(c) == 0;
    __atomic_store_n(&mon.start_ok, ok ? 1 : -1, __ATOMIC_RELEASE);
    futex(&mon.start_ok, FUTEX_WAKE_PRIVATE, 1, NULL);
    if (!ok)
        return NULL;
    sy__idle_loop(c); /* detached: into the pool at once */
    sy__cpu_leave(c);
    return NULL;
}

/* A spare waits in the pool, or one was started; false at the bound. */
static bool spare_ready(void)
{
    if (!pool_empty())
        return true;
    if (mon.start_failed || rt.spare0 + mon.nstarted >= rt.nbundles)
        return false;
    struct cpu *c = &rt.bundles[rt.spare0 + mon.nstarted];
    __atomic_store_n(&mon.start_ok, 0, __ATOMIC_RELAXED);
    sigset_t old;
    pthread_sigmask(SIG_SETMASK, &mon.boot_mask, &old);
    int err = pthread_create(&c->thread, NULL, spare_thread, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        mon.start_failed = true;
        return false;
    }
    mon.nstarted++;
    int ok;
    while ((ok = __atomic_load_n(&mon.start_ok, __ATOMIC_ACQUIRE)) == 0)
        futex(&mon.start_ok, FUTEX_WAIT_PRIVATE, 0, NULL);
    if (ok < 0) { /* no timer for it (qemu-user has 32): it has returned */
        mon.start_failed = true;
        return false;
    }
    while (pool_empty() && !__atomic_load_n(&mon.stopping, __ATOMIC_RELAXED))
        sched_yield(); /* until it is in the pool */
    return true;
}

/* Work waits for CPU b: tasks, a request, events, timers or fd waits. */
static bool work_waiting(struct cpu *b)
{
    return __atomic_load_n(&b->rq.len, __ATOMIC_RELAXED) || READ_ONCE(b->preempted) ||
           __atomic_load_n(&b->inbox, __ATOMIC_RELAXED) ||
           (__atomic_load_n(&b->events, __ATOMIC_RELAXED) & ~EV_STOP) ||
           __atomic_load_n(&b->steal_req, __ATOMIC_RELAXED) ||
           __atomic_load_n(&rt.timer_next, __ATOMIC_RELAXED) != UINT64_MAX || sy__io_waiting();
}

static uint64_t thread_cpu_ns(struct cpu *b)
{
    clockid_t id;
    struct timespec ts;
    if (pthread_getcpuclockid(b->thread, &id) != 0 || clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Is thread tid asleep in the kernel (a blocking system call)? */
static bool thread_blocked(int tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the name may hold anything */
    return p && p[1] == ' ' && (p[2] == 'S' || p[2] == 'D');
}

struct seen {
    struct cpu *b;       /* the bundle in the slot when last looked at */
    uint64_t nswitch;    /* its switch count then */
    uint64_t since;      /* since when it has not switched (or last probe) */
    uint64_t cpu_ns;     /* its thread's CPU time at `since` */
};

static void *monitor(void *arg)
{
    (void)arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    struct seen *seen = calloc((size_t)rt.ncpu, sizeof *seen);
    if (!seen)
        return NULL;
    uint64_t half = rt.handoff_ns / 2 < 50000000 ? rt.handoff_ns / 2 : 50000000;
    struct timespec nap = {(time_t)(half / 1000000000u), (long)(half % 1000000000u)};
    int pid = getpid();
    while (!__atomic_load_n(&mon.stop, __ATOMIC_ACQUIRE)) {
        bool busy = false;
        uint64_t now = sy__now_ns();
        for (int i = 0; i < rt.ncpu; i++) {
            struct cpu *b = cpu_slot(i);
            struct seen *s = &seen[i];
            if (READ_ONCE(b->is_idle)) {
                s->b = NULL;
                continue;
            }
            busy = true;
            uint64_t ns = READ_ONCE(b->nswitch);
            if (s->b != b || s->nswitch != ns) {
                *s = (struct seen){b, ns, now, thread_cpu_ns(b)};
                continue;
            }
            if (now - s->since < rt.handoff_ns || !work_waiting(b))
                continue;
            /* stuck: computing, or asleep in the kernel - not just
             * descheduled by a busy host */
            uint64_t cpu = thread_cpu_ns(b);
            bool computing = cpu - s->cpu_ns >= (now - s->since) / 8;
            s->since = now; /* probe again after another bound */
            s->cpu_ns = cpu;
            if (!computing && !thread_blocked(b->tid))
                continue;
            if (!spare_ready())
                continue; /* at the bound: the CPU waits for the call */
            __atomic_store_n(&b->handoff_req, ns + 1, __ATOMIC_RELEASE);
            syscall(SYS_tgkill, pid, b->tid, TICK_SIGNAL);
        }
        if (busy) {
            futex(&mon.stop, FUTEX_WAIT_PRIVATE, 0, &nap); /* (sy__handoff_fini wakes it) */
            continue;
        }
        /* every CPU idle: sleep until one is not (sy__monitor_wake).  The
         * seq_cst pair: we store `sleeping` and then read is_idle; a CPU
         * stores is_idle and then reads `sleeping`. */
        __atomic_store_n(&mon.sleeping, 1, __ATOMIC_SEQ_CST);
        bool idle = true;
        for (int i = 0; i < rt.ncpu && idle; i++)
            idle = READ_ONCE(cpu_slot(i)->is_idle);
        if (idle && !__atomic_load_n(&mon.stop, __ATOMIC_SEQ_CST))
            futex(&mon.sleeping, FUTEX_WAIT_PRIVATE, 1, NULL);
        __atomic_store_n(&mon.sleeping, 0, __ATOMIC_RELAXED);
    }
    free(seen);
    return NULL;
}

/* A CPU leaves its idle state (cpu.c: set_idle): the monitor watches again. */
void sy__monitor_wake(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&mon.sleeping, __ATOMIC_RELAXED) &&
        __atomic_exchange_n(&mon.sleeping, 0, __ATOMIC_SEQ_CST))
        futex(&mon.sleeping, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* Start the monitor (cpu.c: sy_run, once the CPUs run). */
int sy__handoff_init(void)
{
    memset(&mon, 0, sizeof mon);
    mon.pool = calloc((size_t)rt.nbundles, sizeof *mon.pool);
    if (!mon.pool)
        return -ENOMEM;
    pthread_sigmask(SIG_SETMASK, NULL, &mon.boot_mask);
    if (pthread_create(&mon.thread, NULL, monitor, NULL) != 0) {
        free(mon.pool);
        mon.pool = NULL;
        return -EAGAIN;
    }
    mon.started = true;
    return 0;
}

/* No task is left: stop the monitor, before any CPU's thread is joined
 * (it reads their CPU clocks). */
void sy__monitor_stop(void)
{
    if (!mon.started || __atomic_load_n(&mon.stop, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&mon.stop, 1, __ATOMIC_SEQ_CST);
    futex(&mon.stop, FUTEX_WAKE_PRIVATE, 1, NULL);
    __atomic_store_n(&mon.sleeping, 0, __ATOMIC_SEQ_CST);
    futex(&mon.sleeping, FUTEX_WAKE_PRIVATE, 1, NULL);
    pthread_join(mon.thread, NULL);
}

/* sy_run is done, its CPUs' threads joined: join the spares. */
void sy__handoff_fini(void)
{
    if (!mon.started)
        return;
    sy__monitor_stop();
    for (int i = 0; i < mon.nstarted; i++)
        pthread_join(rt.bundles[rt.spare0 + i].thread, NULL);
    free(mon.pool);
    mon.pool = NULL;
    mon.started = false;
}
