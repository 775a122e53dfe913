/*
 * switchyard.h - the one public header of Switchyard, a user-space
 * context-switching runtime: lightweight tasks with their own stacks,
 * kernel-style task states and lifecycle, sleep/wakeup and a scheduler.
 *
 * Conventions (as in libuv):
 *   - every public name starts with sy_ (types, functions) or SY_ (macros);
 *   - calls that can fail return a negative errno value (-EINVAL, -ENOMEM,
 *     ...); sy_strerror() turns one into text;
 *   - every call made from a host thread that is not running Switchyard
 *     (outside sy_run, or from a thread of your own) returns -EPERM.
 *
 * A program boots the runtime with sy_run(), which runs one task, init
 * (pid 1), and returns once no task is left.  Tasks spawn children, exit with
 * a status, wait for their children, kill each other, yield, and sleep on
 * channels until woken, with the semantics of xv6's proc.c.
 *
 * Task states (Linux's and xv6's names):
 *   EMBRYO    being built by sy_spawn (stack and context not ready yet)
 *   RUNNABLE  ready, on a run queue
 *   RUNNING   on a CPU now
 *   SLEEPING  blocked in sy_sleep / sy_wait
 *   ZOMBIE    exited, its status not yet collected by sy_wait
 */
#ifndef SWITCHYARD_H
#define SWITCHYARD_H

#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SY_VERSION_MAJOR 0
#define SY_VERSION_MINOR 1

#if defined(__GNUC__)
#define SY_API __attribute__((visibility("default")))
#else
#define SY_API
#endif

/* ---------------------------------------------------------------- boot */

/* Flags for sy_config.flags. */
#define SY_ACCT_PRECISE 0x1u /* per-task CPU time measured at every switch
                                (two clock reads per switch) instead of
                                sampled on the accounting tick */
#define SY_PIN_CPUS 0x2u     /* pin CPU i to the i-th core the process may
                                run on (its affinity mask) */
#define SY_NO_PREEMPT 0x4u   /* never preempt: tasks switch only when they
                                call into the runtime (cooperative) */
#define SY_NO_HANDOFF 0x8u   /* never hand a CPU off from a task stuck in a
                                long call (see sy_config.handoff_us); the
                                environment variable SY_HANDOFF=0 does the
                                same for a program that does not set it */

#define SY_QUANTUM_DEFAULT_US 10000 /* 10 ms, as Go's */

#define SY_MAX_CPUS 1024

/* Runtime configuration.  Zero (or a NULL pointer) means "the default" for
 * every field, so `sy_config c = {0};` is a valid configuration. */
typedef struct sy_config {
    int ncpu;             /* host threads that run tasks ("CPUs"), 1 ..
                             SY_MAX_CPUS; default: as many as the process
                             may run on (sched_getaffinity).  The thread
                             that calls sy_run is CPU 0.  More CPUs than
                             cores is fine (they are threads); should the
                             system refuse some of them (a thread, or a
                             timer: qemu-user has 32), it runs with the
                             first ones it got: sy_ncpu() says how many. */
    int max_tasks;        /* most tasks alive at once (zombies count);
                             1 .. 4194304, default 4194304 */
    size_t stack_size;    /* default task stack size in bytes, SY_STACK_MIN
                             .. SY_STACK_MAX; default SY_STACK_DEFAULT;
                             rounded up to pages */
    unsigned flags;       /* SY_ACCT_PRECISE, SY_PIN_CPUS, SY_NO_PREEMPT,
                             SY_NO_HANDOFF;
                             any other bit: -EINVAL */
    unsigned tick_us;     /* accounting tick in microseconds of a CPU's own
                             running time, 100 .. 1000000; default 4000
                             (never longer than the quantum; below 4000
                             on CLOCK_MONOTONIC, as a short quantum) */
    unsigned quantum_us;  /* preemption: a task that has run this long
                             without giving up its CPU is switched away
                             (at a safe point, see sy_preempt_disable);
                             100 .. 10000000 (checked with SY_NO_PREEMPT
                             too), default SY_QUANTUM_DEFAULT_US.
                             Below 4000 the tick runs on CLOCK_MONOTONIC and
                             may interrupt blocking system calls that
                             SA_RESTART does not restart (poll, epoll_wait,
                             nanosleep, ...: EINTR) */
    unsigned handoff_us;  /* the hand-off bound: a task that stays this long
                             in code the tick may not switch (a shared
                             library, the C library, a blocking system call
                             the runtime does not know: compress2, qsort, a
                             read on a pipe, waitpid, flock) while other work
                             waits for its CPU no longer holds that CPU: the
                             CPU's run queue, inbox and timer and poller
                             duties go on on a spare host thread, while the
                             stuck thread finishes the call.  When the call
                             returns, the task is an ordinary task again: at
                             its first runtime call that may switch (a
                             yield, a sleep, a lock or channel wait, an I/O
                             call, exit) it queues itself on a CPU (as a Go
                             goroutine returning from a system call whose P
                             was retaken) and its thread goes back to the
                             spare pool.  Until then sy_ps shows it RUNNING
                             with long_call_ns, and it runs on that thread
                             beside the CPU's other tasks (on one CPU, two
                             tasks at once for that while: exclusion needs
                             a lock, not sy_preempt_disable).  A task inside
                             sy_preempt_disable(), holding a spinlock or a
                             host lock, or spawned SY_ATTR_NOPREEMPT is
                             never handed off; a task preempted on the
                             stuck thread stays with it (it must resume on
                             that thread) and waits for the call.  Its
                             errno, FP state, pid and
                             accounting are its own throughout; a kill takes
                             effect when the call returns.  1000 ..
                             10000000; default twice the quantum, at least
                             1000 (with SY_NO_PREEMPT: off unless set, so
                             that cooperative stays cooperative).  A
                             monitor thread checks the CPUs every half bound
                             (50 ms at most) while any of them runs a task,
                             and sleeps while they are all idle.  Under
                             ThreadSanitizer a thread blocked in a system
                             call is not handed off (TSan runs no signal
                             handler there).  Off with SY_NO_HANDOFF or
                             SY_HANDOFF=0 in the environment. */
    int handoff_threads;  /* the most spare host threads the hand-off may
                             start (lazily, on the first hand-offs; they
                             stay until sy_run returns), 0 .. 1024, default
                             4 (0: the default).  With all of them busy in
                             long calls, a further stuck CPU waits for one
                             of those calls to return (or for its own), as
                             without the hand-off: nothing fails. */
} sy_config;

