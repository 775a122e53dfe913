/*
 * internal.h - the runtime's own structures: struct task, struct cpu, the
 * global runtime state, and the locks that protect them.
 *
 * Internal names are static or start with sy__; only sy_ names are exported.
 *
 * Locks: the runtime's own (rt.tree_lock, the wait-queue buckets,
 * rt.timer_lock, the stack pool's) are spinlocks held by a CPU for a few
 * dozen instructions; their order, complete, is in spinlock.c, and the
 * debug builds check it (lockdep) and every "lock X held" written below
 * (assert_held).  No runtime lock is held while user code runs, except
 * across a switch (see sched.c: finish_task_switch: a sleeper's bucket
 * lock; an exiting task holds none across its last one).
 */
#ifndef SY_INTERNAL_H
#define SY_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "switchyard.h"
#include "arch/arch.h"

/* Plain-looking accesses to fields other CPUs read (or write) without the
 * lock that usually guards them: relaxed atomics, so the compiler neither
 * tears nor caches them, at the cost of a plain load or store. */
#define READ_ONCE(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define HIDDEN __attribute__((visibility("hidden")))

/* ------------------------------------------------------------- assertions */

struct task;
#if defined(SY_DEBUG)
/* xv6's panic: print what broke (and the task, if any) and abort. */
__attribute__((noreturn)) HIDDEN void sy__panic(const char *what, struct task *t);
/* An invariant, checked in the debug builds (SY_DEBUG: the sanitizer
 * builds), free in the others. */
#define SY_ASSERT(cond, t, what)                                                                   \
    do {                                                                                           \
        if (unlikely(!(cond)))                                                                     \
            sy__panic(what, t);                                                                    \
    } while (0)
#else
#define SY_ASSERT(cond, t, what) ((void)0)
#endif

/* ------------------------------------------------------------------ locks */

static inline void cpu_relax(void)
{
    arch_cpu_relax();
}

HIDDEN void sy__spin_wait(sy_spinlock *lk);

/* Test-and-test-and-set; the runtime's own locks are held for a few dozen
 * instructions at most.  The wait (sched.c) gives the host CPU away after a
 * while: with more CPUs than cores, the holder may be waiting for ours. */
static inline void spin_lock(sy_spinlock *lk)
{
    while (__atomic_exchange_n(&lk->locked, 1, __ATOMIC_ACQUIRE))
        sy__spin_wait(lk);
}

static inline void spin_unlock(sy_spinlock *lk)
{
    __atomic_store_n(&lk->locked, 0, __ATOMIC_RELEASE);
}

static inline bool spin_held(const sy_spinlock *lk)
{
    return __atomic_load_n(&lk->locked, __ATOMIC_RELAXED) != 0;
}

/* ------------------------------------------------------------------ tasks */

/*
 * struct task - a task, the runtime's process.  Fields are grouped by who may
 * touch them, as in xv6's struct proc.
 *
 * State ownership (who moves a task between states):
 *   UNUSED   -> EMBRYO    sy_spawn, under tree_lock (task_alloc)
 *   EMBRYO   -> RUNNABLE  sy_spawn, once the context is built
 *   RUNNABLE -> RUNNING   the CPU whose run queue held it (context_switch)
 *   RUNNING  -> RUNNABLE  the task itself (yield), on its CPU
 *   RUNNING  -> SLEEPING  the task itself (sleep), under its bucket lock
 *   SLEEPING -> RUNNABLE  a waker or sy_kill, under the same bucket lock
 *   SLEEPING -> RUNNING   the task itself, when its sleep fails before the
 *                         switch (killed, no memory for its timer), under
 *                         its bucket lock
 *   RUNNING  -> ZOMBIE    the task itself (sy_exit), under tree_lock, which
 *                         it drops before its last switch; `dying` stays
 *                         set until the next task on its CPU has released
 *                         its stack (finish_slow: sy__task_dead)
 *   ZOMBIE   -> UNUSED    its parent (sy_wait), under tree_lock, once `dying`
 *                         is clear; or, for a task without a parent, the
 *                         next task on its CPU (sy__task_dead)
 * A RUNNABLE task is on exactly one run queue; a SLEEPING one on exactly one
 * wait-queue bucket; no other task is on either.
 * Stack ownership: a task's stack belongs to it from spawn to its last
 * switch; the task that runs next on the same CPU releases it.
 */
