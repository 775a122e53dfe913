/* Absurd input never crashes: every numeric argument of the API and every
 * field of sy_config and sy_attr at its extremes (0, 1, the documented
 * bounds and one past them, the type's limits) gets the documented error or
 * a correct result, never a crash, a hang or a wrong answer.  No timing
 * assertions: the sleeps here end by timer, wakeup or kill, whatever the
 * machine's load. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <unistd.h>

static size_t page(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static size_t round_page(size_t n)
{
    return (n + page() - 1) & ~(page() - 1);
}

/* A static buffer: some inits here run on the smallest stack. */
static sy_task_info psbuf[64];

static sy_task_info ps_of(int pid)
{
    int n = sy_ps(psbuf, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (psbuf[i].pid == pid)
            return psbuf[i];
    fprintf(stderr, "ps_of: no task %d\n", pid);
    exit(1);
}

static int ntasks(void)
{
    return sy_ps(NULL, 0);
}

static int ran; /* set by every init: sy_run with a bad config runs nothing */

static int nop(void *arg)
{
    (void)arg;
    return 0;
}

static int ret_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static int init_ncpu(void *arg)
{
    (void)arg;
    ran = 1;
    return sy_ncpu();
}

static void expect_einval(const sy_config *c)
{
    ran = 0;
    CHECK_EQ(sy_run(c, init_ncpu, NULL), -EINVAL);
    CHECK_EQ(ran, 0);
}

/* ------------------------------------------------------------ sy_config */

static int child_cpu(void *arg)
{
    (void)arg;
    sy_yield(); /* a pinned task comes back to its CPU */
    return sy_cpu();
}

/* Every CPU a task can be pinned to, and one past. */
static int init_many_cpus(void *arg)
{
    int want = sy_ncpu(), asked = (int)(intptr_t)arg;
    CHECK(want >= 1 && want <= asked);
    if (want < asked) /* qemu-user: 32 timers in all, one per CPU */
        fprintf(stderr, "[%d of %d CPUs started] ", want, asked);
    int ends[] = {0, 1 % want, want / 2, want - 1};
    int pids[4];
    for (int i = 0; i < 4; i++) {
        sy_attr a = {.flags = SY_ATTR_PIN, .cpu = ends[i]};
        pids[i] = sy_spawn(child_cpu, NULL, &a);
        CHECK(pids[i] > 0);
    }
    sy_attr bad = {.flags = SY_ATTR_PIN, .cpu = want};
    CHECK_EQ(sy_spawn(child_cpu, NULL, &bad), -EINVAL);
    for (int i = 0; i < 4; i++) {
        int st;
        CHECK_EQ(sy_wait(pids[i], &st, 0), pids[i]);
        CHECK_EQ(st, ends[i]);
    }
    /* and unpinned ones, spread over whichever CPUs are idle */
    for (int i = 0; i < 16; i++)
        CHECK(sy_spawn(ret_arg, (void *)(intptr_t)i, NULL) > 0);
    int sum = 0, st;
    while (sy_wait(-1, &st, 0) > 0)
        sum += st;
    CHECK_EQ(sum, 15 * 16 / 2);
    return 0;
}

static void test_config_ncpu(void)
{
    int bad[] = {-1, INT_MIN, SY_MAX_CPUS + 1, INT_MAX};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_einval(&(sy_config){.ncpu = bad[i]});

    cpu_set_t set;
    CHECK_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    CHECK_EQ(sy_run(&(sy_config){.ncpu = 0}, init_ncpu, NULL), CPU_COUNT(&set));
    CHECK_EQ(sy_run(NULL, init_ncpu, NULL), CPU_COUNT(&set));
    CHECK_EQ(sy_run(&(sy_config){.ncpu = 1}, init_ncpu, NULL), 1);
    CHECK_EQ(sy_run(&(sy_config){.ncpu = 1}, init_many_cpus, (void *)1), 0);

    /* SY_MAX_CPUS host threads on however few cores: it boots, runs and
     * stops (it took 18 s on 2 cores while the started CPUs spun asking
     * CPU 0 for init).  valgrind allows 500 threads by default. */
#if defined(SY_VALGRIND)
    int most = 64;
#else
    int most = SY_MAX_CPUS;
#endif
    sy_config c = {.ncpu = most};
    CHECK_EQ(sy_run(&c, init_many_cpus, (void *)(intptr_t)most), 0);
    c.flags = SY_PIN_CPUS; /* more CPUs than cores: pinned round the mask */
    int n = sy_run(&c, init_ncpu, NULL);
    CHECK(n >= 1 && n <= most);
}

static int init_max_tasks(void *arg)
{
    int max = (int)(intptr_t)arg;
    for (int i = 1; i < max; i++)
        CHECK(sy_spawn(nop, NULL, NULL) > 0);
    CHECK_EQ(sy_spawn(nop, NULL, NULL), -EAGAIN);
    CHECK_EQ(ntasks(), max);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK_EQ(ntasks(), 1);
    return 0;
}

static int init_spawn_some(void *arg)
{
    (void)arg;
    for (int i = 0; i < 8; i++)
        CHECK(sy_spawn(nop, NULL, NULL) > 0);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    return 0;
}

static void test_config_max_tasks(void)
{
    int bad[] = {-1, INT_MIN, (1 << 22) + 1, INT_MAX};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_einval(&(sy_config){.max_tasks = bad[i]});
    for (int max = 1; max <= 3; max++) {
        sy_config c = {.ncpu = 1, .max_tasks = max};
        CHECK_EQ(sy_run(&c, init_max_tasks, (void *)(intptr_t)max), 0);
    }
    sy_config c = {.max_tasks = 1 << 22};
    CHECK_EQ(sy_run(&c, init_spawn_some, NULL), 0);
    c.max_tasks = 0;
    CHECK_EQ(sy_run(&c, init_spawn_some, NULL), 0);
}

/* Use some of the stack, from the top (the deepest byte last). */
static __attribute__((noinline)) int touch_stack(size_t bytes)
{
    volatile char buf[1024];
    buf[0] = 1;
    buf[sizeof buf - 1] = 2;
    if (bytes > 2 * sizeof buf)
        return touch_stack(bytes - sizeof buf) + buf[0];
    return buf[0] + buf[sizeof buf - 1];
}

static int child_touch(void *arg)
{
    size_t bytes = (size_t)(uintptr_t)arg;
    return touch_stack(bytes) > 0 ? 0 : 1;
}

/* init checks its own stack and that a default child gets the same. */
static int init_stack_size(void *arg)
{
    size_t want = (size_t)(uintptr_t)arg;
    CHECK_EQ(ps_of(1).stack_size, want);
    int c = sy_spawn(child_touch, (void *)(uintptr_t)4096, NULL);
    CHECK(c > 0);
    CHECK_EQ(ps_of(c).stack_size, want);
    int st;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    CHECK_EQ(st, 0);
    return 0;
}

static void test_config_stack_size(void)
{
    size_t bad[] = {1, SY_STACK_MIN - 1, (size_t)SY_STACK_MAX + 1, SIZE_MAX,
                    SIZE_MAX - page() + 2 /* rounds up past SIZE_MAX */};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_einval(&(sy_config){.stack_size = bad[i]});
    size_t good[] = {0, SY_STACK_MIN, SY_STACK_MIN + 1, SY_STACK_DEFAULT - 1,
                     (size_t)SY_STACK_MAX - 1, SY_STACK_MAX};
    for (unsigned i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t want = good[i] ? round_page(good[i]) : SY_STACK_DEFAULT;
        sy_config c = {.ncpu = 1, .stack_size = good[i]};
        CHECK_EQ(sy_run(&c, init_stack_size, (void *)(uintptr_t)want), 0);
    }
}

static int spin_child(void *arg)
{
    (void)arg;
    busy_ns(2000000); /* long enough for a 100 us quantum to preempt */
    return 7;
}

/* A little of everything: spawn, yield, sleep, compute, ps. */
static int init_work(void *arg)
{
    (void)arg;
    ran = 1;
    int a = sy_spawn(spin_child, NULL, NULL), b = sy_spawn(ret_arg, (void *)3, NULL);
    CHECK(a > 0 && b > 0);
    CHECK_EQ(sy_nanosleep(100000), 0);
    CHECK_EQ(sy_yield(), 0);
    CHECK_EQ(ntasks() >= 1, 1);
    int st;
    CHECK_EQ(sy_wait(a, &st, 0), a);
    CHECK_EQ(st, 7);
    CHECK_EQ(sy_wait(b, &st, 0), b);
    CHECK_EQ(st, 3);
    return 0;
}

static void expect_runs(const sy_config *c)
{
    ran = 0;
    int r = sy_run(c, init_work, NULL);
    if (r != 0)
        fprintf(stderr, "\nsy_run(ncpu %d flags %#x tick_us %u quantum_us %u) = %d (%s)\n",
                c->ncpu, c->flags, c->tick_us, c->quantum_us, r, sy_strerror(r));
    CHECK_EQ(r, 0);
    CHECK_EQ(ran, 1);
}

static void test_config_flags(void)
{
    unsigned bad[] = {0x10, 0x80000000u, UINT_MAX,
                      SY_ACCT_PRECISE | SY_PIN_CPUS | SY_NO_PREEMPT | 0x100};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_einval(&(sy_config){.flags = bad[i]});
    unsigned good[] = {0, SY_ACCT_PRECISE, SY_PIN_CPUS, SY_NO_PREEMPT, SY_NO_HANDOFF,
                       SY_ACCT_PRECISE | SY_PIN_CPUS | SY_NO_PREEMPT | SY_NO_HANDOFF};
    for (unsigned i = 0; i < sizeof good / sizeof good[0]; i++)
        for (int ncpu = 1; ncpu <= 2; ncpu++)
            expect_runs(&(sy_config){.ncpu = ncpu, .flags = good[i]});
}

/* the hand-off (src/handoff.c): its bound, 1 ms .. 10 s, and its threads */
static void test_config_handoff(void)
{
    unsigned bad_us[] = {1, 999, 10000001};
    for (unsigned i = 0; i < sizeof bad_us / sizeof bad_us[0]; i++)
        expect_einval(&(sy_config){.handoff_us = bad_us[i]});
    expect_einval(&(sy_config){.handoff_threads = -1});
    expect_einval(&(sy_config){.handoff_threads = SY_MAX_CPUS + 1});
    expect_runs(&(sy_config){.ncpu = 1, .handoff_us = 1000, .handoff_threads = 1});
    expect_runs(&(sy_config){.ncpu = 2, .handoff_us = 10000000, .handoff_threads = 64});
}

static void test_config_tick_quantum(void)
{
    /* the tick: 100 us .. 1 s (a 1 us tick was a signal storm on every CPU
     * that overflowed the task stacks with nested handlers) */
    unsigned bad_tick[] = {1, 99, 1000001, 10000000, 10000001, UINT_MAX};
    for (unsigned i = 0; i < sizeof bad_tick / sizeof bad_tick[0]; i++)
        expect_einval(&(sy_config){.tick_us = bad_tick[i]});
    unsigned bad_q[] = {1, 99, 10000001, UINT_MAX};
    for (unsigned i = 0; i < sizeof bad_q / sizeof bad_q[0]; i++) {
        expect_einval(&(sy_config){.quantum_us = bad_q[i]});
        expect_einval(&(sy_config){.quantum_us = bad_q[i], .flags = SY_NO_PREEMPT});
    }
    unsigned good_tick[] = {0, 100, 3999, 4000, 1000000};
    unsigned good_q[] = {0, 100, 4000, 10000000};
    for (unsigned i = 0; i < sizeof good_tick / sizeof good_tick[0]; i++)
        for (unsigned j = 0; j < sizeof good_q / sizeof good_q[0]; j++)
            expect_runs(&(sy_config){.ncpu = 2, .tick_us = good_tick[i],
                                     .quantum_us = good_q[j]});
    expect_runs(&(sy_config){.ncpu = 1, .tick_us = 100, .quantum_us = 100});
    expect_runs(&(sy_config){.ncpu = 2, .tick_us = 100, .flags = SY_NO_PREEMPT});
}

static void test_config_all_wrong(void)
{
    sy_config c = {.ncpu = INT_MIN, .max_tasks = INT_MIN, .stack_size = SIZE_MAX,
                   .flags = UINT_MAX, .tick_us = UINT_MAX, .quantum_us = UINT_MAX};
    expect_einval(&c);
    CHECK_EQ(sy_run(NULL, NULL, NULL), -EINVAL);
    sy_config ok = {0}; /* the all-defaults config, after all that */
    CHECK_EQ(sy_run(&ok, init_ncpu, NULL) > 0, 1);
}

/* -------------------------------------------------------------- sy_attr */

static int init_attr(void *arg)
{
    (void)arg;
    size_t bad_size[] = {1, SY_STACK_MIN - 1, (size_t)SY_STACK_MAX + 1, SIZE_MAX,
                         SIZE_MAX - page() + 2};
    for (unsigned i = 0; i < sizeof bad_size / sizeof bad_size[0]; i++)
        CHECK_EQ(sy_spawn(nop, NULL, &(sy_attr){.stack_size = bad_size[i]}), -EINVAL);
    /* 0 is the default; the others are rounded up to pages, and usable */
    size_t good[] = {0, SY_STACK_MIN, SY_STACK_MIN + 1, (size_t)SY_STACK_MAX - 1, SY_STACK_MAX};
    for (unsigned i = 0; i < sizeof good / sizeof good[0]; i++) {
        size_t want = good[i] ? round_page(good[i]) : SY_STACK_DEFAULT;
        size_t use = want > (1u << 20) ? (1u << 20) : want / 4;
        int c = sy_spawn(child_touch, (void *)(uintptr_t)use,
                         &(sy_attr){.stack_size = good[i]});
        CHECK(c > 0);
        CHECK_EQ(ps_of(c).stack_size, want);
        int st;
        CHECK_EQ(sy_wait(c, &st, 0), c);
        CHECK_EQ(st, 0);
    }

    unsigned bad_flags[] = {0x4, 0x80000000u, UINT_MAX, SY_ATTR_PIN | SY_ATTR_NOPREEMPT | 0x10};
    for (unsigned i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++)
        CHECK_EQ(sy_spawn(nop, NULL, &(sy_attr){.flags = bad_flags[i]}), -EINVAL);

    int ncpu = sy_ncpu();
    int bad_cpu[] = {-1, INT_MIN, ncpu, INT_MAX};
    for (unsigned i = 0; i < sizeof bad_cpu / sizeof bad_cpu[0]; i++) {
        CHECK_EQ(sy_spawn(nop, NULL, &(sy_attr){.flags = SY_ATTR_PIN, .cpu = bad_cpu[i]}),
                 -EINVAL);
        /* without SY_ATTR_PIN the field is ignored */
        int c = sy_spawn(nop, NULL, &(sy_attr){.flags = SY_ATTR_NOPREEMPT, .cpu = bad_cpu[i]});
        CHECK(c > 0);
        CHECK_EQ(sy_wait(c, NULL, 0), c);
    }
    CHECK_EQ(ntasks(), 1); /* no failed spawn left anything behind */
    int ends[] = {0, ncpu - 1};
    for (int i = 0; i < 2; i++) {
        int c = sy_spawn(child_cpu, NULL,
                         &(sy_attr){.flags = SY_ATTR_PIN | SY_ATTR_NOPREEMPT, .cpu = ends[i]});
        int st;
        CHECK(c > 0);
        CHECK_EQ(sy_wait(c, &st, 0), c);
        CHECK_EQ(st, ends[i]);
    }

    /* the argument pointer is passed through, whatever it is */
    int c = sy_spawn(ret_arg, (void *)(intptr_t)-1, NULL), st;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    CHECK_EQ(st, -1);
    return 0;
}

static void test_attr(void)
{
    run_init_cpus(init_attr, NULL, 0, 2);
}

/* ----------------------------------------------------------- wait, exit */

static int child_sleep_then(void *arg)
{
    int r = sy_sleep(arg, NULL);
    return r == 0 ? 9 : 100 - r;
}

static int init_wait(void *arg)
{
    (void)arg;
    static int chan;
    int bad_pid[] = {0, -2, INT_MIN};
    for (unsigned i = 0; i < sizeof bad_pid / sizeof bad_pid[0]; i++)
        CHECK_EQ(sy_wait(bad_pid[i], NULL, 0), -EINVAL);
    int c = sy_spawn(child_sleep_then, &chan, NULL);
    CHECK(c > 0);
    sy_yield(); /* c is asleep (one CPU) */
    CHECK_EQ(ps_of(c).state, SY_SLEEPING);
    int none[] = {INT_MAX, c + 1, 1 /* ourselves */, 12345};
    for (unsigned i = 0; i < sizeof none / sizeof none[0]; i++) {
        CHECK_EQ(sy_wait(none[i], NULL, 0), -ECHILD);
        CHECK_EQ(sy_wait(none[i], NULL, SY_WNOHANG), -ECHILD);
    }
    int bad_flags[] = {2, -1, INT_MIN, INT_MAX, SY_WNOHANG | 0x100};
    for (unsigned i = 0; i < sizeof bad_flags / sizeof bad_flags[0]; i++) {
        CHECK_EQ(sy_wait(c, NULL, bad_flags[i]), -EINVAL);
        CHECK_EQ(sy_wait(-1, NULL, bad_flags[i]), -EINVAL);
    }
    CHECK_EQ(sy_wait(c, NULL, SY_WNOHANG), 0);
    CHECK_EQ(sy_wait(-1, NULL, SY_WNOHANG), 0);
    CHECK_EQ(ps_of(c).state, SY_SLEEPING); /* none of that disturbed it */
    CHECK_EQ(sy_wakeup(&chan), 1);
    int st = -1;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    CHECK_EQ(st, 9);

    /* every exit status comes back exactly */
    int statuses[] = {0, 1, -1, 255, 256, SY_EXIT_KILLED, INT_MAX, INT_MIN, -EINVAL};
    int n = sizeof statuses / sizeof statuses[0];
    for (int i = 0; i < n; i++) {
        c = sy_spawn(ret_arg, (void *)(intptr_t)statuses[i], NULL);
        CHECK_EQ(sy_wait(c, &st, 0), c);
        CHECK_EQ(st, statuses[i]);
    }
    return 0;
}

static void test_wait_exit(void)
{
    run_init(init_wait, NULL, 0);
    /* init's status is sy_run's, whatever it is */
    CHECK_EQ(sy_run(&(sy_config){.ncpu = 1}, ret_arg, (void *)(intptr_t)INT_MAX), INT_MAX);
    CHECK_EQ(sy_run(&(sy_config){.ncpu = 1}, ret_arg, (void *)(intptr_t)INT_MIN), INT_MIN);
}

/* ------------------------------------------------------------------ kill */

#define SLOT(pid) (((pid)-1) & ((1 << 22) - 1)) /* task.c: the table slot */

static int child_not_killed(void *arg)
{
    int r = sy_sleep(arg, NULL);
    return r == 0 && sy_killed() == 0 ? 5 : 6;
}

static int init_kill(void *arg)
{
    (void)arg;
    static int chan;
    int none[] = {0, -1, -2, INT_MIN, INT_MAX, 12345, 2, (int)((511u << 22 | 1u) + 1)};
    for (unsigned i = 0; i < sizeof none / sizeof none[0]; i++)
        CHECK_EQ(sy_kill(none[i]), -ESRCH);

    /* a reaped pid: its slot is reused, under a new generation, and the
     * old pid must not reach the task there now */
    int old = sy_spawn(nop, NULL, NULL);
    CHECK_EQ(sy_wait(old, NULL, 0), old);
    CHECK_EQ(sy_kill(old), -ESRCH);
    int kids[64], nkids = 0;
    bool reused = false;
    while (!reused && nkids < 64) {
        int c = sy_spawn(child_not_killed, &chan, NULL);
        CHECK(c > 0 && c != old);
        kids[nkids++] = c;
        reused = SLOT(c) == SLOT(old);
    }
    CHECK(reused);
    sy_yield(); /* one CPU: all asleep now */
    CHECK_EQ(sy_kill(old), -ESRCH);
    CHECK_EQ(sy_wait(old, NULL, SY_WNOHANG), -ECHILD);
    CHECK_EQ(sy_wakeup(&chan), nkids);
    for (int i = 0; i < nkids; i++) {
        int st;
        CHECK_EQ(sy_wait(kids[i], &st, 0), kids[i]);
        CHECK_EQ(st, 5); /* not killed */
    }

    /* a pid comes back only once its slot has been used 512 times more */
    enum { N = 1100 }; /* one slot used over 2 x 512 times, if reuse is LIFO */
    static int pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = sy_spawn(nop, NULL, NULL);
        CHECK(pids[i] > 0);
        CHECK_EQ(sy_wait(pids[i], NULL, 0), pids[i]);
    }
    int repeats = 0;
    for (int i = 0; i < N; i++) {
        int uses = 0;
        for (int j = i + 1; j < N; j++) {
            uses += SLOT(pids[j]) == SLOT(pids[i]);
            if (pids[j] == pids[i]) {
                CHECK_EQ(uses, 512);
                repeats++;
                break;
            }
        }
    }
    CHECK(repeats > 0);
    return 0;
}

