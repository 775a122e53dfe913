/*
 * cpu.c - CPUs: booting the runtime, the host threads that are its CPUs,
 * their idle loop, parking and kicking.
 *
 * sy_run() validates the configuration, makes the calling thread CPU 0 (its
 * own context becomes CPU 0's idle task), starts CPUs 1..n-1 as threads,
 * spawns init as pid 1, runs CPU 0's idle loop until no task is left, joins
 * the other CPUs and takes everything down.
 *
 * Idle: a CPU with nothing to run handles its events, runs due timers, asks
 * a busy CPU for work, spins for IDLE_SPIN_NS watching its `events`, then
 * parks on a futex.  Parking and kicking use a Dekker pair: the parker
 * stores parked = 1 and then checks `events`; a poster adds to `events`
 * and then checks `parked` (runq.c: sy__post), both sequentially
 * consistent, so a kick cannot fall between the check and the sleep.
 *
 * Timers: one idle CPU at a time (rt.timer_owner) parks with the earliest
 * deadline as its futex timeout; the others park without one.  A busy CPU
 * notices due timers on its tick (preempt.c).
 *
 * Deadlock: a CPU about to park with no timer pending counts itself in
 * rt.nparked.  If every CPU is so parked, every inbox is empty and tasks are
 * alive, they are all asleep and nothing can wake them: the runtime reports
 * it and kills them all (deadlock, below).  A CPU leaving its park bumps
 * rt.park_epoch and takes itself out of rt.nparked before it handles its
 * events.  The epoch matters: a CPU may leave its park, run a task that
 * hands work to the checking CPU after that CPU looked at its inbox, and
 * park again, all between the checker's two reads of nparked, which then
 * both say "everyone" (found under valgrind, which switches threads
 * anywhere).  The epoch read before and after tells.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "runq.h"
#include "san.h"

#define IDLE_SPIN_NS 50000    /* spin this long before parking */
#define STEAL_RETRY_NS 200000    /* first pause before asking for work again */
#define STEAL_RETRY_MAX_NS 12800000 /* longest pause, after requests that got nothing */

struct runtime sy__rt;

/* Read by name from inline asm (arch.h: arch_this_cpu), which link-time
 * optimisation cannot see: keep the symbol, and keep its name. */
#if defined(__clang__)
__thread struct cpu *sy__cpu_tls __attribute__((tls_model("initial-exec"), used));
#else
__thread struct cpu *sy__cpu_tls
    __attribute__((tls_model("initial-exec"), used, externally_visible));
#endif

static int running; /* one runtime per process at a time */


static long futex(int *uaddr, int op, int val, const struct timespec *ts)
{
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}


/* ------------------------------------------------------------- the idle */

static void set_idle(struct cpu *c, bool idle)
{
    if (c->is_idle == idle)
        return;
    WRITE_ONCE(c->is_idle, idle);
    if (!idle && rt.handoff_ns)
        sy__monitor_wake(); /* it sleeps while every CPU is idle (handoff.c) */
    if (idle) {
        __atomic_store_n(&c->idling, 1, __ATOMIC_RELEASE);
        __atomic_fetch_add(&rt.nidle, 1, __ATOMIC_RELAXED);
        return;
    }
    /* A waker may have claimed us already (runq.c: claim_idle), and then
     * it has taken us out of rt.nidle. */
    int one = 1;
    if (__atomic_compare_exchange_n(&c->idling, &one, 0, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED))
        __atomic_fetch_sub(&rt.nidle, 1, __ATOMIC_RELAXED);
}

static bool inboxes_empty(void)
{
    for (int i = 0; i < rt.ncpu; i++)
        if (__atomic_load_n(&cpu_slot(i)->inbox, __ATOMIC_SEQ_CST))
            return false;
    return true;
}