/* Task entry point.  Returning from it is sy_exit(return value). */
typedef int (*sy_fn)(void *arg);

/* Boot the runtime on the calling thread (it becomes CPU 0), run `init` as
 * pid 1, and return pid 1's exit status once no task is left.
 *
 * When pid 1 exits, every task still alive is killed (as when the init of a
 * Linux pid namespace dies): their blocking calls return -EINTR and they
 * exit with SY_EXIT_KILLED at their next kill point; sy_run returns once the
 * last of them is gone.  If every task is asleep and nothing can wake any of
 * them (every CPU idle, no timer pending: a deadlock), the runtime prints
 * its task table on stderr, kills every task the same way, and sy_run
 * returns -EDEADLK.
 *
 * Errors (nothing runs): -EINVAL for a NULL init or a bad config field,
 * -EBUSY when a runtime is already running in this process, -ENOMEM,
 * or the errno of a failed system call.  Exit statuses of init that are
 * negative are therefore ambiguous; keep them >= 0 if that matters. */
SY_API int sy_run(const sy_config *cfg, sy_fn init, void *arg);

/* ------------------------------------------------------------- tasks */

#define SY_STACK_DEFAULT (64u * 1024u) /* default stack: 64 KiB, committed
                                          lazily, a guard page below */
#define SY_STACK_MIN (16u * 1024u)
/* The most stack that preemption adds to a task, below the frame it was
 * running in: one tick frame at most, ever (the tick is blocked while its
 * handler runs, and across a switch from inside it).  That is the kernel's
 * signal frame (the x86-64 red zone, siginfo, ucontext and the whole
 * register state: 3.4 KiB with AVX-512's XSAVE area; on AArch64, 4.6 KiB with
 * FPSIMD and up to 13 KiB with SVE at its largest vector length, 2048 bits)
 * plus the handler's own frames down to the switch (under 2 KiB; more in
 * the sanitizer builds).  Leave this much room when sizing a stack with
 * SY_STACK_MIN; tests/t_preempt.c measures it. */
#if defined(__aarch64__)
#define SY_STACK_PREEMPT (16u * 1024u)
#else
#define SY_STACK_PREEMPT (8u * 1024u)
#endif
#define SY_STACK_MAX (1024u * 1024u * 1024u)
#define SY_NAME_MAX 16 /* task names are cut to 15 bytes + NUL */

/* Flags for sy_attr.flags. */
#define SY_ATTR_PIN 0x1u       /* run only on CPU `cpu` (0 .. ncpu-1) */
#define SY_ATTR_NOPREEMPT 0x2u /* never preempted (switches only in calls) */

/* Attributes for sy_spawn; NULL means all defaults. */
typedef struct sy_attr {
    const char *name;  /* copied; NULL: "task" */
    size_t stack_size; /* 0: the runtime default; else SY_STACK_MIN ..
                          SY_STACK_MAX, rounded up to pages.  Stacks of the
                          default size are pooled; another size is mapped
                          and unmapped per task (system calls at each spawn
                          and exit): a server spawning a task per
                          connection sets its size in sy_config */
    unsigned flags;    /* SY_ATTR_PIN, SY_ATTR_NOPREEMPT; other bits: -EINVAL */
    int cpu;           /* with SY_ATTR_PIN: the CPU it is pinned to, 0 ..
                          sy_ncpu()-1, else -EINVAL; ignored without it */
} sy_attr;

/* Spawn a child of the calling task running fn(arg).  The child is EMBRYO
 * while its stack is built, then RUNNABLE; the caller keeps running.  It
 * starts on an idle CPU if there is one, else on the caller's.
 * Returns the child's pid (> 0), or -EINVAL (NULL fn, bad attr), -ENOMEM
 * (no memory for its stack), -EAGAIN (max_tasks reached), -EPERM.
 * A failed spawn leaks nothing.  A kill point. */
SY_API int sy_spawn(sy_fn fn, void *arg, const sy_attr *attr);

/* Exit the calling task with `status` (any int, collected exactly): it
 * becomes a ZOMBIE until its parent collects the status with sy_wait.  Its
 * children are handed to init (pid 1), which reaps them in its own waits.
 * Never returns when called from a task; returns -EPERM from any other
 * thread. */