static void test_kill(void)
{
    run_init(init_kill, NULL, 0);
}

/* ----------------------------------------------------------------- sleep */

static int results[8];
static sy_spinlock lk = SY_SPINLOCK_INIT;

static int child_nanosleep(void *arg)
{
    uint64_t ns = *(uint64_t *)arg;
    results[0] = sy_nanosleep(ns);
    return 0;
}

static int child_timeout(void *arg)
{
    uint64_t ns = *(uint64_t *)arg;
    static int chan;
    results[1] = sy_sleep_timeout(&chan, NULL, ns);
    return 0;
}

static int child_timeout_woken(void *arg)
{
    results[2] = sy_sleep_timeout(arg, NULL, UINT64_MAX);
    return 0;
}

#define UNSET 0x55555555 /* results[] before the sleep returns */

/* Wait until `pid` is asleep (on another CPU it may take a while), and
 * fail if its sleep (results[i]; -1: none) returned meanwhile. */
static void until_asleep(int pid, int i)
{
    for (;;) {
        int state = ps_of(pid).state;
        if (i >= 0 && results[i] != UNSET) {
            fprintf(stderr, "\ntask %d: state %s, its sleep returned %d\n", pid,
                    sy_state_name(state), results[i]);
            CHECK(!"the endless sleep ended");
        }
        if (state == SY_SLEEPING)
            return;
        CHECK_EQ(sy_nanosleep(10000), 0);
    }
}