struct task {
    /* --- saved context: written by the switch only; must stay first ---
     * Tasks are cache-line aligned: two tasks switching on two CPUs must not
     * share a line (288 unaligned bytes cost a third of the yield rate on 2
     * CPUs). */
    _Alignas(64) struct arch_ctx ctx;

    /* --- scheduler: touched only by the CPU that owns the task now --- */
    struct task *rq_next;   /* run queue link; free-list link when UNUSED */
    int state;              /* enum sy_state (see the table above) */
    int saved_errno;        /* the task's errno while it is not running */
    struct cpu *cpu;        /* CPU it runs on, or last ran on */
    int killed;             /* set by sy_kill (atomic), never cleared */
    bool in_tick;           /* preempted inside its tick handler: resumes
                               only on a host thread whose tick is blocked
                               (preempt.c: one tick frame per stack); next
                               to `state`, which every switch touches */
    bool wait_shared;       /* its wait on records may be ended by a plain
                               thread (wait.c: WAIT_SHARED) */

    /* --- placement and preemption: the task's own --- */
    int pin;                /* CPU index it must run on, or -1 */
    int preempt_count;      /* > 0: the tick must not switch it away */
    bool nopreempt;         /* SY_ATTR_NOPREEMPT */
    bool stay_home;         /* preempted: resumes on the CPU it left */
    int64_t slice_carry;    /* ns its last turn fell short of its due (> 0)
                               or ran over it (< 0), added to its next
                               turn (preempt.c: turns) */

    /* --- accounting that every switch updates: written by its CPU --- */
    uint64_t nvcsw;
    uint64_t wait_ns;
    uint64_t enq_ns;        /* when it last became RUNNABLE */

    /* --- a sleep: protected by the bucket lock of `chan` (sleep.c), or,
     * for a wait on records, by the token below (wait.h) --- */
    const void *chan;       /* what it sleeps on (WAIT_RECORDS: records),
                               NULL when not asleep */
    int wake_err;           /* 0, -EINTR (sy_kill) or -ETIMEDOUT (its timer) */
    uint32_t sleep_seq;     /* counts its sleeps: a late timer cannot wake a later one */

    /* --- waits on waiter records (wait.h): the token is claimed with a
     * compare-and-swap by the one waker that ends the wait, which then
     * takes wait_lock (held by the task across its switch) to make it
     * RUNNABLE --- */
    uint32_t wait_token;    /* sleep_seq << 1 | 1 while waiting (atomic) */
    sy_spinlock wait_lock;
    struct sy_waiter_ *wait_fired; /* the record that ended it, NULL: timer, kill */
    const void *wchan;      /* the object waited on, for sy_ps */
    int wait_kind;          /* enum wait_kind (wait.h), for sy_ps */

    /* (Everything from ctx to here fits in three cache lines: a wakeup and
     * a switch touch little else of a task, and with thousands of tasks -
     * a prime sieve's chain - each line they touch is a cache miss.  Cold
     * fields go below.) */

    /* --- a bucket sleep's links: bucket lock of `chan` --- */
    struct task *wq_next, *wq_prev;

    int mutexes;            /* sy_mutexes held (sync.c) */
    int rwlocks;            /* sy_rwlock holds taken less released (sync.c;
                               a read may be ended by another task: then
                               this count is off, harmless: both only
                               defer a kill at the tick) */
    int host_locks;         /* host locks it holds, also in preempt_count (hostlock.c) */
    struct once_frame *once_top; /* sy_once initialisers it runs (sync.c) */

    /* --- timer: protected by rt.timer_lock --- */
    uint64_t tm_deadline;   /* CLOCK_MONOTONIC ns */
    int32_t tm_index;       /* place in the timer heap, -1 when not in it */
    uint32_t tm_seq;        /* sleep_seq of the sleep it will end */
    int tm_firing;          /* popped and being fired (atomic) */

    /* --- family: protected by rt.tree_lock --- */
    int pid;
    int exit_status;
    int dying;              /* set by sy_exit until its stack is released
                               (atomic; task.c: nobody frees it before) */
    struct task *parent;    /* NULL for init and for orphans of a dead init */
    struct task *children;  /* live children */
    struct task *zombies;   /* exited children not yet reaped */
    struct task *sib_next, *sib_prev;