SY_API int sy_exit(int status);

/* The status of a task that exited because it was killed. */
#define SY_EXIT_KILLED 137 /* 128 + SIGKILL, as a shell reports it */

/* Flags for sy_wait. */
#define SY_WNOHANG 0x1 /* don't sleep; return 0 when no child is a zombie */

/* Wait for a child to exit and reap it.  pid -1: any child; pid > 0: that
 * child.  Sleeps until such a child is a ZOMBIE, stores its exit status in
 * *status (if status is not NULL), frees it and returns its pid.
 * Returns 0 with SY_WNOHANG when no such child has exited yet;
 * -ECHILD when the caller has no such child; -EINTR when the caller is
 * killed while it waits; -EINVAL for a bad pid (0 or < -1) or bad flags
 * (any bit but SY_WNOHANG).
 * A kill point on entry. */
SY_API int sy_wait(int pid, int *status, int flags);

/* Kill a task: mark it killed.  If it is asleep in sy_sleep or sy_wait it is
 * woken and that call returns -EINTR; it exits with SY_EXIT_KILLED at its
 * next kill point (sy_yield, sy_spawn, sy_wait).  A task can kill itself.
 * Returns 0, or -ESRCH when no live task has that pid (pids <= 0, zombies,
 * reaped tasks: a reaped task's pid names nobody until its table slot has
 * been reused 512 times; 511 for the last slot, 4194303, whose 512th
 * generation would make a pid past INT_MAX). */
SY_API int sy_kill(int pid);

/* 1 if the calling task has been killed, else 0 (-EPERM outside a task). */
SY_API int sy_killed(void);

/* Give the CPU to the next runnable task, if any; returns 0 (or -EPERM).
 * A kill point. */
SY_API int sy_yield(void);

/* The calling task's pid (-EPERM outside a task). */
SY_API int sy_self(void);

/* The CPU the calling task runs on now (0 .. ncpu-1), and how many CPUs the
 * runtime has (-EPERM outside a task).  After any call that may switch, a
 * task may be on another CPU. */
SY_API int sy_cpu(void);
SY_API int sy_ncpu(void);

/* The pid of the calling task's parent; 0 for init, or for a task orphaned
 * after init exited (-EPERM outside a task). */
SY_API int sy_parent(void);

/* ------------------------------------------------------ sleep / wakeup */

/* A spinlock for the condition that guards a sleep, as in xv6.  Initialise
 * with SY_SPINLOCK_INIT or zero.  Never held across a sleep. */
typedef struct sy_spinlock {
    int locked;
} sy_spinlock;
#define SY_SPINLOCK_INIT {0}
SY_API void sy_spin_lock(sy_spinlock *lk);
SY_API void sy_spin_unlock(sy_spinlock *lk);

/* Sleep on channel `chan` (any address) until sy_wakeup(chan), xv6's
 * sleep(chan, lk): the caller holds `lk`, which guards the condition it
 * waits for; sy_sleep releases it only once the task is on the channel's
 * wait queue and marked SLEEPING, so a wakeup issued under `lk` is never
 * lost, and re-acquires it before returning.  `lk` may be NULL when nothing
 * else can race (one CPU, no foreign wakers).
 * Returns 0 when woken, -EINTR when the task is killed (before or while it
 * sleeps; `lk` is held again either way), -EINVAL for a NULL chan, -EPERM.
 * Like xv6's, a wakeup does not promise the condition: sleep in a loop. */
SY_API int sy_sleep(const void *chan, sy_spinlock *lk);

/* Wake every task sleeping on `chan`; returns how many were woken (or
 * -EPERM, -EINVAL for a NULL chan). */
SY_API int sy_wakeup(const void *chan);

/* Wake at most one task sleeping on `chan` (the one that slept first). */
SY_API int sy_wakeup_one(const void *chan);

/* sy_sleep with a timeout: as sy_sleep, or -ETIMEDOUT once `ns`
 * nanoseconds have passed without a wakeup (0: as soon as the timers run).
 * A deadline past what CLOCK_MONOTONIC can count (UINT64_MAX) never comes:
 * the task sleeps until woken or killed. */
SY_API int sy_sleep_timeout(const void *chan, sy_spinlock *lk, uint64_t ns);

/* Sleep for `ns` nanoseconds (CLOCK_MONOTONIC); the CPU runs other tasks
 * meanwhile.  Returns 0, or -EINTR if the task is killed.  0 ns: a yield;
 * UINT64_MAX: until killed.
 * When every CPU is busy, timers are noticed on the accounting tick: they
 * may fire up to a tick (4 ms) late. */
SY_API int sy_nanosleep(uint64_t ns);

/* ------------------------------------------------------------ deadlines */

/* Every call that can block has a form that takes a deadline, named
 * ..._until (as sy_sleep_until): an absolute time on the runtime's clock,
 * sy_now(), in nanoseconds.  SY_FOREVER means no deadline.  A deadline that
 * has passed (0, say) makes the call return -ETIMEDOUT instead of waiting
 * when it would have to wait; it still succeeds when it need not wait.
 * The calls without _until wait forever.  Every such wait is a kill point:
 * a task killed before or while it waits gets -EINTR (the call did nothing).
 * A call that returns early (deadline, kill) leaves nothing behind. */
#define SY_FOREVER INT64_C(-1)

