/* Accounting: voluntary switch counts are exact; CPU time is charged to the
 * task that burns it (tick mode and precise mode); time spent RUNNABLE is
 * charged to the task that waited.  No wall-clock tolerances: the checks
 * compare tasks with each other, and tick counts with the thread's own CPU
 * clock, so a slow or busy machine cannot fail them. */
#include "test.h"

#include <stdbool.h>
#include <time.h>

static uint64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* burn `ms` of this thread's CPU time */
static int burner(void *arg)
{
    uint64_t until = thread_cpu_ns() + (uint64_t)(long)arg * 1000000ull;
    while (thread_cpu_ns() < until)
        ;
    return 0;
}

static int yield_n(void *arg)
{
    for (long i = 0; i < (long)arg; i++)
        sy_yield();
    return 0;
}

static int tick_retries;
#define AGAIN 77
static bool precise;

/* CPU time charged to all tasks so far */
static uint64_t charged_ns(void)
{
    sy_task_info v[64];
    int n = sy_ps(v, 64);
    uint64_t sum = 0;
    for (int i = 0; i < n && i < 64; i++)
        sum += v[i].cpu_ns;
    return sum;
}

static int init_acct(void *arg)
{
    (void)arg;
    uint64_t cpu0 = thread_cpu_ns(), charged0 = charged_ns();
    int y = sy_spawn(yield_n, (void *)100L, NULL);
    int b = sy_spawn(burner, (void *)200L, NULL);
    int w = sy_spawn(yield_n, (void *)1L, NULL); /* queued behind the burner */
    sy_yield(); /* y yields once, b burns 200 ms, w yields once, back to us */
    sy_task_info ib = task_info(b), iy = task_info(y), iw = task_info(w);
    CHECK_EQ(ib.state, SY_ZOMBIE);
    CHECK_EQ(iy.nvcsw, 1);
    CHECK_EQ(iw.nvcsw, 1);
    fprintf(stderr, "[b %llu ns, y %llu, w wait %llu] ", (unsigned long long)ib.cpu_ns, (unsigned long long)iy.cpu_ns, (unsigned long long)iw.wait_ns);
    /* Tick mode samples on the thread's CPU-time clock, whose timer the
     * kernel checks only on its own tick, and only when it finds the thread
     * running: on a loaded host it may not fire for 100 ms of CPU time or
     * more (seen in about 1 loaded run in 10; src/preempt.c).  The CPU time
     * used since the last tick is charged at the next one, to whoever runs
     * then: if that is more than a quarter of the burn, the sample is the
     * kernel's loss, not a wrong charge; run the scenario again. */
    int64_t lag = (int64_t)(thread_cpu_ns() - cpu0) - (int64_t)(charged_ns() - charged0);
    if (!precise && lag > 50000000 && tick_retries < 5) {
        tick_retries++;
        fprintf(stderr, "[%lld ms not yet sampled: again] ", (long long)(lag / 1000000));
        while (sy_wait(-1, NULL, 0) > 0)
            ;
        return AGAIN; /* in a fresh runtime: the backlog would go to the next burner */
    }
    CHECK(ib.cpu_ns >= 100000000ull);       /* at least half of its 200 ms */
    CHECK(ib.cpu_ns > 10 * iy.cpu_ns + 1);  /* y barely ran */
    CHECK(iw.wait_ns >= ib.cpu_ns / 2);     /* w waited while b burned */
    CHECK(iw.wait_ns > 10 * iy.wait_ns + 1);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    return 0;
}

/* cooperative: the burner keeps the CPU for its 200 ms */
static void test_tick_mode(void)
{
    precise = false;
    sy_config c = {.ncpu = 1, .flags = SY_NO_PREEMPT};
    int rc;
    while ((rc = sy_run(&c, init_acct, NULL)) == AGAIN)
        ;
    CHECK_EQ(rc, 0);
}

static void test_precise_mode(void)
{
    precise = true;
    sy_config c = {.ncpu = 1, .flags = SY_ACCT_PRECISE | SY_NO_PREEMPT};
    CHECK_EQ(sy_run(&c, init_acct, NULL), 0);
}

static int init_counts(void *arg)
{
    (void)arg;
    int a = sy_spawn(yield_n, (void *)1000L, NULL);
    int b = sy_spawn(yield_n, (void *)1000L, NULL);
    for (int i = 0; i < 500; i++)
        sy_yield();
    sy_task_info ia = task_info(a), ib = task_info(b);
    CHECK_EQ(ia.nvcsw, 500);
    CHECK_EQ(ib.nvcsw, 500);
    CHECK_EQ(ia.nivcsw, 0);
    CHECK_EQ(ia.state, SY_RUNNABLE);
    CHECK_EQ(task_info(1).state, SY_RUNNING);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    return 0;
}

static void test_switch_counts(void)
{
    run_init(init_counts, NULL, 0);
}

int main(void)
{
    RUN(test_switch_counts);
    RUN(test_tick_mode);
    RUN(test_precise_mode);
    return 0;
}