/* An endless sleep (any ns past what the clock can count) ends only when
 * killed or woken. */
static void endless(uint64_t ns)
{
    static int chan;
    for (int i = 0; i < 3; i++)
        results[i] = UNSET;
    int a = sy_spawn(child_nanosleep, &ns, NULL);
    int b = sy_spawn(child_timeout, &ns, NULL);
    int d = sy_spawn(child_timeout_woken, &chan, NULL);
    CHECK(a > 0 && b > 0 && d > 0);
    until_asleep(a, 0);
    until_asleep(b, 1);
    until_asleep(d, 2);
    /* a timer of ours, later than any deadline theirs could have wrapped
     * to: once it fired, theirs would have fired too */
    CHECK_EQ(sy_nanosleep(1000000), 0);
    until_asleep(a, 0);
    until_asleep(b, 1);
    until_asleep(d, 2);
    CHECK_EQ(sy_kill(a), 0);
    CHECK_EQ(sy_kill(b), 0);
    CHECK_EQ(sy_wakeup(&chan), 1);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK_EQ(results[0], -EINTR);
    CHECK_EQ(results[1], -EINTR);
    CHECK_EQ(results[2], 0);
}

static int init_sleep(void *arg)
{
    (void)arg;
    static int chan;
    CHECK_EQ(sy_nanosleep(0), 0);
    CHECK_EQ(sy_nanosleep(1), 0);
    CHECK_EQ(sy_sleep_timeout(&chan, NULL, 0), -ETIMEDOUT);
    CHECK_EQ(sy_sleep_timeout(&chan, NULL, 1), -ETIMEDOUT);
    sy_spin_lock(&lk);
    CHECK_EQ(sy_sleep_timeout(&chan, &lk, 0), -ETIMEDOUT);
    CHECK(lk.locked); /* held again, as documented */
    sy_spin_unlock(&lk);
    CHECK_EQ(sy_sleep_timeout(NULL, NULL, 0), -EINVAL);
    CHECK_EQ(sy_sleep_timeout(NULL, NULL, UINT64_MAX), -EINVAL);

    /* channels at the ends of the address space */
    const void *ends[] = {(const void *)1, (const void *)UINTPTR_MAX};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(sy_wakeup(ends[i]), 0);
        CHECK_EQ(sy_wakeup_one(ends[i]), 0);
        CHECK_EQ(sy_sleep_timeout(ends[i], NULL, 1000), -ETIMEDOUT);
        int c = sy_spawn(child_sleep_then, (void *)ends[i], NULL);
        until_asleep(c, -1);
        CHECK_EQ(sy_wakeup_one(ends[i]), 1);
        int st;
        CHECK_EQ(sy_wait(c, &st, 0), c);
        CHECK_EQ(st, 9);
    }

    endless(UINT64_MAX);
    endless(UINT64_MAX - 1);
    endless(UINT64_MAX / 2);
    endless((uint64_t)INT64_MAX + 1);
    return 0;
}