/* CLOCK_MONOTONIC in nanoseconds; works outside tasks too. */
SY_API int64_t sy_now(void);

/* sy_sleep with a deadline: 0 when woken, -ETIMEDOUT once the deadline has
 * passed, -EINTR when killed; lk is held again on return. */
SY_API int sy_sleep_until(const void *chan, sy_spinlock *lk, int64_t deadline);

/* ---------------------------------------------------- synchronization */

/* Locks, conditions, semaphores, wait groups, once and channels for tasks.
 * A task that waits sleeps (its CPU runs others); these work across CPUs.
 * Objects other than channels are plain structs, statically initialised
 * with their SY_..._INIT or with zeros (or by their _init call); they must
 * not be copied once used.  Every call returns 0 or a negative errno:
 * -EINVAL for a NULL or destroyed object, -EPERM from outside a task (but
 * the _init calls, which only fill the struct, work anywhere).  The
 * waits follow the deadline convention above.  Destroying an object that a
 * task waits on (or a locked mutex) returns -EBUSY and changes nothing; a
 * task still inside a wait that has just been ended (by the object, its
 * deadline or a kill) counts as waiting until that call returns.
 * The fields are private. */

struct sy_waiter_;
typedef struct sy_waitq_ {
    struct sy_waiter_ *head_, *tail_;
} sy_waitq_;

/* sy_mutex: a sleeping lock owned by the task that locked it.  A waiter
 * sleeps; unlock wakes one, and a task that comes along meanwhile may take
 * the lock first (fast), unless some waiter has waited over 1 ms: then the
 * mutex hands itself to its waiters in order until none has waited that
 * long (Go's starvation mode), so no waiter starves.  Not recursive.
 * A task that exits holding mutexes is reported on stderr; sy_mutex_owner
 * names the holder and sy_ps shows what each task waits on. */
typedef struct sy_mutex {
    uint64_t word_;
    sy_spinlock lock_;
    int waits_;
    sy_waitq_ q_;
} sy_mutex;
#define SY_MUTEX_INIT {0, {0}, 0, {0, 0}}

SY_API int sy_mutex_init(sy_mutex *m);
/* -EBUSY when it is locked or waited for. */
SY_API int sy_mutex_destroy(sy_mutex *m);
/* 0 once locked; -EDEADLK if the caller holds it already; -EINTR. */
SY_API int sy_mutex_lock(sy_mutex *m);
SY_API int sy_mutex_lock_until(sy_mutex *m, int64_t deadline);
/* 0, or -EBUSY when another task holds it (-EDEADLK: the caller does). */
SY_API int sy_mutex_trylock(sy_mutex *m);
/* -EPERM when the caller does not hold it. */
SY_API int sy_mutex_unlock(sy_mutex *m);
/* The pid of the task holding it, 0 when unlocked (or -EINVAL). */
SY_API int sy_mutex_owner(const sy_mutex *m);

/* sy_cond: a condition variable used with a sy_mutex.  wait unlocks the
 * mutex and sleeps, atomically (a signal sent by a holder of the mutex
 * after the wait began is never lost), and locks it again before
 * returning, whatever it returns (also -EINTR and -ETIMEDOUT).  Wakeups may
 * be spurious: wait in a loop.  -EPERM when the caller does not hold the
 * mutex. */
typedef struct sy_cond {
    sy_spinlock lock_;
    int spare_;
    int waits_;
    sy_waitq_ q_;
} sy_cond;
#define SY_COND_INIT {{0}, 0, 0, {0, 0}}

SY_API int sy_cond_init(sy_cond *cv);
SY_API int sy_cond_destroy(sy_cond *cv);
SY_API int sy_cond_wait(sy_cond *cv, sy_mutex *m);
SY_API int sy_cond_wait_until(sy_cond *cv, sy_mutex *m, int64_t deadline);
/* Wake one waiter / every waiter; 0 (or -EINVAL). */
SY_API int sy_cond_signal(sy_cond *cv);
SY_API int sy_cond_broadcast(sy_cond *cv);

/* sy_sem: a counting semaphore.  post hands a unit straight to the task
 * that has waited longest, if any. */
typedef struct sy_sem {
    uint64_t word_;
    sy_spinlock lock_;
    int waits_;
    sy_waitq_ q_;
} sy_sem;
#define SY_SEM_INIT(n) {(uint64_t)(uint32_t)(n), {0}, 0, {0, 0}}
#define SY_SEM_MAX 0x7fffffff

/* -EINVAL for a value above SY_SEM_MAX. */
SY_API int sy_sem_init(sy_sem *s, unsigned value);
SY_API int sy_sem_destroy(sy_sem *s);
SY_API int sy_sem_wait(sy_sem *s);
SY_API int sy_sem_wait_until(sy_sem *s, int64_t deadline);
/* 0, or -EAGAIN when the count is 0. */
SY_API int sy_sem_trywait(sy_sem *s);
/* 0, or -EOVERFLOW when the count is at SY_SEM_MAX. */
SY_API int sy_sem_post(sy_sem *s);
/* The current count (>= 0), or -EINVAL. */
SY_API int sy_sem_value(const sy_sem *s);

/* sy_rwlock: many readers or one writer.  A waiting writer keeps new
 * readers out (writers do not starve), and a writer's unlock lets in every
 * reader that waited (readers do not starve either). */