    /* --- entry, stack: set by spawn, fixed while the task lives --- */
    sy_fn fn;
    void *arg;
    char *stack_lo;         /* lowest usable byte; the guard is below */
    size_t stack_size;      /* usable bytes */


    /* --- the rest of the accounting: written by its CPU --- */
    uint64_t nivcsw;
    uint64_t nmigrations;   /* times it resumed on another CPU than before */
    uint64_t cpu_ns;        /* precise mode; tick mode uses ticks */
    uint64_t ticks;         /* accounting ticks charged to it */
    uint64_t long_since;    /* when its CPU was handed off from it (a long
                               call: handoff.c), 0 when not; atomic */
    uint32_t gen;           /* slot generation, part of the pid */
    uint32_t slot;
    char name[SY_NAME_MAX];
#if defined(SY_ASAN)
    void *asan_fake_stack;
#endif
#if defined(SY_TSAN)
    void *tsan_fiber;
#endif
#if defined(SY_DEBUG)
    int on_cpu;             /* the running guard: 1 from switch-in to finish */
#endif
};

/* Move t to state s, as the table above allows (checked in the debug
 * builds; the idle tasks, pid 0, are always RUNNING). */
static inline void task_set_state(struct task *t, int s)
{
#if defined(SY_DEBUG)
    static const unsigned char edges[] = {
        [SY_UNUSED] = 1u << SY_EMBRYO,
        [SY_EMBRYO] = 1u << SY_RUNNABLE,
        [SY_RUNNABLE] = 1u << SY_RUNNING,
        [SY_RUNNING] = 1u << SY_RUNNABLE | 1u << SY_SLEEPING | 1u << SY_ZOMBIE,
        [SY_SLEEPING] = 1u << SY_RUNNABLE | 1u << SY_RUNNING,
        [SY_ZOMBIE] = 1u << SY_UNUSED,
    };
    int from = READ_ONCE(t->state);
    if (t->pid != 0 && !(edges[from] & (1u << s)))
        sy__panic("state transition not in the table (internal.h)", t);
#endif
    WRITE_ONCE(t->state, s);
}

/* ----------------------------------------------------------------- CPUs */

/* Run queue: a FIFO of RUNNABLE tasks linked through rq_next.  Private to its
 * CPU: only the CPU that owns it pushes and pops, so it takes no lock. */
struct runq {
    struct task *head, *tail;
    unsigned long len;
};

#define STACK_CACHE 64 /* default-size stacks cached per CPU */
#define TINY_TASK_NS 10000 /* tasks living shorter than this are not migrated */

/* What the task switched to must do for the one that left (finish). */
#define FINISH_UNLOCK 0x1u /* release cpu->finish_lock */
#define FINISH_DEAD 0x2u   /* `last` exited: release its stack */
#define FINISH_REJOIN 0x4u /* `last` leaves a detached CPU: queue it on an
                              active one (handoff.c: sy__rejoin) */
#define FINISH_LONG 0x8u   /* `last` was in a long call (handoff.c): it is
                              no longer */

/*
 * struct cpu - a host thread that runs tasks: xv6's cpus[x], Linux's per-CPU
 * run queue.  The first group of fields is touched only by the host thread
 * itself (and its signal handlers); the second, on a cache line of its own,
 * by other CPUs too, with atomics.  A task may resume on another CPU after
 * any switch: never keep a struct cpu pointer across one.
 *
 * A struct cpu is a bundle of Go's P (the right to run tasks: the run
 * queue, the inbox, the slot among the active CPUs that balancing, kicks,
 * pins and wakeups aim at) and M (the host thread, its idle context, its
 * tick).  A hand-off (handoff.c) moves the P part of a bundle whose task is
 * stuck in a long call into a spare bundle, which takes its slot
 * (rt.cpus[slot]); the stuck bundle is then `detached`: it runs that one
 * task until the task can switch, and its thread then waits in the spare
 * pool.  A detached bundle's run queue stays empty and its inbox is
 * forwarded (runq.c: sy__forward).
 */
