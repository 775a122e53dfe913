/*
 * preempt.c - the per-CPU tick: accounting, due timers, and preemption.
 *
 * Each CPU has one timer aimed at its own host thread (timer_create with
 * SIGEV_THREAD_ID).  Its signal handler is the trap.  It charges the tick to
 * the running task (Linux's account_process_tick), notices due timers, and,
 * when the running task has had the CPU for a whole quantum, preempts it.
 *
 * How a task is preempted: inside the handler.  The handler calls
 * sy__preempt() (sched.c), which puts the task at the end of its CPU's run
 * queue and runs the next one through the usual context_switch(); the
 * preempted task stays suspended inside its handler, and resumes by
 * returning from it, on whichever host thread it is switched back in.  The
 * kernel's signal frame, on the task's own stack, is then the save of its
 * whole state: every general register, the flags, and the FP/vector state in
 * the kernel's own format (x87/SSE/AVX/AVX-512 on x86-64, FPSIMD/SVE on
 * AArch64), which rt_sigreturn restores bit for bit.  The voluntary switch
 * is untouched: full state is saved only on this path, as the Xen seed's
 * lazy switching argues.
 *   Rejected: Go's way, where the handler only redirects the interrupted
 * context to an assembly stub that saves everything and calls the
 * scheduler.  It keeps the handler short, but the stub must save by hand
 * every register file the CPU may have (and grow with each ISA extension),
 * must step over the x86-64 red zone, and on AArch64 has no free register
 * to return through.  The kernel already does all of that.
 *   What that costs and how it stays right: a tick frame takes stack room
 * (the kernel's signal frame, about 3 KiB with AVX-512: AT_MINSIGSTKSZ, plus
 * the handler's own frames down to the switch: SY_STACK_PREEMPT in the
 * header gives the bound), and there must never be more than one per stack.
 * The handler is installed without SA_NODEFER, so the tick is blocked while
 * it runs; a switch from inside it leaves the host thread with the tick
 * still blocked (cpu->tick_masked), and the task switched to unblocks it
 * (finish_task_switch) - unless that task is itself a preempted one
 * (task->in_tick), which runs with the tick blocked until its rt_sigreturn
 * restores the mask saved in its frame (the tick unblocked).  A switch INTO
 * a preempted task from a thread whose tick is unblocked (a yield) blocks
 * it first.  So a tick can never land on a stack that already holds one: not
 * when the thread is descheduled inside the handler on a loaded machine,
 * not when a sanitizer or an emulator makes the handler slower than the
 * tick.  (The first version used SA_NODEFER, and under load ticks nested on
 * one task stack until it overflowed.)  The cost is one sigprocmask per
 * switch out of a handler, and one per yield into a preempted task.  errno
 * is saved and restored with the task as on any switch.
 *
 * When the handler must not switch, it sets cpu->need_resched and the task
 * gives up its CPU at the next safe point: sy_preempt_enable, the unlock of
 * its last spinlock, or its next runtime call that may switch.  Not
 * preemptible:
 *   - a task whose preempt count is above zero (sy_preempt_disable, a held
 *     sy_spinlock) or that was spawned with SY_ATTR_NOPREEMPT;
 *   - the idle task, and a CPU whose current task is mid-switch;
 *   - interrupted code other than the program's own: the handler compares
 *     the interrupted PC with the executable parts of the main program
 *     (found with dl_iterate_phdr), minus the runtime's own code (the
 *     sy_text section the build renames it into), plus any library declared
 *     safe with sy_preempt_library().  The C library, the dynamic loader,
 *     the vDSO, sanitizer runtimes - every shared library - are unsafe by
 *     default: malloc and stdio hold locks that another task on the same
 *     thread would deadlock on.
 * A task that spends nearly all its time inside the C library is preempted
 * when a tick lands outside it; one that never leaves it (one enormous
 * memcpy) runs until it does, as a non-preemptible kernel section would.
 *
 * A preempted task resumes on the CPU (host thread) it was preempted on:
 * it may be between computing the address of a thread-local variable
 * (errno: glibc's __errno_location()) and using it.  It may move again
 * after its next voluntary switch (runq.c: donate skips it meanwhile).
 *
 * A killed task that the handler may preempt and that has run a whole
 * quantum exits there, with SY_EXIT_KILLED, so a task that never calls into
 * the runtime can still be killed (its kill point is the tick that ends its
 * quantum), unless it holds a sy_mutex or a sy_rwlock (sync.c): then at
 * its next kill point.
 *
 * The tick does not always wait for the quantum: when other CPUs or due
 * timers have news for this CPU (tasks in its inbox, a request for work, a
 * timer that may wake a task here), a tick that may preempt handles it at
 * once, and switches if that made a task runnable here (wakeup preemption);
 * otherwise a compute-bound task would keep an idle CPU waiting, or a woken
 * task queued, for the rest of its quantum.
 *
 * "The runtime's own code" must be all of it.  The build renames every code
 * section of the runtime's objects (.text, .text.unlikely for cold parts,
 * constructors) into sy_text and fails if one is left out, and compiles the
 * runtime with -fno-plt: a call to the C library through a PLT stub would
 * run a few instructions in the program's own text, on the runtime's
 * behalf, mid-switch or under a runtime lock.
 *
 * The clock: a quantum of 4 ms or more uses the thread's CPU-time clock
 * (CLOCK_THREAD_CPUTIME_ID).  It advances only while the thread computes,
 * so an idle CPU gets no signal and a task blocked in a system call is never
 * interrupted by it; the kernel checks it on its own tick (250 Hz here), so
 * the quantum is met to within 4 ms - on a quiet host.  The kernel checks it
 * only when its tick finds the thread running, and on a host loaded with
 * other work that can fail for a long while: a thread beside two CPU hogs
 * got no expiry at all in 200 ms of CPU time in about 1 run in 10 (this
 * VM, kernel 6.18).  Accounting charges the CPU time really used at the next
 * tick that comes (tick_handler), but a quantum can then run long.  A
 * shorter quantum (down to 100 us)
 * needs CLOCK_MONOTONIC, which fires on time but also while the thread
 * blocks: it is disarmed while the CPU is parked, and SA_RESTART restarts
 * the interrupted system calls that can be restarted.  Those that never are
 * (poll, epoll_wait, select, nanosleep, ... see signal(7)) can return EINTR
 * to a task that uses them under a short quantum: the runtime's own calls
 * retry; a task of yours can make such calls inside sy_preempt_disable(),
 * or run with the default quantum.
 *
 * Turns: a task's turn is its quantum plus its carry, what its previous turn
 * fell short of that (a wakeup preempted it: the woken task runs at once,
 * the preempted one rejoins the queue behind it) or ran over it (the tick
 * that ended it came late: the kernel may deliver no CPU-time expiry for
 * tens of ms of CPU time on a loaded host), a quantum of shortfall or 20
 * quanta of overrun at most; the carry is set at each involuntary switch
 * (sched.c: involuntary) and a turn is one tick at least, so an overrun is
 * paid back over as many turns as it takes.  Round robin thus gives tasks
 * equal CPU time over their turns, not just equal numbers of turns.  Before,
 * whichever task was running when a timer woke another lost the rest of its
 * quantum, and a late tick's overrun was nobody's: two spinners sharing a
 * CPU beside two host hogs got shares with a standard deviation of 0.8% (up
 * to 52.9%; init woke every 500 ms of wall time, which under load is every
 * few turns), 0.18% with the carry.  On the CPU-time clock a turn that a
 * tick began is measured exactly, from the thread's CPU time at that switch:
 * counted in periods, its first tick counts one period, however late it
 * comes (a late first tick hid an overrun of up to two periods).
 *
 * The default quantum is 10 ms, as Go's: at 10 ms a tick costs about 0.05%
 * of a CPU (b_preempt), and a task waits 10 ms per task ahead of it (up to
 * 20 ms behind a turn that makes up for one cut short: turns, above).
 */