typedef struct sy_rwlock {
    sy_spinlock lock_;
    int readers_;  /* readers inside; -1: a writer is */
    int writer_;   /* pid of the writer inside */
    int wwait_;    /* writers waiting */
    int waits_;
    sy_waitq_ q_;
} sy_rwlock;
#define SY_RWLOCK_INIT {{0}, 0, 0, 0, 0, {0, 0}}

SY_API int sy_rwlock_init(sy_rwlock *rw);
SY_API int sy_rwlock_destroy(sy_rwlock *rw);
SY_API int sy_rwlock_rdlock(sy_rwlock *rw);
SY_API int sy_rwlock_rdlock_until(sy_rwlock *rw, int64_t deadline);
SY_API int sy_rwlock_tryrdlock(sy_rwlock *rw);      /* -EBUSY (-EDEADLK: the caller
                                                       holds the write lock) */
/* -EDEADLK when the caller holds the write lock already (also from the
 * read calls).  A writer that holds a read lock waits for ever: readers are
 * not named. */
SY_API int sy_rwlock_wrlock(sy_rwlock *rw);
SY_API int sy_rwlock_wrlock_until(sy_rwlock *rw, int64_t deadline);
SY_API int sy_rwlock_trywrlock(sy_rwlock *rw);      /* -EBUSY */
/* Ends a read or the write lock; -EPERM when the caller holds neither
 * (readers are counted, not named: any task inside as a reader may end a
 * read). */
SY_API int sy_rwlock_unlock(sy_rwlock *rw);

/* sy_waitgroup: wait for a count of things to be done (Go's WaitGroup). */
typedef struct sy_waitgroup {
    sy_spinlock lock_;
    int spare_;
    int64_t count_;
    int waits_;
    sy_waitq_ q_;
} sy_waitgroup;
#define SY_WAITGROUP_INIT {{0}, 0, 0, 0, {0, 0}}

SY_API int sy_waitgroup_init(sy_waitgroup *wg);
SY_API int sy_waitgroup_destroy(sy_waitgroup *wg);
/* Add n (may be negative) to the counter; at 0 every waiter wakes.
 * -EINVAL if the counter would go below 0 (nothing changes). */
SY_API int sy_waitgroup_add(sy_waitgroup *wg, int64_t n);
SY_API int sy_waitgroup_done(sy_waitgroup *wg); /* add -1 */
/* Sleep until the counter is 0. */
SY_API int sy_waitgroup_wait(sy_waitgroup *wg);
SY_API int sy_waitgroup_wait_until(sy_waitgroup *wg, int64_t deadline);

/* sy_once: run an initialiser exactly once.  Other callers sleep until it
 * has returned.  Returns 0 once it has run; -EINTR (killed while waiting
 * for another task's run; the initialiser has not necessarily run);
 * -EDEADLK when called again from inside the initialiser.  If the task
 * running the initialiser exits inside it (killed at a kill point or a
 * tick), the once is not run: a caller waiting for it runs it instead. */
typedef struct sy_once {
    int state_;
    sy_spinlock lock_;
    sy_waitq_ q_;
} sy_once;
#define SY_ONCE_INIT {0, {0}, {0, 0}}
SY_API int sy_once_run(sy_once *once, void (*fn)(void *arg), void *arg);

/* sy_chan: a channel of fixed-size elements (Go's), unbuffered (capacity 0:
 * a send waits for a receiver and hands it the element directly) or
 * buffered.  Elements are copied in and out by value.
 *
 * Closing: a send on a closed channel returns -EPIPE (also to senders
 * waiting when it closes: their element was not sent); a receive returns
 * what is left in the buffer, then -EPIPE ("closed and drained").
 * A channel may be used from any CPU. */
typedef struct sy_chan sy_chan;

/* Create a channel of elements of elem_size bytes (1 .. 65536) and room for
 * `capacity` of them (0 .. 1<<24).  0, -EINVAL, -ENOMEM, -EPERM. */
SY_API int sy_chan_create(sy_chan **ch, size_t elem_size, size_t capacity);
/* Free it: -EBUSY while a task waits on it (a send, receive or select). */
SY_API int sy_chan_destroy(sy_chan *ch);
SY_API int sy_chan_send(sy_chan *ch, const void *elem);
SY_API int sy_chan_send_until(sy_chan *ch, const void *elem, int64_t deadline);
/* 0, or -EAGAIN when it would wait (-EPIPE when closed). */
SY_API int sy_chan_trysend(sy_chan *ch, const void *elem);
SY_API int sy_chan_recv(sy_chan *ch, void *elem);
SY_API int sy_chan_recv_until(sy_chan *ch, void *elem, int64_t deadline);
SY_API int sy_chan_tryrecv(sy_chan *ch, void *elem);
/* Close: wakes every waiter.  -EPIPE if it was closed already. */
SY_API int sy_chan_close(sy_chan *ch);
/* Elements in the buffer now, or -EINVAL. */
SY_API int sy_chan_len(const sy_chan *ch);

/* sy_select: wait until one of several channel operations can proceed, do
 * it (only it), and return its index (Go's select).  A case whose chan is
 * NULL is never ready (disabled).  When several are ready, one is chosen
 * at random.  Each case's `err` is set for the case taken: 0, or -EPIPE
 * (its channel is closed: a send did not happen; a receive found it
 * drained).  With a deadline that has passed (0) it returns -ETIMEDOUT at
 * once when no case is ready: that is Go's `default:`.
 * Returns the index, -ETIMEDOUT, -EINTR, -EINVAL (ncases < 0, more than
 * SY_SELECT_MAX, NULL cases with ncases > 0, a bad op or a NULL elem),
 * -ENOMEM (over 16 cases: their records are allocated), -EPERM. */