struct cpu {
    /* --- owner only --- */
    struct task *curr;        /* the running task (the idle task when idle) */
    struct runq rq;           /* private: no lock (runq.h) */
    int *errno_ptr;           /* this host thread's errno */
    unsigned finish;          /* FINISH_* work for finish_task_switch */
    sy_spinlock *finish_lock; /* lock the leaving task holds across the switch */
    uint64_t switch_ns;       /* precise mode: when curr started running */
    uint64_t nswitch;
    long host_waits;          /* tasks that went to sleep here on host objects,
                                 less those that woke here (hostsync.c: the
                                 sum over bundles is what waits; atomic stores
                                 by the owner, read by a deadlock check) */
    int id;                   /* the bundle's index in rt.bundles */
    int slot;                 /* its index among the active CPUs (sy_cpu,
                                 pins), or, detached, the one it last had */
    bool is_idle;             /* mirrors `idling`, for the owner (atomic
                                 store: the monitor reads it, handoff.c) */
    int need_resched;         /* the tick wanted to preempt: at the next safe point */
    bool tick_masked;         /* the tick signal is blocked on this host thread
                                 (preempt.c: a switch inside the handler) */
#if defined(SY_DEBUG)
#define LOCKDEP_DEPTH 8
    const sy_spinlock *held[LOCKDEP_DEPTH]; /* runtime locks it holds (spinlock.c) */
    unsigned char held_cls[LOCKDEP_DEPTH];  /* and their classes */
    int nheld;
#endif
    struct task *preempted;   /* RUNNABLE, off the queue: rejoins its tail at
                                 the end of the next task's turn (sched.c) */
    uint64_t tick_nswitch;    /* nswitch at the last tick */
    uint64_t tick_end_ns;     /* when the last tick was handled (preempt.c) */
    uint64_t tick_cpu_ns;     /* thread CPU time the ticks have charged up to */
    bool tick_was_blocked;    /* the thread had the tick's signal blocked before */
    uint64_t slice_ns;        /* how long the current task has had the CPU */
    int64_t slice_limit;      /* its turn: the quantum plus its carry */
    uint64_t slice_cpu0;      /* CPU-time tick: the thread's CPU time when a
                                 tick switched to the current task ... */
    uint64_t slice_cpu_nswitch; /* ... at that switch (nswitch), or ~0 */
    bool slice_exact;         /* slice_ns is CPU time since slice_cpu0 */
    uint64_t steal_backoff;   /* ns to wait before asking for work again */
    unsigned long nexits;     /* tasks that exited on it */
    unsigned long nexits_tick;/* nexits at its last tick */
    bool tiny_tasks;          /* its tasks live < TINY_TASK_NS: keep them */
    void *tick_timer;         /* timer_t of the accounting tick */
    void *altstack;           /* alternate signal stack (overflow report) */
    size_t altstack_size;
    stack_t old_altstack;
    pthread_t thread;
    unsigned nstack_cache;    /* pooled stacks private to this CPU */
    char *stack_cache[STACK_CACHE];
    struct task idle;         /* the host thread's own context, pid 0 */
    struct task *rejoin_task; /* FINISH_REJOIN's task */
    struct runq leftover;     /* detached: the tasks preempted on this thread
                                 that the hand-off left here (handoff.c);
                                 off the run queue, so that the task in the
                                 long call finds it empty and rejoins */
    struct task *long_task;   /* FINISH_LONG's task */
    int tid;                  /* the host thread's id (the monitor's probe) */
    bool counted_long;        /* detached with a task: counted in rt.nlong */

    /* --- shared with other CPUs (atomics only) --- */
    _Alignas(64) unsigned events; /* EV_* posted to it (runq.h) */
    int parked;               /* futex word: 1 while parked */
    int idling;               /* 1 while it has nothing to run (claimable) */
    int polling;              /* 1 while it is the poller (io.c): a kick
                                 writes the eventfd instead of the futex */
    void *file_done;          /* file jobs finished by workers (fileio.c) */
    void *ring;               /* its io_uring (uring.c), made by its own thread */
    struct task *inbox;       /* RUNNABLE tasks handed over by other CPUs */
    struct cpu *steal_req;    /* an idle CPU that asked it for work */
    int detached;             /* 1: its P went to another bundle, or it is a
                                 spare (handoff.c) */
    uint64_t handoff_req;     /* 1 + nswitch when the monitor sent its probe
                                 signal, 0: none */
    int spare_go;             /* futex word of a spare: SPARE_* (handoff.c) */
};

/* The CPU of the calling host thread, or NULL outside the runtime. */
extern __thread struct cpu *sy__cpu_tls __attribute__((tls_model("initial-exec")));

static inline struct cpu *this_cpu(void)
{
    return arch_this_cpu();
}

/* ---------------------------------------------------------- the runtime */