#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "runq.h"

#define CPU_CLOCK_MIN_NS 4000000ull /* below this, CLOCK_MONOTONIC */

static struct sigaction old_tick_action;

/* ------------------------------------------------------ preemptible code */

/* The runtime's own code, renamed into its own section by the build. */
extern char __start_sy_text[] __attribute__((weak, visibility("hidden")));
extern char __stop_sy_text[] __attribute__((weak, visibility("hidden")));

struct range {
    uintptr_t lo, hi;
};

/* Ranges of code the handler may interrupt with a switch, sorted.  Replaced
 * as a whole (the handler reads it without a lock); old tables are freed
 * when the runtime stops. */
struct code_map {
    int n;
    struct code_map *older;
    struct range r[];
};

static struct code_map *code_map;

#define MAX_DECLARED 32
static struct {
    char name[64];
    bool safe;
} declared[MAX_DECLARED];
static int ndeclared;
static sy_spinlock declared_lock;

static bool declared_safe(const char *path, bool *safe)
{
    for (int i = 0; i < ndeclared; i++)
        if (strstr(path, declared[i].name)) {
            *safe = declared[i].safe;
            return true;
        }
    return false;
}

struct build {
    struct range *r;
    int n, cap;
    bool libc_shared; /* the C library is a shared object, not in the program */
};