#define SY_SEND 1
#define SY_RECV 2
#define SY_SELECT_MAX 4096
typedef struct sy_select_case {
    sy_chan *chan;
    int op;     /* SY_SEND or SY_RECV */
    int err;    /* out: the result of the case taken */
    void *elem; /* send: the element to send; recv: where to store it
                   (may be NULL: received and dropped) */
} sy_select_case;
SY_API int sy_select(sy_select_case *cases, int ncases, int64_t deadline);

/* ----------------------------------------------------------------- I/O */

/* Blocking I/O that sleeps the task, not its CPU: while a task waits for a
 * socket, a pipe or a terminal to become readable or writable, its CPU runs
 * other tasks.  Each call is its system call's namesake (same arguments,
 * same result) but returns -errno instead of setting errno, and has an
 * _until form with a deadline (see "deadlines": -ETIMEDOUT).  Every wait is
 * a kill point (-EINTR; nothing was transferred).  Outside tasks they
 * return -EPERM.
 *
 * Backends (sy_io_backend() says which runs):
 *   - io_uring (the default), through liburing: one ring per CPU.  A task
 *     puts its request in its CPU's ring and sleeps; the CPU submits its
 *     tasks' requests in batches and hands out the completions, which wake
 *     the tasks (they may then run on another CPU).  A CPU with nothing to
 *     run but requests in flight sleeps in its ring.  A kill, a deadline or
 *     a sy_close while a request is in flight cancels it, and the call
 *     returns only once the kernel is done with the buffer: the error if the
 *     request was cancelled, what it transferred if it completed anyway
 *     (an accept or openat that completed anyway has its new fd closed).
 *     Files go through the ring too (the kernel's workers, 4 per CPU).
 *   - epoll, when the ring cannot be set up - a kernel without io_uring
 *     (before 5.19 features are missing too, and it falls back), the
 *     kernel.io_uring_disabled sysctl, a seccomp profile that refuses it
 *     (Docker's default returns EPERM), a build with URING=0 (the AArch64
 *     cross build), an emulator without the system calls (ENOSYS) - or
 *     when the environment says SY_IO=epoll.  One edge-triggered epoll for
 *     the runtime (Go's netpoller): a task tries the operation without
 *     blocking and, if the fd is not ready, sleeps on the fd's waiter queue
 *     until the poller sees it ready.  One idle CPU at a time sleeps in
 *     epoll_wait; busy CPUs poll at their ticks.  Files run on a pool of
 *     worker threads (below).
 * The backend is chosen once per sy_run, by the first call that needs one.
 * On both, a program whose every task waits on I/O is not deadlocked.
 * sy_poll waits through the epoll on both.
 *
 * What this means for your fds:
 *   - epoll: the runtime sets O_NONBLOCK on an fd the first time a task
 *     waits on it (as Go does), and leaves it set (sy_poll does so on both
 *     backends); the ring leaves the flags alone, and polls an fd that you
 *     made non-blocking before it tries again;
 *   - sy_close (or a plain close(), which the library interposes) from a
 *     task wakes the tasks waiting on the fd with -EBADF and forgets the
 *     fd, so that the number's next life starts afresh; a close() from a
 *     plain thread forgets it but wakes nobody, and a close inside the C
 *     library (fclose's) is not seen: sy_close such fds first;
 *   - sy_write and sy_send write the whole buffer, as the blocking calls do
 *     (a deadline or a kill midway returns the count written);
 *   - epoll: sy_readv, sy_writev, sy_recv... on a regular file run on the
 *     task's CPU and block it while the disk works (sy_read, sy_write do not).
 *
 * Files: epoll cannot wait for regular files, so there sy_read and sy_write
 * on one, and the calls below, run on a small pool of worker threads (4 at
 * most, started on demand) while the task sleeps.  On both backends the
 * calls below run to completion: a kill takes effect at the task's next
 * kill point, and they have no deadline. */