#define SLOT_BITS 22
#define MAX_TASKS_LIMIT (1 << SLOT_BITS)
#define TASK_CHUNK 1024 /* tasks per chunk of the task table */
#define WAITQ_BUCKETS 4096

struct waitq_bucket {
    sy_spinlock lock;
    struct task *head, *tail; /* sleepers, in the order they slept */
};

struct runtime {
    /* boot configuration, fixed while running */
    int ncpu;
    unsigned flags;
    size_t stack_size;       /* default, page-rounded */
    uint32_t max_tasks;
    uint64_t tick_ns;        /* the tick's period */
    uint64_t quantum_ns;     /* preemption quantum, 0: no preemption */
    bool tick_monotonic;     /* tick on CLOCK_MONOTONIC (short periods) */
    bool smp;                /* more than one host thread may run runtime
                                code: ncpu > 1, or a hand-off happened
                                (then it stays set); else the runtime's
                                locks are elided */
    uint64_t handoff_ns;     /* the hand-off bound, 0: no hand-off */
    struct cpu **cpus;       /* the active CPUs: slot i's bundle (atomic:
                                a hand-off replaces one; cpu_slot) */
    struct cpu *bundles;     /* every bundle: ncpu, then the spares */
    int nbundles;            /* ncpu + handoff_threads */
    int spare0;              /* index of the first spare bundle */
    int nlong;               /* detached bundles running a task (atomic):
                                tasks in long calls, which may wake others */

    /* the task table and tree: protected by tree_lock, on cache lines of
     * their own (spawn, exit and reap take it on every CPU: the read-mostly
     * configuration above and the idle CPUs' counters below stay clear) */
    _Alignas(64) sy_spinlock tree_lock;
    struct task **chunks;    /* chunks[slot / TASK_CHUNK] */
    uint32_t nslots;         /* slots handed out at least once */
    struct task *free_tasks; /* UNUSED slots, linked through rq_next */
    uint32_t ntasks;         /* slots in use (EMBRYO .. ZOMBIE) */
    uint32_t nlive;          /* tasks not yet ZOMBIE */
    struct task *init;       /* pid 1 while it lives, then NULL */
    int init_status;
    bool deadlocked;
    int boot_tid;            /* the host thread that called sy_run */

    /* accounting clock (tick mode): updated by each CPU's tick */
    _Alignas(64) uint64_t coarse_ns;

    /* CPUs (atomics): how many have nothing to run, how many are parked
     * with no timer to wake them (deadlock detection) */
    int nidle;
    int nparked;
    uint64_t park_epoch;      /* bumped by each CPU leaving a counted park */
    unsigned spread;          /* rotates the search for an idle CPU */

    /* timers: a min-heap of sleeping tasks by deadline, under timer_lock */
    sy_spinlock timer_lock;
    struct task **theap;
    uint32_t ntimers, captimers;
    uint64_t timer_next;      /* earliest deadline, UINT64_MAX if none (atomic) */
    struct cpu *timer_owner;  /* the idle CPU parked until timer_next (atomic) */

    struct waitq_bucket waitq[WAITQ_BUCKETS];
};

extern struct runtime sy__rt HIDDEN;
#define rt sy__rt

/* The runtime's own locks (tree_lock, wait-queue buckets, the stack pool).
 * With one CPU, only one host thread ever runs runtime code (other threads
 * get -EPERM, and the tick handler takes no lock), so they are elided, as
 * Linux's spinlocks compile away in a uniprocessor kernel - until a first
 * hand-off (handoff.c) puts a second host thread to work: rt.smp is set
 * then, in the handler of a thread interrupted outside the runtime, before
 * the spare starts, and stays set.  A lock the user passes to sy_sleep is
 * always taken for real. */
/* Lock classes, in the order they are taken (spinlock.c). */
enum lock_class {
    LOCK_TREE = 1,
    LOCK_COND,   /* a sy_cond's lock (sync.c) */
    LOCK_OBJ,    /* a sy_mutex's, sy_chan's, ... lock (wait.h) */
    LOCK_BUCKET,
    LOCK_WAIT,   /* a task's wait_lock (wait.h) */
    LOCK_TIMER,
    LOCK_POOL,
};