static void test_sleep(void)
{
    run_init(init_sleep, NULL, 0);
    run_init_cpus(init_sleep, NULL, 0, 2); /* the timers' owner is a parked CPU */
}

/* -------------------------------------------------------------------- ps */

static int init_ps(void *arg)
{
    (void)arg;
    static int chan;
    int a = sy_spawn(child_sleep_then, &chan, NULL);
    int b = sy_spawn(child_sleep_then, &chan, NULL);
    sy_yield();
    sy_task_info buf[8], canary;
    memset(&canary, 0xab, sizeof canary);
    for (int i = 0; i < 8; i++)
        buf[i] = canary;
    CHECK_EQ(sy_ps(NULL, 0), 3);
    CHECK_EQ(sy_ps(buf, 0), 3); /* counts, writes nothing */
    CHECK(memcmp(&buf[0], &canary, sizeof canary) == 0);
    CHECK_EQ(sy_ps(buf, 1), 3); /* one entry, not two */
    CHECK_EQ(buf[0].pid, 1);
    CHECK(memcmp(&buf[1], &canary, sizeof canary) == 0);
    CHECK_EQ(sy_ps(buf, INT_MAX), 3); /* writes only what there is */
    CHECK_EQ(buf[1].pid, a);
    CHECK_EQ(buf[2].pid, b);
    CHECK(memcmp(&buf[3], &canary, sizeof canary) == 0);
    CHECK_EQ(sy_ps(NULL, 1), -EINVAL);
    CHECK_EQ(sy_ps(NULL, INT_MAX), -EINVAL);
    CHECK_EQ(sy_ps(buf, -1), -EINVAL);
    CHECK_EQ(sy_ps(buf, INT_MIN), -EINVAL);
    CHECK(memcmp(&buf[3], &canary, sizeof canary) == 0);

    /* ps_print: a bad descriptor is an error, not a silent 0 */
    CHECK_EQ(sy_ps_print(-1), -EBADF);
    CHECK_EQ(sy_ps_print(INT_MAX), -EBADF);
    CHECK_EQ(sy_ps_print(INT_MIN), -EBADF);
    int ro = open("/dev/null", O_RDONLY);
    CHECK(ro >= 0);
    CHECK_EQ(sy_ps_print(ro), -EBADF);
    close(ro);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(sy_ps_print(p[1]), 0);
    close(p[1]);
    char text[4096];
    ssize_t n = read(p[0], text, sizeof text - 1);
    close(p[0]);
    CHECK(n > 0);
    text[n] = 0;
    CHECK(strstr(text, "PID") && strstr(text, "SLEEPING") && strstr(text, "init"));

    CHECK_EQ(sy_wakeup(&chan), 2);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    return 0;
}