/* Spin a while, watching for events; true if some arrived. */
static bool spin_for_events(struct cpu *c)
{
    if (rt.ncpu == 1)
        return false; /* nobody else can post */
    uint64_t until = sy__now_ns() + IDLE_SPIN_NS;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (cpu_has_events(c))
                return true;
            cpu_relax();
        }
        if (sy__io_ready(c))
            return true; /* completions for its ring (uring.c) */
        if (sy__now_ns() >= until)
            return false;
    }
}

/* Park until kicked, or until the earliest timer if we own the timers, or
 * for at most `retry_ns` (0: no limit) when there is work to ask for again.
 * Returns false if it found a deadlock instead of parking. */
static bool park(struct cpu *c, uint64_t retry_ns)
{
    uint64_t deadline = __atomic_load_n(&rt.timer_next, __ATOMIC_SEQ_CST);
    bool owner = false, counted = false;
    /* Tasks wait on fds: one parking CPU sleeps in epoll_wait instead of on
     * its futex (io.c).  It counts as parked like any CPU without a timer,
     * but there is no deadlock while tasks wait on fds or file jobs (a CPU
     * that parked then stays counted, and the last one to park re-checks
     * once the waits are over). */
    bool io = sy__io_waiting(), polling = io && sy__io_claim(c);
    if (retry_ns) {
        /* work is waiting on some CPU: not a deadlock, and back soon */
        uint64_t soon = sy__now_ns() + retry_ns;
        if (soon < deadline)
            deadline = soon;
        owner = true; /* a timeout of our own; timers stay with their owner */
    } else {
        if (deadline != UINT64_MAX) {
            struct cpu *none = NULL;
            owner = __atomic_compare_exchange_n(&rt.timer_owner, &none, c, false,
                                                __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        }
    }
    /* Without a timeout of its own (no timers, or another CPU owns them) a
     * CPU parks counted: it waits for a kick.  (It parked uncounted when
     * another CPU owned the timers, and stayed so once they were gone: the
     * last CPU to park then never saw every CPU parked, and a deadlock
     * after a timed sleep or an fd wait on 2 CPUs hung; t_io found it.)
     * With a timer pending, the check below finds no deadlock. */
    if (!retry_ns && !owner) {
        counted = true;
        uint64_t epoch = __atomic_load_n(&rt.park_epoch, __ATOMIC_SEQ_CST);
        if (__atomic_add_fetch(&rt.nparked, 1, __ATOMIC_SEQ_CST) == rt.ncpu &&
            __atomic_load_n(&rt.nlive, __ATOMIC_SEQ_CST) > 0 && inboxes_empty() &&
            __atomic_load_n(&rt.timer_next, __ATOMIC_SEQ_CST) == UINT64_MAX &&
            !sy__io_waiting() && !sy__host_waiting() &&
            !__atomic_load_n(&rt.nlong, __ATOMIC_SEQ_CST) &&
            __atomic_load_n(&rt.park_epoch, __ATOMIC_SEQ_CST) == epoch) {
            __atomic_sub_fetch(&rt.nparked, 1, __ATOMIC_SEQ_CST);
            if (polling)
                sy__io_unclaim(c);
            return false;
        }
    }
    __atomic_store_n(&c->parked, counted ? PARKED_IDLE : PARKED_TIMED, __ATOMIC_SEQ_CST);
    sy__tick_park(c, true);
    if (!__atomic_load_n(&c->events, __ATOMIC_SEQ_CST)) {
        struct timespec ts, *tsp = NULL;
        if (owner) {
            uint64_t now = sy__now_ns();
            uint64_t left = deadline > now ? deadline - now : 0;
            ts.tv_sec = (time_t)(left / 1000000000u);
            ts.tv_nsec = (long)(left % 1000000000u);
            tsp = &ts;
        }
        if (polling)
            sy__io_park(c, owner ? deadline : UINT64_MAX);
        else if (!owner || deadline > sy__now_ns())
            futex(&c->parked, FUTEX_WAIT_PRIVATE, counted ? PARKED_IDLE : PARKED_TIMED, tsp);
    } else if (polling) {
        sy__io_park(c, sy__now_ns()); /* events came: give the job back */
    }
    __atomic_store_n(&c->parked, 0, __ATOMIC_SEQ_CST);
    sy__tick_park(c, false);
    if (counted) {
        __atomic_add_fetch(&rt.park_epoch, 1, __ATOMIC_SEQ_CST);
        __atomic_sub_fetch(&rt.nparked, 1, __ATOMIC_SEQ_CST);
    }
    if (owner && !retry_ns)
        __atomic_store_n(&rt.timer_owner, NULL, __ATOMIC_SEQ_CST);
    return true;
}

/* ------------------------------------------------------------- deadlock */

/* Every CPU is parked with nothing to wake it, and tasks are alive: they all
 * sleep and nothing can wake one (park, above).  Report, then kill everybody
 * so that sy_run can return (-EDEADLK).  Runs on an idle task. */
static void deadlock(void)
{
    static const char msg[] =
        "switchyard: deadlock: every task is asleep and nothing can wake one; "
        "killing all tasks\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    sy_ps_print(2);
    dprintf(2, "  (found by cpu %d; %d CPUs parked, %d idle)\n", this_cpu()->id,
            READ_ONCE(rt.nparked), READ_ONCE(rt.nidle));
    for (int i = 0; i < rt.ncpu; i++) {
        struct cpu *c = cpu_slot(i);
        dprintf(2, "  cpu %d: %s%s queue %lu, inbox %s, events %#x\n", i,
                READ_ONCE(c->idling) ? "idle" : "busy", READ_ONCE(c->parked) ? " parked," : ",",
                READ_ONCE(c->rq.len), READ_ONCE(c->inbox) ? "non-empty" : "empty",
                READ_ONCE(c->events));
    }
    rt_lock(&rt.tree_lock);
    rt.deadlocked = true;
    rt_unlock(&rt.tree_lock);
    sy__kill_all();
}

/*
 * The idle task: runs on the host thread's own stack whenever this CPU has
 * nothing to run, and returns once no task is left.  It never migrates: `c`
 * stays valid across its switches.  A detached bundle (its P went to a
 * spare while its task was in a long call: handoff.c) comes here when
 * that task has left it, runs the preempted tasks the hand-off left it, and
 * waits in the spare pool until a hand-off makes it an active CPU again, or
 * until no task is left.
 */
void sy__idle_loop(struct cpu *c)
{
    for (;;) {
        if (unlikely(__atomic_load_n(&c->detached, __ATOMIC_ACQUIRE))) {
            /* the preempted tasks a hand-off left here (they resume on
             * this host thread: handoff.c), then the pool */
            rejoin_preempted(c);
            struct task *next = runq_pop(&c->leftover);
            if (!next)
                next = runq_pop(&c->rq);
            if (next)
                sy__switch_from_idle(c, next);
            else if (sy__io_detached_serve(c))
                continue; /* its ring's requests first: only it may reap them */
            else if (!sy__retire(c))
                break;
            continue;
        }
        if (cpu_has_events(c))
            sy__cpu_events(c, EV_ALL);
        struct task *next = runq_pop(&c->rq);
        if (next) {
            set_idle(c, false);
            /* the step before a switch (runq.h), events done above; here
             * after the pop: an idle CPU offers only what waits behind the
             * task it takes (a parked CPU woken for nothing costs a wakeup) */
            before_switch(c, 0, false);
            sy__switch_from_idle(c, next);
            continue;
        }
        if (__atomic_load_n(&rt.nlive, __ATOMIC_ACQUIRE) == 0)
            break;
        set_idle(c, true);
        if (__atomic_load_n(&rt.timer_next, __ATOMIC_RELAXED) <= sy__now_ns()) {
            sy__run_timers();
            continue;
        }
        if (sy__io_waiting() && sy__io_poll_now())
            continue; /* fds became ready: tasks may be runnable now */
        int steal = sy__steal(c);
        if (spin_for_events(c)) {
            c->steal_backoff = 0; /* work (or a timer, or a kick) came */
            continue;
        }
        /* A request that got nothing, or a busy victim: ask again after a
         * pause, doubling while asking keeps giving nothing. */
        uint64_t retry = 0;
        if (steal != STEAL_NONE) {
            c->steal_backoff = c->steal_backoff ? c->steal_backoff * 2 : STEAL_RETRY_NS;
            if (c->steal_backoff > STEAL_RETRY_MAX_NS)
                c->steal_backoff = STEAL_RETRY_MAX_NS;
            retry = c->steal_backoff;
        }
        if (!park(c, retry))
            deadlock();
    }
    set_idle(c, false);
}

/* ------------------------------------------------------------------ boot */

/* The CPUs the process may run on, from its affinity mask. */
static int affinity_cpus(cpu_set_t *set)
{
    if (sched_getaffinity(0, sizeof *set, set) != 0)
        return 1;
    int n = CPU_COUNT(set);
    return n > 0 ? n : 1;
}

/* Fill in defaults and check every field; 0 or -EINVAL. */
static int config_load(const sy_config *cfg)
{
    sy_config c = {0};
    if (cfg)
        c = *cfg;
    cpu_set_t set;
    int navail = affinity_cpus(&set);
    if (c.ncpu < 0 || c.ncpu > SY_MAX_CPUS)
        return -EINVAL;
    if (c.max_tasks < 0 || c.max_tasks > MAX_TASKS_LIMIT)
        return -EINVAL;
    if (c.stack_size && (c.stack_size < SY_STACK_MIN || c.stack_size > SY_STACK_MAX))
        return -EINVAL;
    if (c.flags & ~(SY_ACCT_PRECISE | SY_PIN_CPUS | SY_NO_PREEMPT | SY_NO_HANDOFF))
        return -EINVAL;
    if (c.handoff_us && (c.handoff_us < 1000 || c.handoff_us > 10000000))
        return -EINVAL;
    if (c.handoff_threads < 0 || c.handoff_threads > SY_MAX_CPUS)
        return -EINVAL;
    if (c.tick_us && (c.tick_us < 100 || c.tick_us > 1000000))
        return -EINVAL; /* a 1 us tick was a signal storm that overflowed stacks */
    if (c.quantum_us && (c.quantum_us < 100 || c.quantum_us > 10000000))
        return -EINVAL;
    size_t pg = sy__page_size();
    rt.ncpu = c.ncpu ? c.ncpu : navail;
    rt.max_tasks = c.max_tasks ? (uint32_t)c.max_tasks : MAX_TASKS_LIMIT;
    rt.stack_size = ((c.stack_size ? c.stack_size : SY_STACK_DEFAULT) + pg - 1) & ~(pg - 1);
    rt.flags = c.flags;
    uint64_t quantum = (c.flags & SY_NO_PREEMPT) ? 0
                       : (uint64_t)(c.quantum_us ? c.quantum_us : SY_QUANTUM_DEFAULT_US) * 1000;
    sy__tick_config((uint64_t)(c.tick_us ? c.tick_us : 4000) * 1000, quantum);
    /* the hand-off (handoff.c): twice the quantum, 1 ms at least */
    const char *env = getenv("SY_HANDOFF");
    bool off = (c.flags & SY_NO_HANDOFF) || (env && !strcmp(env, "0"));
    /* (cooperative scheduling, SY_NO_PREEMPT, hands off only when asked) */
    uint64_t bound = c.handoff_us ? (uint64_t)c.handoff_us * 1000 : 2 * quantum;
    off = off || !bound;
    rt.handoff_ns = off ? 0 : bound < 1000000 ? 1000000 : bound;
    rt.nbundles = rt.ncpu + (off ? 0 : c.handoff_threads ? c.handoff_threads : 4);
    rt.spare0 = rt.ncpu;
    return 0;
}

/* Pin CPU c to the c->id-th core of the affinity mask (SY_PIN_CPUS). */
static void pin_thread(struct cpu *c)
{
    cpu_set_t set, one;
    if (!(rt.flags & SY_PIN_CPUS) || sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    int n = CPU_COUNT(&set), k = c->id % (n > 0 ? n : 1);
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set) && k-- == 0) {
            CPU_ZERO(&one);
            CPU_SET(i, &one);
            pthread_setaffinity_np(pthread_self(), sizeof one, &one);
            break;
        }
}