#if defined(SY_DEBUG)
HIDDEN void sy__lockdep_acquire_as(const sy_spinlock *lk, int cls);
HIDDEN void sy__lockdep_acquire(const sy_spinlock *lk);
HIDDEN void sy__lockdep_release(const sy_spinlock *lk);
HIDDEN bool sy__lock_held(const sy_spinlock *lk);
/* Linux's lockdep_assert_held: this CPU holds the runtime lock lk. */
#define assert_held(lk) SY_ASSERT(sy__lock_held(lk), NULL, "not held: " #lk)
HIDDEN bool sy__locks_only(const sy_spinlock *lk);
/* ... and no runtime lock but lk (NULL: none), as at a switch. */
#define assert_locks_only(lk) SY_ASSERT(sy__locks_only(lk), NULL, "runtime lock held")
#else
#define sy__lockdep_acquire(lk) ((void)0)
#define sy__lockdep_acquire_as(lk, cls) ((void)(cls))
#define sy__lockdep_release(lk) ((void)0)
#define assert_held(lk) ((void)0)
#define assert_locks_only(lk) ((void)0)
#endif

static inline void rt_lock(sy_spinlock *lk)
{
    sy__lockdep_acquire(lk); /* before the spin: an inversion that would
                                deadlock is reported, not hung on */
    if (rt.smp)
        spin_lock(lk);
}

static inline void rt_unlock(sy_spinlock *lk)
{
    sy__lockdep_release(lk);
    if (rt.smp)
        spin_unlock(lk);
}

/* The bundle that is active CPU i now (a hand-off may replace it). */
static inline struct cpu *cpu_slot(int i)
{
    return __atomic_load_n(&rt.cpus[i], __ATOMIC_ACQUIRE);
}

/* The clock that stamps RUNNABLE periods: exact with SY_ACCT_PRECISE, else
 * the coarse clock the tick keeps. */
HIDDEN uint64_t sy__now_ns(void);
static inline uint64_t acct_now(void)
{
    if (rt.flags & SY_ACCT_PRECISE)
        return sy__now_ns();
    return __atomic_load_n(&rt.coarse_ns, __ATOMIC_RELAXED);
}

/* Mark t RUNNABLE.  The caller owns the transition (see struct task) and
 * then queues it with sy__enqueue, after dropping the locks it holds. */
static inline void task_set_runnable(struct task *t)
{
    task_set_state(t, SY_RUNNABLE);
    t->enq_ns = acct_now();
}

#define TICK_SIGNAL SIGURG /* the tick (preempt.c): ignored by default, as Go's
                              preemption signal */

/* Block or unblock the tick on the calling host thread, CPU c: a switch
 * from inside the tick handler leaves it blocked (preempt.c), and
 * context_switch/finish_task_switch keep it so only while a preempted task
 * is on its way back out of its handler. */
static inline void tick_block(struct cpu *c, bool block)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, TICK_SIGNAL);
    pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
    c->tick_masked = block;
}

/* ------------------------------------------------------------ interfaces */

/* task.c */
HIDDEN struct task *sy__task_lookup(int pid); /* tree_lock held */
HIDDEN void sy__task_free(struct task *t);    /* tree_lock held */
HIDDEN void sy__task_dead(struct task *t);    /* finish_slow: t is off its stack */
HIDDEN int sy__tasks_init(void);
HIDDEN void sy__tasks_fini(void);
HIDDEN int sy__spawn(struct task *parent, sy_fn fn, void *arg, const sy_attr *attr,
                     int *pidp);
HIDDEN void sy__kill_all(void);
__attribute__((noreturn)) HIDDEN void sy__task_exit(struct cpu *c, int status);

/* sched.c */
HIDDEN void sy__make_runnable(struct task *t);
HIDDEN void sy__enqueue(struct task *t);
HIDDEN void sy__schedule(struct cpu *c, struct task *prev);
HIDDEN void sy__switch_from_idle(struct cpu *c, struct task *next);

/* sleep.c */
HIDDEN int sy__sleep(struct cpu *c, const void *chan, sy_spinlock *lk, uint64_t deadline);
HIDDEN int sy__wakeup(const void *chan, int max);
#define ANY_SLEEP UINT64_MAX /* sy__wake_sleeper: whichever sleep it is in */
HIDDEN bool sy__wake_sleeper(struct task *t, uint64_t seq, int err);
HIDDEN void sy__preempt(struct cpu *c, bool quantum_over);
HIDDEN void sy__resched(struct cpu *c);