SY_API ssize_t sy_read(int fd, void *buf, size_t n);
SY_API ssize_t sy_read_until(int fd, void *buf, size_t n, int64_t deadline);
SY_API ssize_t sy_write(int fd, const void *buf, size_t n);
SY_API ssize_t sy_write_until(int fd, const void *buf, size_t n, int64_t deadline);
SY_API ssize_t sy_readv(int fd, const struct iovec *iov, int iovcnt);
SY_API ssize_t sy_readv_until(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
SY_API ssize_t sy_writev(int fd, const struct iovec *iov, int iovcnt);
SY_API ssize_t sy_writev_until(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
SY_API ssize_t sy_recv(int fd, void *buf, size_t n, int flags);
SY_API ssize_t sy_recv_until(int fd, void *buf, size_t n, int flags, int64_t deadline);
SY_API ssize_t sy_send(int fd, const void *buf, size_t n, int flags);
SY_API ssize_t sy_send_until(int fd, const void *buf, size_t n, int flags, int64_t deadline);
SY_API ssize_t sy_recvmsg(int fd, struct msghdr *msg, int flags);
SY_API ssize_t sy_recvmsg_until(int fd, struct msghdr *msg, int flags, int64_t deadline);
SY_API ssize_t sy_sendmsg(int fd, const struct msghdr *msg, int flags);
SY_API ssize_t sy_sendmsg_until(int fd, const struct msghdr *msg, int flags, int64_t deadline);
/* The new fd, in blocking mode as accept(2) makes it (flags: accept4's). */
SY_API int sy_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
SY_API int sy_accept_until(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
                           int64_t deadline);
/* 0 once connected, or the connection's error (-ECONNREFUSED, ...). */
SY_API int sy_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
SY_API int sy_connect_until(int fd, const struct sockaddr *addr, socklen_t addrlen,
                            int64_t deadline);
SY_API int sy_shutdown(int fd, int how);
/* Wake every task waiting on fd (their calls return -EBADF), then close it. */
SY_API int sy_close(int fd);
SY_API ssize_t sy_pread(int fd, void *buf, size_t n, off_t off);
SY_API ssize_t sy_pwrite(int fd, const void *buf, size_t n, off_t off);
SY_API int sy_fsync(int fd);
SY_API int sy_fdatasync(int fd);
/* openat(2): the new fd, or -errno (-EFAULT for a NULL path). */
SY_API int sy_openat(int dirfd, const char *path, int flags, mode_t mode);
/* poll(2) over several fds with a deadline instead of a timeout (SY_FOREVER:
 * none; a past one: look once).  The number of fds with revents set, 0 at
 * the deadline (as poll's timeout), -EINTR, -EINVAL (NULL fds with n > 0,
 * or n above the process's fd limit), -ENOMEM. */
SY_API int sy_poll(struct pollfd *fds, nfds_t n, int64_t deadline);
/* The I/O backend of this run: "io_uring" or "epoll" (chosen now if no
 * call has yet); NULL outside tasks. */
SY_API const char *sy_io_backend(void);

/* ------------------------------------------------------------ preemption */

/* A task that runs for a whole quantum without calling into the runtime is
 * preempted by the CPU's tick, at an instruction of your program's own code:
 * never inside the C library, the dynamic loader or another shared library
 * (their locks would deadlock the next task), never inside the runtime,
 * and never while the task holds a sy_spinlock or is inside
 * sy_preempt_disable().  The switch then happens at the next safe point:
 * the end of that section, or the task's next runtime call.  Its state
 * (every register, flags, FP/vector registers, errno) is kept exactly.  A
 * preempted task resumes on the CPU it left until it next calls into the
 * runtime.  A killed task exits at its next tick if it never calls in -
 * unless it holds a sy_mutex or a sy_rwlock: then at its next kill point
 * (a semaphore's unit has no owner: a task killed while it holds one may
 * take it with it; use sy_preempt_disable() around such a section, or a
 * blocking call, if that matters). */

/* Sections that must not be preempted; they nest.  0, or -EPERM outside a
 * task, -EINVAL for an enable without a disable. */
SY_API int sy_preempt_disable(void);
SY_API int sy_preempt_enable(void);

/* Declare the code of shared libraries whose path contains `name` safe
 * (safe != 0) or unsafe to preempt; "(main)" names the program itself.
 * Shared libraries are unsafe by default, the program safe, except a
 * program linked statically (-static), whose text holds the C library too:
 * declare it safe only if its tasks' long computations make no C library
 * calls.  (A -static program cannot use the host-lock interposition at all:
 * its first pthread/mtx lock call stops it with a message; see README.)  Call before sy_run, or during it (the map is rebuilt); the
 * declarations last for the life of the process.  Returns 0, -EINVAL (NULL
 * or empty name, or longer than 63 bytes), -ENOSPC (32 names at most;
 * declaring a name again changes its verdict and takes no room). */
SY_API int sy_preempt_library(const char *name, int safe);

/* ----------------------------------------------------- errno, migration */

/* errno belongs to each task: the runtime saves and restores it on every
 * switch, on whichever host thread the task resumes.  But a task may resume
 * on another host thread (another CPU) after any call that may switch, and
 * C compilers assume a call never changes the thread: glibc declares the
 * function behind `errno` constant, so code that reads errno both before
 * and after such a call may keep using the first thread's copy.  A task
 * that may migrate (ncpu > 1, not pinned) should read errno through
 * sy_errno_location(), which the compiler cannot cache; defining
 * SY_ERRNO_FRESH before including this header makes `errno` itself do so.
 * The same holds for any thread-local variable of your own. */
SY_API int *sy_errno_location(void);

#if defined(SY_ERRNO_FRESH)
#include <errno.h>
#undef errno
#define errno (*sy_errno_location())
#endif

/* ------------------------------------------- the host's threading API */

/*
 * Inside a task, the host's threading calls act as if each task were a
 * thread (src/hostsync.c): the library defines them, and a program that
 * links it (static or shared) gets them for all its code, its libraries'
 * included.  A call that waits sleeps the task, and its CPU runs others; a
 * lock's owner is the task, on whichever CPU it runs; a holder may sleep,
 * yield or wait for I/O while it holds a lock (it is still not preempted
 * by the tick).  The same object may be shared by tasks and plain threads
 * of the program at once, and used before sy_run and after it: outside
 * tasks the calls behave as glibc's.  Statically initialised objects
 * (PTHREAD_MUTEX_INITIALIZER and its kin) work; nothing is allocated.
 *
 *   pthread_mutex_*      normal, recursive, error-checking, adaptive:
 *                        EDEADLK, EPERM, EBUSY and recursion by task; timed
 *                        and clock variants; init, destroy (EBUSY if held)
 *   pthread_cond_*       with any of those mutexes (a recursive one is
 *                        released whole and taken back at its depth); the
 *                        condition's clock (pthread_condattr_setclock) or
 *                        pthread_cond_clockwait's
 *   pthread_rwlock_*     glibc's preference (readers first, or writers
 *                        first with PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
 *                        EDEADLK for a writer that locks again; waiters
 *                        admitted in arrival order
 *   sem_* (unnamed)      sem_wait may return EINTR (a kill); sem_getvalue
 *                        and sem_destroy stay glibc's
 *   pthread_barrier_*, pthread_once, call_once
 *   pthread_spin_*       glibc's spinlock; a task that finds it held spins
 *                        briefly, then yields, then naps (up to 1 ms)
 *   flockfile, ftrylockfile, funlockfile
 *                        owned by the task, recursive by task; the holder
 *                        stays on its CPU until it unlocks (glibc's lock is
 *                        the host thread's).  Not given: exclusion against
 *                        a plain stdio call (printf) by another task on the
 *                        same CPU while the holder is switched out
 *   mtx_*, cnd_*         C11, onto the calls above
 *
 * Kills: a timed lock or wait ends early with ETIMEDOUT (POSIX lets it
 * fail so; the task exits at its next kill point); sem_wait and
 * sem_timedwait end with EINTR.  The others (pthread_mutex_lock, rwlock
 * locks, pthread_cond_wait, barriers, once, flockfile) are not kill points:
 * the task waits on, as a thread would, and exits at its next kill point.
 * Deadlock detection: tasks waiting on these objects may be woken by a
 * plain thread, so while any waits, the runtime reports no deadlock.
 *
 * Objects glibc keeps: process-shared ones, robust and priority-inheriting
 * or -protecting mutexes, named semaphores (sem_open).  A task that waits
 * for a mutex, rwlock or semaphore of those polls (tries, then naps 20 us
 * doubling to 5 ms): its CPU runs others.  A process-shared condition or
 * barrier has no try call: a task that waits on one blocks its CPU.  A
 * process-shared condition takes a process-shared mutex.  While a task
 * holds a lock that belongs to its host thread (a FILE lock, or a mutex or
 * rwlock of those glibc keeps) it stays on that thread, and no CPU is
 * handed off (the hand-off, below, would move it).
 *
 * Identity: pthread_self(), gettid() and __thread variables are the host
 * thread's (the CPU's), and change when a task migrates; errno is the
 * task's (above); sy_self() names the task.
 *
 * SY_HOST_SYNC=off in the environment (read once, at start) turns all of
 * this off: the calls are glibc's, and a task that holds a lock of the
 * host thread is only kept from being preempted; it must then not sleep or
 * yield while it holds one.
 */

/* ------------------------------------------------------- introspection */

enum sy_state {
    SY_UNUSED = 0,
    SY_EMBRYO,
    SY_RUNNABLE,
    SY_RUNNING,
    SY_SLEEPING,
    SY_ZOMBIE,
};

/* A snapshot of one task, for ps-style tables. */
typedef struct sy_task_info {
    int pid;
    int ppid;
    int state;              /* enum sy_state */
    int cpu;                /* CPU it runs on or last ran on */
    uint64_t nmigrations;   /* times it resumed on another CPU */
    char name[SY_NAME_MAX];
    uint64_t nvcsw;         /* voluntary switches (yield, sleep, wait, exit) */
    uint64_t nivcsw;        /* involuntary switches (preemptions) */
    uint64_t cpu_ns;        /* CPU time (sampled on the tick by default) */
    uint64_t wait_ns;       /* time spent RUNNABLE but not running */
    size_t stack_size;
    const void *wchan;      /* SLEEPING: the object it waits on (the channel
                               of sy_sleep, a sy_mutex, a sy_chan, ...) */
    const char *wait_kind;  /* SLEEPING: "sleep", "wait", "mutex", "cond",
                               "sem", "rwlock", "waitgroup", "once",
                               "chan", "select", "io"; else "" */
    int mutexes;            /* sy_mutexes it holds now */
    uint64_t long_call_ns;  /* RUNNING on a host thread its CPU was handed
                               off from (a long library or system call,
                               sy_config.handoff_us): for how long; else 0.
                               sy_ps_print shows such a task as LONGCALL. */
} sy_task_info;

/* Fill `buf` with up to `max` tasks in pid order of their slots; returns the
 * number of live and zombie tasks (may exceed max), or -EPERM, -EINVAL
 * (max < 0, or a NULL buf with max > 0).  max 0: just count them. */
SY_API int sy_ps(sy_task_info *buf, int max);

/* Print a ps-style table of every task to file descriptor `fd`.  Returns 0,
 * -EPERM, -ENOMEM, -EBADF when fd is not open for writing, or the error of
 * a failed first write. */
SY_API int sy_ps_print(int fd);

/* "RUNNABLE", "SLEEPING", ... ("?" for an unknown state). */
SY_API const char *sy_state_name(int state);

/* Text for a negative errno value returned by the API; "unknown error" for
 * any other value (positive ones too).  Never NULL. */
SY_API const char *sy_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* SWITCHYARD_H */