/* Make the calling thread CPU c: per-CPU state, alternate signal stack,
 * accounting tick. */
int sy__cpu_enter(struct cpu *c)
{
    c->errno_ptr = &errno;
    if (c->id == 0)
        c->thread = pthread_self(); /* (pthread_create wrote the others') */
    c->tid = (int)syscall(SYS_gettid);
    sy__cpu_tls = c;
    san_cpu_enter(c);
    pin_thread(c);
    int err = sy__overflow_handler_install(c);
    if (!err && (err = sy__tick_start(c)) != 0)
        sy__overflow_handler_remove(c);
    if (err)
        sy__cpu_tls = NULL;
    return err;
}

void sy__cpu_leave(struct cpu *c)
{
    sy__tick_stop(c);
    sy__overflow_handler_remove(c);
    sy__cpu_tls = NULL;
}

static void cpu_init(struct cpu *c, int id)
{
    c->id = id;
    c->slot = id < rt.ncpu ? id : -1;
    c->detached = id >= rt.ncpu; /* a spare until a hand-off */
    c->idle.state = SY_RUNNING;
    c->idle.pid = 0;
    c->idle.pin = id;
    c->idle.cpu = c;
    strcpy(c->idle.name, "idle");
    c->curr = &c->idle;
    c->switch_ns = sy__now_ns();
    c->slice_cpu_nswitch = UINT64_MAX; /* no tick switched yet (preempt.c) */
}