static void test_ps(void)
{
    run_init(init_ps, NULL, 0);
}

/* ----------------------------------------------------- strings, outside */

static void test_strings(void)
{
    int known[] = {EPERM, EINVAL, ENOMEM, EAGAIN, ECHILD, ESRCH, EINTR,
                   EBUSY, EDEADLK, ETIMEDOUT, ENOSPC, EBADF};
    for (unsigned i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(sy_strerror(-known[i]), "unknown error") == 0) {
            fprintf(stderr, "\nsy_strerror(-%d) is unknown\n", known[i]);
            CHECK(0);
        }
    CHECK(strcmp(sy_strerror(0), "success") == 0);
    int odd[] = {INT_MIN, INT_MIN + 1, -4096, -1000, 1, EINVAL, 4096, INT_MAX};
    for (unsigned i = 0; i < sizeof odd / sizeof odd[0]; i++)
        CHECK(strcmp(sy_strerror(odd[i]), "unknown error") == 0);
    for (int e = -300; e <= 300; e++)
        CHECK(sy_strerror(e) != NULL && sy_strerror(e)[0]);

    CHECK(strcmp(sy_state_name(SY_UNUSED), "UNUSED") == 0);
    CHECK(strcmp(sy_state_name(SY_ZOMBIE), "ZOMBIE") == 0);
    int bad_state[] = {-1, SY_ZOMBIE + 1, INT_MIN, INT_MAX};
    for (unsigned i = 0; i < sizeof bad_state / sizeof bad_state[0]; i++)
        CHECK(strcmp(sy_state_name(bad_state[i]), "?") == 0);

    /* outside a runtime, whatever the argument: -EPERM */
    CHECK_EQ(sy_nanosleep(0), -EPERM);
    CHECK_EQ(sy_nanosleep(UINT64_MAX), -EPERM);
    CHECK_EQ(sy_sleep_timeout(NULL, NULL, UINT64_MAX), -EPERM);
    CHECK_EQ(sy_kill(INT_MIN), -EPERM);
    CHECK_EQ(sy_wait(INT_MIN, NULL, INT_MIN), -EPERM);
    CHECK_EQ(sy_exit(INT_MIN), -EPERM);
    CHECK_EQ(sy_ps(NULL, INT_MIN), -EPERM);
    CHECK_EQ(sy_ps_print(-1), -EPERM);
    CHECK_EQ(sy_spawn(NULL, NULL, &(sy_attr){.stack_size = SIZE_MAX}), -EPERM);
    CHECK_EQ(sy_preempt_disable(), -EPERM);
    CHECK_EQ(sy_preempt_enable(), -EPERM);
    CHECK_EQ(sy_cpu(), -EPERM);
    CHECK_EQ(sy_ncpu(), -EPERM);
}