static void add_range(struct build *b, uintptr_t lo, uintptr_t hi)
{
    if (lo >= hi)
        return;
    if (b->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 16;
        struct range *r = realloc(b->r, (size_t)cap * sizeof *r);
        if (!r)
            return; /* a range less: less preemption, never more */
        b->r = r;
        b->cap = cap;
    }
    b->r[b->n++] = (struct range){lo, hi};
}

static int find_libc_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct build *b = arg;
    if (info->dlpi_name && strstr(info->dlpi_name, "/libc.so"))
        b->libc_shared = true;
    return 0;
}

/* Code that is never a long call for the hand-off, however often a probe
 * finds a task there: the vDSO (clock_gettime: a compute loop that reads
 * the clock) and the sanitizer runtimes (their interceptors are short, and
 * TSan runs a signal handler inside them with the context of where the
 * signal came in).  Set when the code map is built, read by the handler. */
#define MAX_SHORT_CODE 8
static struct range short_code[MAX_SHORT_CODE];
static int nshort_code;

static void note_short_code(const struct dl_phdr_info *info)
{
    static const char *const names[] = {"linux-vdso", "linux-gate", "libtsan", "libasan",
                                        "libubsan", "liblsan"};
    bool match = false;
    for (unsigned k = 0; info->dlpi_name && k < sizeof names / sizeof names[0]; k++)
        match = match || strstr(info->dlpi_name, names[k]);
    for (int i = 0; match && i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        int n = __atomic_load_n(&nshort_code, __ATOMIC_RELAXED);
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && n < MAX_SHORT_CODE) {
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            for (int j = 0; j < n; j++)
                if (short_code[j].lo == lo)
                    return; /* seen at an earlier build */
            short_code[n] = (struct range){lo, lo + ph->p_memsz};
            __atomic_store_n(&nshort_code, n + 1, __ATOMIC_RELEASE);
        }
    }
}

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct build *b = arg;
    note_short_code(info);
    bool main_program = !info->dlpi_name || !info->dlpi_name[0];
    /* a program linked statically has the C library in its own text, where
     * nothing tells them apart: then only a declaration makes it safe */
    bool safe = main_program && b->libc_shared;
    if (!main_program)
        declared_safe(info->dlpi_name, &safe);
    else
        declared_safe("(main)", &safe);
    if (!safe)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        uintptr_t slo = (uintptr_t)__start_sy_text, shi = (uintptr_t)__stop_sy_text;
        if (slo && slo < hi && shi > lo) { /* the runtime is linked in: cut it out */
            add_range(b, lo, slo);
            add_range(b, shi, hi);
        } else {
            add_range(b, lo, hi);
        }
    }
    return 0;
}

static int range_cmp(const void *a, const void *b)
{
    const struct range *x = a, *y = b;
    return (x->lo > y->lo) - (x->lo < y->lo);
}

/* (Re)build the map of preemptible code. */
static int code_map_build(void)
{
    struct build b = {0};
    dl_iterate_phdr(find_libc_cb, &b);
    dl_iterate_phdr(phdr_cb, &b);
    qsort(b.r, (size_t)b.n, sizeof *b.r, range_cmp);
    struct code_map *m = malloc(sizeof *m + (size_t)b.n * sizeof(struct range));
    if (!m) {
        free(b.r);
        return -ENOMEM;
    }
    m->n = b.n;
    if (b.n)
        memcpy(m->r, b.r, (size_t)b.n * sizeof *b.r);
    free(b.r);
    m->older = code_map;
    __atomic_store_n(&code_map, m, __ATOMIC_RELEASE);
    return 0;
}