/* CPUs 1..n-1 wait at this gate until init runs: an idle CPU that ran
 * while init sat in CPU 0's queue asked CPU 0 for it, and spun and asked
 * again while CPU 0 was still starting threads; hundreds of them on a few
 * cores left CPU 0 no time to start the rest or to run init (1024 CPUs took
 * 18 s to boot on 2 cores).  Once init runs, nothing is queued to ask for. */
static int boot_gate;
static sy_fn boot_fn;
static void *boot_arg;

static int boot_init(void *arg)
{
    (void)arg;
    __atomic_store_n(&boot_gate, 1, __ATOMIC_RELEASE);
    futex(&boot_gate, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
    return boot_fn(boot_arg);
}

/* Whether CPU i could become a CPU (1) or not (-1): sy_run runs with the
 * CPUs before the first that could not.  (A CPU that failed to enter, e.g.
 * when timer_create ran out - qemu-user has 32 timers - quit silently and
 * tasks pinned to it or queued on it never ran.) */
static int entered[SY_MAX_CPUS];

static void *cpu_thread(void *arg)
{
    struct cpu *c = arg;
    int ok = sy__cpu_enter(c) == 0;
    if (ok)
        sy__tick_park(c, true); /* no wall-clock ticks at the gate */
    __atomic_store_n(&entered[c->id], ok ? 1 : -1, __ATOMIC_RELEASE);
    futex(&entered[c->id], FUTEX_WAKE_PRIVATE, 1, NULL);
    while (!__atomic_load_n(&boot_gate, __ATOMIC_ACQUIRE))
        futex(&boot_gate, FUTEX_WAIT_PRIVATE, 0, NULL);
    if (ok)
        sy__tick_park(c, false);
    if (ok && c->id < rt.ncpu)
        sy__idle_loop(c);
    if (ok)
        sy__cpu_leave(c);
    return NULL;
}

int sy_run(const sy_config *cfg, sy_fn init, void *arg)
{
    if (!init)
        return -EINVAL;
    if (__atomic_exchange_n(&running, 1, __ATOMIC_ACQUIRE))
        return -EBUSY;
    int caller_errno = errno; /* the booting thread's errno is its own */
    sy__hostlock_init(); /* also links hostlock.o into every program */

    memset(&rt, 0, sizeof rt);
    rt.boot_tid = (int)syscall(SYS_gettid);
    rt.timer_next = UINT64_MAX;
    int err = config_load(cfg);
    if (err)
        goto out;
    rt.bundles = aligned_alloc(64, sizeof *rt.bundles * (size_t)rt.nbundles);
    rt.cpus = calloc((size_t)rt.ncpu, sizeof *rt.cpus);
    if (!rt.bundles || !rt.cpus) {
        err = -ENOMEM;
        goto out_cpus;
    }
    memset(rt.bundles, 0, sizeof *rt.bundles * (size_t)rt.nbundles);
    if ((err = sy__tasks_init()) != 0)
        goto out_cpus;
    sy__stacks_init();
    rt.coarse_ns = sy__now_ns();
    for (int i = 0; i < rt.nbundles; i++)
        cpu_init(&rt.bundles[i], i);
    for (int i = 0; i < rt.ncpu; i++)
        rt.cpus[i] = &rt.bundles[i];

    struct cpu *c0 = &rt.bundles[0];
    if ((err = sy__cpu_enter(c0)) != 0)
        goto out_tables;

    /* init first, so that it is pid 1 and CPU 0 runs it */
    sy_attr a = {.name = "init"};
    int pid;
    boot_fn = init;
    boot_arg = arg;
    __atomic_store_n(&boot_gate, 0, __ATOMIC_RELAXED);
    err = sy__spawn(NULL, boot_init, NULL, &a, &pid);
    if (err)
        goto out_cpu0;
    rt_lock(&rt.tree_lock);
    rt.init = sy__task_lookup(pid);
    rt_unlock(&rt.tree_lock);

    int started = 1;
    for (; started < rt.ncpu; started++) {
        __atomic_store_n(&entered[started], 0, __ATOMIC_RELAXED);
        if (pthread_create(&rt.bundles[started].thread, NULL, cpu_thread, &rt.bundles[started]) != 0)
            break; /* run with the CPUs we got */
    }
    int ready = 1, e;
    for (; ready < started; ready++) {
        while ((e = __atomic_load_n(&entered[ready], __ATOMIC_ACQUIRE)) == 0)
            futex(&entered[ready], FUTEX_WAIT_PRIVATE, 0, NULL);
        if (e < 0)
            break;
    }
    /* nothing was placed on the missing CPUs (they wait at the gate, and
     * leave through it) */
    rt.ncpu = ready;
    rt.smp = rt.ncpu > 1;
    if (rt.handoff_ns && sy__handoff_init() != 0)
        rt.handoff_ns = 0; /* no monitor thread: run without the hand-off */

    sy__idle_loop(c0);
    sy__monitor_stop(); /* before the threads whose clocks it reads go */
    for (int i = 1; i < started; i++)
        pthread_join(rt.bundles[i].thread, NULL);
    sy__handoff_fini(); /* the spares the monitor started */
    err = rt.deadlocked ? -EDEADLK : rt.init_status;

out_cpu0:
    sy__cpu_leave(c0);
out_tables:
    sy__timers_fini();
    sy__file_fini();
    sy__io_fini();
    sy__stacks_fini();
    sy__tasks_fini();
out_cpus:
    free(rt.cpus);
    rt.cpus = NULL;
    free(rt.bundles);
    rt.bundles = NULL;
out:
    errno = caller_errno;
    __atomic_store_n(&running, 0, __ATOMIC_RELEASE);
    return err;
}

/* Never inlined, not even by link-time optimisation (inlined, glibc's
 * constant __errno_location() inside would be hoisted out of the caller's
 * loop again), and not constant: the asm may read and write memory. */
#if defined(__clang__)
__attribute__((noinline))
#else
__attribute__((noinline, noipa))
#endif
int *sy_errno_location(void)
{
    int *p = &errno;
    __asm__ volatile("" : "+r"(p)::"memory");
    return p;
}

int sy_cpu(void)
{
    struct cpu *c = this_cpu();
    return c ? c->slot : -EPERM;
}

int sy_ncpu(void)
{
    return this_cpu() ? rt.ncpu : -EPERM;
}