/* ------------------------------------------------------------ preemption */

static int init_preempt_nest(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_preempt_enable(), -EINVAL); /* no disable yet */
    CHECK_EQ(sy_preempt_enable(), -EINVAL);
    for (int i = 0; i < 100000; i++)
        CHECK_EQ(sy_preempt_disable(), 0);
    for (int i = 0; i < 100000; i++)
        CHECK_EQ(sy_preempt_enable(), 0);
    CHECK_EQ(sy_preempt_enable(), -EINVAL);
    /* and the count is back at zero: the runtime switches as usual */
    int c = sy_spawn(ret_arg, (void *)4, NULL), st;
    CHECK_EQ(sy_yield(), 0);
    CHECK_EQ(sy_wait(c, &st, 0), c);
    CHECK_EQ(st, 4);
    return 0;
}

static void test_preempt_nesting(void)
{
    run_init(init_preempt_nest, NULL, 0);
}

static char long_name[4097];

static int declare_n(int from, int to)
{
    char name[64];
    for (int i = from; i < to; i++) {
        snprintf(name, sizeof name, "/no/such/dir/libnothing-%02d.so", i);
        int r = sy_preempt_library(name, i % 2 ? INT_MIN : INT_MAX);
        if (r)
            return r;
    }
    return 0;
}