static void code_map_free(void)
{
    struct code_map *m = __atomic_exchange_n(&code_map, NULL, __ATOMIC_ACQ_REL);
    while (m) {
        struct code_map *o = m->older;
        free(m);
        m = o;
    }
}

static __attribute__((unused)) bool pc_preemptible(uintptr_t pc)
{
    const struct code_map *m = __atomic_load_n(&code_map, __ATOMIC_ACQUIRE);
    if (!m)
        return false;
    int lo = 0, hi = m->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (pc < m->r[mid].lo)
            hi = mid - 1;
        else if (pc >= m->r[mid].hi)
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

int sy_preempt_library(const char *name, int safe)
{
    if (!name || !name[0] || strlen(name) >= sizeof declared[0].name)
        return -EINVAL;
    spin_lock(&declared_lock);
    int i;
    for (i = 0; i < ndeclared; i++)
        if (!strcmp(declared[i].name, name))
            break;
    if (i == MAX_DECLARED) {
        spin_unlock(&declared_lock);
        return -ENOSPC;
    }
    strcpy(declared[i].name, name);
    declared[i].safe = safe != 0;
    if (i == ndeclared)
        ndeclared++;
    spin_unlock(&declared_lock);
    /* a running runtime sees it at once */
    if (__atomic_load_n(&code_map, __ATOMIC_ACQUIRE) && this_cpu())
        return code_map_build();
    return 0;
}

/* Might a task interrupted at pc be in a long call (handoff.c)?  Outside
 * the runtime's own code, and outside the code the tick may switch in. */
bool sy__pc_long_call(uintptr_t pc)
{
    uintptr_t slo = (uintptr_t)__start_sy_text, shi = (uintptr_t)__stop_sy_text;
    if (slo && pc >= slo && pc < shi)
        return false;
    for (int i = 0, n = __atomic_load_n(&nshort_code, __ATOMIC_ACQUIRE); i < n; i++)
        if (pc >= short_code[i].lo && pc < short_code[i].hi)
            return false;
    return !pc_preemptible(pc);
}

/* --------------------------------------------------------------- the tick */

/* May the handler switch `t` away now? */
static bool preemptible(struct cpu *c, struct task *t, void *uc)
{
#if defined(SY_TSAN) || defined(SY_VALGRIND)
    /* TSan delivers signals at its own points, where switching is unsafe.
     * Under valgrind, a task preempted in its handler resumes with a
     * corrupted register once a runtime has preempted before in the same
     * process (seen in t_preempt; not explained yet).  Both builds keep
     * the tick and preempt at safe points only (need_resched). */
    (void)c, (void)t, (void)uc;
    return false;
#else
    if (t == &c->idle || t->preempt_count || t->nopreempt || t->state != SY_RUNNING)
        return false;
    return pc_preemptible(arch_uc_pc(uc));
#endif
}

static void set_period(struct cpu *c, uint64_t ns)
{
    struct itimerspec its = {
        .it_interval = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)},
        .it_value = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)},
    };
    if (c->tick_timer) /* NULL once stopped (sy__tick_stop) */
        timer_settime(*(timer_t *)c->tick_timer, 0, &its, NULL);
}

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Testing: the handler busy-waits this long, as it would when an emulator
 * or a sanitizer makes it slower than the tick (tests/t_preempt.c). */
uint64_t sy__tick_delay_ns;

/*
 * The tick stands down when handling it falls behind.  The timer is
 * periodic: if a handler (with the signal's delivery) takes longer than a
 * period - under qemu-user, a sanitizer, or a host that deschedules the
 * thread inside it - the next tick is pending when it returns and is
 * delivered at once, and the task never runs again (the qemu-user stall:
 * every CPU busy in ticks, system time above user time).  So a tick that
 * arrives less than half a period after the previous one was handled
 * restarts the timer as it ends: the next one comes a whole period later,
 * and the task runs for at least that long between two ticks.  (Nor does
 * such a tick end the slice of a task just switched in: tick_handler.)
 * Restarting costs a timer_settime (about 7 us here on CLOCK_MONOTONIC:
 * the host reprograms its clock event), which is why it is not done on
 * every tick.
 */
