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
    unsigned flags;       /* SY_ACCT_PRECISE, SY_PIN_CPUS, SY_NO_PREEMPT;
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
                          SY_STACK_MAX, rounded up to pages */
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
 * runtime.  A killed task exits at its next tick if it never calls in. */

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