static int init_declare(void *arg)
{
    (void)arg;
    /* the table is full: a new name, inside a running runtime, too */
    CHECK_EQ(sy_preempt_library("/no/such/dir/libnothing-99.so", 1), -ENOSPC);
    /* a name declared again takes no room, and the map is rebuilt */
    CHECK_EQ(sy_preempt_library("/no/such/dir/libnothing-00.so", 0), 0);
    CHECK_EQ(sy_preempt_library(NULL, 1), -EINVAL);
    CHECK_EQ(sy_preempt_library("", 1), -EINVAL);
    int c = sy_spawn(spin_child, NULL, NULL), st;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    CHECK_EQ(st, 7);
    return 0;
}

/* Last: declarations last for the life of the process. */
static void test_preempt_library(void)
{
    CHECK_EQ(sy_preempt_library(NULL, 1), -EINVAL);
    CHECK_EQ(sy_preempt_library("", 1), -EINVAL);
    memset(long_name, 'x', sizeof long_name - 1);
    CHECK_EQ(sy_preempt_library(long_name, 1), -EINVAL); /* 4096 bytes */
    long_name[64] = 0;
    CHECK_EQ(sy_preempt_library(long_name, 1), -EINVAL); /* 64 */
    long_name[63] = 0;
    CHECK_EQ(sy_preempt_library(long_name, -1), 0); /* 63: the longest */
    CHECK_EQ(sy_preempt_library(long_name, 0), 0);  /* again: no room taken */
    CHECK_EQ(declare_n(0, 31), 0);                  /* 32 in all */
    CHECK_EQ(declare_n(31, 32), -ENOSPC);           /* the 33rd */
    CHECK_EQ(sy_preempt_library(long_name, 1), 0);
    CHECK_EQ(declare_n(0, 31), 0); /* all of them again */
    sy_config c = {.ncpu = 2, .quantum_us = 100};
    CHECK_EQ(sy_run(&c, init_declare, NULL), 0);
}

int main(void)
{
    RUN(test_config_ncpu);
    RUN(test_config_max_tasks);
    RUN(test_config_stack_size);
    RUN(test_config_flags);
    RUN(test_config_handoff);
    RUN(test_config_tick_quantum);
    RUN(test_config_all_wrong);
    RUN(test_attr);
    RUN(test_wait_exit);
    RUN(test_kill);
    RUN(test_sleep);
    RUN(test_ps);
    RUN(test_strings);
    RUN(test_preempt_nesting);
    RUN(test_preempt_library);
    return 0;
}