static void tick_end(struct cpu *c, bool behind)
{
    /* (not on a CPU about to park: its timer is off, or going off) */
    if (unlikely(behind) && !__atomic_load_n(&c->parked, __ATOMIC_RELAXED))
        set_period(c, rt.tick_ns);
    c->tick_end_ns = sy__now_ns();
}

/*
 * The tick of a detached CPU (handoff.c), whose task was in a long call.
 * It never switches from here: a task switched in its handler resumes in
 * it, and this one would resume on another host thread, where the program
 * code it was interrupted in may hold the address of the old thread's
 * errno or other thread-local variable in a register.  It asks for a
 * reschedule instead, and the task rejoins an active CPU at its next
 * runtime call that may switch (sched.c: sy__rejoin), where a change of
 * thread is allowed (SY_ERRNO_FRESH).  A killed task found in the
 * program's own code exits here: kill takes effect when the call returns.
 * Tasks preempted on this thread that the hand-off left here (they must
 * resume on it) take turns with it on this thread.
 */
static void detached_tick(struct cpu *c, struct task *t, void *uc, bool behind, int saved)
{
    if (t != &c->idle)
        c->need_resched = 1; /* its next runtime call rejoins (sched.c) */
    if (t == &c->idle || !preemptible(c, t, uc)) {
        tick_end(c, behind);
        errno = saved;
        return;
    }
    bool kill = __atomic_load_n(&t->killed, __ATOMIC_RELAXED) && !(t->mutexes | t->rwlocks);
    if (!kill && !c->leftover.len) {
        tick_end(c, behind);
        errno = saved;
        return;
    }
    errno = saved;
    c->tick_masked = true; /* as in tick_handler: one tick frame per stack */
    tick_end(c, behind);
    if (kill)
        sy__task_exit(c, SY_EXIT_KILLED);
    /* tasks preempted on this thread wait for it: their turn, here */
    t->in_tick = true;
    sy__preempt_leftover(c);
    SY_ASSERT(this_cpu() == c && c->curr == t && c->tick_masked, t,
              "a task preempted on a detached CPU resumed off it or with the tick unblocked");
    t->in_tick = false;
    c->tick_masked = false; /* as of the rt_sigreturn just ahead */
    errno = saved;
}