/* A safe point after a runtime call: the reschedule a tick wanted happens
 * here, unless the task still must not be preempted (a held spinlock, a
 * sy_preempt_disable section: it happens when that ends). */
static inline void resched_point(struct cpu *c)
{
    if (unlikely(c->need_resched) && !c->curr->preempt_count)
        sy__resched(c);
}

/* cpu.c */
HIDDEN void sy__idle_loop(struct cpu *c);
__attribute__((noreturn)) void sy__task_start(struct task *last); /* switch.S */

/* stack.c */
HIDDEN int sy__stacks_init(void);
HIDDEN void sy__stacks_fini(void);
HIDDEN int sy__stack_alloc(size_t size, char **lo);
HIDDEN void sy__stack_free(char *lo, size_t size);
HIDDEN int sy__overflow_handler_install(struct cpu *c);
HIDDEN void sy__overflow_handler_remove(struct cpu *c);
HIDDEN size_t sy__page_size(void);
HIDDEN unsigned long sy__stacks_unguarded(void);
HIDDEN unsigned long sy__stacks_mapped(bool *guard_regions);


/* timer.c */
HIDDEN int sy__timer_add(struct task *t, uint64_t deadline);
HIDDEN void sy__timer_cancel(struct task *t);
HIDDEN void sy__run_timers(void);
HIDDEN void sy__timers_fini(void);

/* preempt.c */
HIDDEN int sy__tick_start(struct cpu *c);
HIDDEN void sy__tick_stop(struct cpu *c);
HIDDEN void sy__tick_park(struct cpu *c, bool parking);
HIDDEN void sy__tick_config(uint64_t tick_ns, uint64_t quantum_ns);
extern uint64_t sy__tick_delay_ns HIDDEN; /* testing: a slow handler */

/* sync.c */
HIDDEN void sy__once_abandon(struct task *p);

/* io.c */
HIDDEN bool sy__io_waiting(void);
/* hostsync.c: tasks wait on host objects, which plain threads may release:
 * not a deadlock while any do */
HIDDEN bool sy__host_waiting(void);
/* hostsync.c, hostlock.c: locks held by tasks that belong to a host thread
 * (FILE locks, glibc's robust, priority and process-shared objects): no
 * hand-off while any is held (handoff.c) */
extern int sy__thread_owned_holds HIDDEN;
HIDDEN bool sy__io_poll_now(void);
HIDDEN bool sy__io_claim(struct cpu *c);
HIDDEN void sy__io_park(struct cpu *c, uint64_t deadline);
HIDDEN void sy__io_unclaim(struct cpu *c);
HIDDEN void sy__io_kick(struct cpu *c);
HIDDEN bool sy__io_detached_serve(struct cpu *c);
HIDDEN bool sy__io_ready(struct cpu *c);
HIDDEN bool sy__io_poll_due(uint64_t now);
HIDDEN void sy__io_events(void);
HIDDEN void sy__io_fini(void);
HIDDEN void sy__io_wait_begin(struct cpu *c);
HIDDEN void sy__io_wait_end(void);

/* fileio.c */
HIDDEN void sy__file_done(struct cpu *c);
HIDDEN ssize_t sy__file_rw(int fd, void *buf, const void *cbuf, size_t n, bool write);
HIDDEN void sy__file_fini(void);

/* hostlock.c */
HIDDEN void sy__hostlock_init(void);

/* cpu.c: a host thread becomes bundle c, or stops being one */
HIDDEN int sy__cpu_enter(struct cpu *c);
HIDDEN void sy__cpu_leave(struct cpu *c);

/* handoff.c */
HIDDEN int sy__handoff_init(void);
HIDDEN void sy__handoff_fini(void);
HIDDEN void sy__monitor_stop(void);
HIDDEN bool sy__handoff_probe(struct cpu *c, struct task *t, void *uc);
HIDDEN bool sy__retire(struct cpu *c);
HIDDEN void sy__monitor_wake(void);
HIDDEN void sy__spares_stop(void);
HIDDEN struct cpu *sy__active_cpu(struct cpu *d, struct task *t);
HIDDEN bool sy__pc_long_call(uintptr_t pc); /* preempt.c */
HIDDEN void sy__file_forward(struct cpu *from, struct cpu *to); /* fileio.c */
/* sched.c */
HIDDEN void sy__rejoin(struct cpu *c);
HIDDEN void sy__preempt_leftover(struct cpu *c);


#endif /* SY_INTERNAL_H */