static void tick_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    int saved = errno;
    struct cpu *c = this_cpu();
    if (!c)
        goto out;
    if (unlikely(si->si_code == SI_TKILL)) {
        /* the monitor's probe (handoff.c): is the task stuck in a long
         * call?  Then this CPU's P goes on on a spare thread. */
        uint64_t req = __atomic_exchange_n(&c->handoff_req, 0, __ATOMIC_RELAXED);
        if (req && req - 1 == c->nswitch) /* (not switched since it was sent) */
            sy__handoff_probe(c, c->curr, uc);
        goto out;
    }
    uint64_t now = sy__now_ns();
    bool behind = rt.tick_monotonic && now - c->tick_end_ns < rt.tick_ns / 2;
    if (unlikely(sy__tick_delay_ns))
        while (sy__now_ns() - now < sy__tick_delay_ns)
            cpu_relax();

    /* account: how many periods since the last tick?  A timer signal still
     * pending when the timer expired again is not sent twice; the kernel
     * counts the misses instead (si_overrun).  The thread's CPU-time clock
     * is the exception: the kernel checks those timers only on its own tick,
     * and only if it finds the thread running then, so on a loaded host it
     * may deliver a few of them, or none, for hundreds of ms of CPU time
     * (measured here under two CPU hogs: 0 to 49 of 50 expected), with an
     * overrun that does not make up for it.  So that tick charges the CPU
     * time the thread really used since the last one, in whole periods (the
     * rest carries over): a read of CLOCK_THREAD_CPUTIME_ID, every 4 ms. */
    unsigned n = 1;
    uint64_t cpu_now = 0;
    if (!rt.tick_monotonic) {
        cpu_now = thread_cpu_ns();
        uint64_t used = cpu_now - c->tick_cpu_ns;
        n = (unsigned)(used / rt.tick_ns);
        c->tick_cpu_ns += (uint64_t)n * rt.tick_ns;
    } else if (si->si_code == SI_TIMER && si->si_overrun > 0) {
        n += (unsigned)si->si_overrun;
    }
    struct task *t = c->curr;
    WRITE_ONCE(t->ticks, t->ticks + n);
    __atomic_store_n(&rt.coarse_ns, now, __ATOMIC_RELAXED);
    if (__atomic_load_n(&rt.timer_next, __ATOMIC_RELAXED) <= now)
        sy__post(c, EV_TIMER); /* run them now or at the next schedule point */
    if (sy__io_poll_due(now))
        sy__post(c, EV_IO); /* tasks wait on fds and nobody polls (io.c) */

    /* how short-lived are this CPU's tasks? (runq.c: donate) */
    unsigned long exits = c->nexits - c->nexits_tick;
    c->nexits_tick = c->nexits;
    c->tiny_tasks = exits * TINY_TASK_NS > n * rt.tick_ns;

    /* preempt: has the same task had the CPU for a whole quantum?  Or is
     * there news that cannot wait for it: due timers that may wake a task
     * here, tasks other CPUs woke into our inbox, an idle CPU asking for
     * work (a compute-bound task would leave it idle for a whole quantum)?
     * Those are handled now, and switch only if a task became runnable
     * here. */
    if (unlikely(READ_ONCE(c->detached))) {
        detached_tick(c, c->curr, uc, behind, saved);
        return; /* (restored errno itself) */
    }
    if (!rt.quantum_ns)
        goto done;
    /* It switched since: a new slice, begun within the last period - or,
     * for a tick that is behind, just now: the tick fell due while the
     * previous task's handler ran (slowly) and came as soon as this task
     * was switched in.  Counted as a whole period, it ended the slice of a
     * task that had not run at all, whenever the tick was slower than its
     * period (qemu-user; sy__tick_delay_ns), and every turn of the same
     * task, the one after the task whose tick was on time: under qemu a
     * spinner sharing one CPU with another got 0% of it, and one of
     * tests/t_preempt's stack-bound spinners took 200 preemptions to
     * paint 60 KiB.  Its slice now starts at 0 and ends at the next tick,
     * a whole period later (the stand-down restarts the timer). */
    if (c->nswitch != c->tick_nswitch) {
        c->tick_nswitch = c->nswitch;
        c->slice_exact = !rt.tick_monotonic && c->nswitch == c->slice_cpu_nswitch;
        c->slice_ns = c->slice_exact ? cpu_now - c->slice_cpu0 : behind ? 0 : rt.tick_ns;
        c->slice_limit = (int64_t)rt.quantum_ns + t->slice_carry;
        t->slice_carry = 0;
    } else if (c->slice_exact) {
        c->slice_ns = cpu_now - c->slice_cpu0;
    } else {
        c->slice_ns += n * rt.tick_ns;
    }
    /* a turn is a tick at least, even one that pays back an overrun */
    bool over = (int64_t)c->slice_ns >= (c->slice_limit > (int64_t)rt.tick_ns
                                             ? c->slice_limit : (int64_t)rt.tick_ns);
    if (t == &c->idle || (!over && !cpu_has_events(c)))
        goto done;
    if (!preemptible(c, t, uc)) {
        if (over)
            c->need_resched = 1; /* at the next safe point */
        goto done;
    }
    errno = saved;
    /* Switching from here leaves this frame on t's stack and this host
     * thread with the tick blocked (no SA_NODEFER): the task switched to
     * unblocks it (sched.c: finish_task_switch) unless it is itself in its
     * handler, and t is switched back in only with the tick blocked, which
     * its rt_sigreturn then lifts.  So a stack holds one tick frame at most,
     * however late or slow the ticks. */
    c->tick_masked = true;
    tick_end(c, behind); /* the next task's time starts here */
    /* a killed task that ran a whole quantum without reaching a kill point
     * (sy_yield, a blocking call) has its kill point at this tick - unless
     * it holds a sy_mutex or sy_rwlock: exiting here would leave it locked
     * for ever, so it exits at its next kill point, after the unlock */
    if (over && __atomic_load_n(&t->killed, __ATOMIC_RELAXED) && !(t->mutexes | t->rwlocks))
        sy__task_exit(c, SY_EXIT_KILLED);
    t->in_tick = true;
    /* the next task's turn starts now: on the CPU-time clock, its slice is
     * measured from here exactly (turns, above) */
    uint64_t nswitch = c->nswitch;
    c->slice_cpu0 = cpu_now;
    c->slice_cpu_nswitch = nswitch + 1;
    sy__preempt(c, over); /* if it switched, t runs again here, on this same
                             CPU (stay_home), and the next tick sees a
                             switch: a new slice (a hand-off leaves it on
                             this host thread too: handoff.c) */
    if (c->nswitch == nswitch)
        c->slice_cpu_nswitch = UINT64_MAX; /* it did not switch */
    SY_ASSERT(this_cpu() == c && c->curr == t && c->tick_masked, t,
              "a preempted task resumed off its CPU or with the tick unblocked");
    t->in_tick = false;
    c->tick_masked = false; /* as of the rt_sigreturn just ahead */
    errno = saved;
    return;
done:
    tick_end(c, behind);
out:
    errno = saved;
}

int sy__tick_start(struct cpu *c)
{
    if (c->id == 0) {
        if ((rt.quantum_ns || rt.handoff_ns) && code_map_build() != 0)
            return -ENOMEM;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = tick_handler;
        /* no SA_NODEFER: the tick is blocked while its handler runs, and
         * stays blocked across a switch from inside it (tick_handler) */
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(TICK_SIGNAL, &sa, &old_tick_action) != 0)
            return -errno;
    }
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = TICK_SIGNAL;
    ev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    timer_t *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    clockid_t clock = rt.tick_monotonic ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID;
    if (timer_create(clock, &ev, t) != 0) {
        int e = -errno;
        free(t);
        return e;
    }
    c->tick_timer = t;
    c->tick_cpu_ns = thread_cpu_ns();
    /* a thread that blocked every signal (for signalfd, say) and then
     * called sy_run, or started CPUs that inherit its mask, still ticks */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, TICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &set, &old);
    c->tick_was_blocked = sigismember(&old, TICK_SIGNAL) == 1;
    set_period(c, rt.tick_ns);
    return 0;
}

/* A CPU about to park stops a wall-clock tick, and starts it again after:
 * an idle CPU gets no signals.  (A CPU-time tick stops by itself.) */
void sy__tick_park(struct cpu *c, bool parking)
{
    if (rt.tick_monotonic && c->tick_timer)
        set_period(c, parking ? 0 : rt.tick_ns);
}

/* Stop the tick of CPU c, on its own thread.  A tick may still be pending:
 * its handler would then run after the timer is gone (and the stand-down
 * would restart it).  So the tick is blocked while the timer is deleted and
 * forgotten (set_period then does nothing), and the thread's mask for the
 * signal is given back as the runtime found it (sy__tick_start). */
void sy__tick_stop(struct cpu *c)
{
    if (c->tick_timer) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, TICK_SIGNAL);
        pthread_sigmask(SIG_BLOCK, &set, NULL);
        void *timer = c->tick_timer;
        c->tick_timer = NULL;
        timer_delete(*(timer_t *)timer);
        free(timer);
        if (!c->tick_was_blocked)
            pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    }
    if (c->id == 0) {
        sigaction(TICK_SIGNAL, &old_tick_action, NULL);
        code_map_free();
    }
}

/* Choose the tick's period and clock for the configured quantum. */
void sy__tick_config(uint64_t tick_ns, uint64_t quantum_ns)
{
    rt.quantum_ns = quantum_ns;
    rt.tick_ns = quantum_ns && quantum_ns < tick_ns ? quantum_ns : tick_ns;
    rt.tick_monotonic = rt.tick_ns < CPU_CLOCK_MIN_NS;
}

/* ------------------------------------------------------- public calls */

int sy_preempt_disable(void)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    c->curr->preempt_count++;
    return 0;
}

int sy_preempt_enable(void)
{
    struct cpu *c = this_cpu();
    if (!c)
        return -EPERM;
    struct task *t = c->curr;
    if (t->preempt_count == 0)
        return -EINVAL; /* not disabled */
    t->preempt_count--;
    resched_point(c); /* the safe point a tick may be waiting for */
    return 0;
}
