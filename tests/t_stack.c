/* Stacks: an overflow into the guard page is reported with the task's pid,
 * name and stack size, then aborts; backtrace() stops cleanly at a task's
 * first frame; stacks are pooled (spawn does not map in steady state);
 * stacks of other sizes work and are given back. */
#include "test.h"

#include <string.h>

#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

static volatile int depth_limit = 1 << 30; /* never reached: the guard is */

static int recurse(int n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    if (n > depth_limit)
        return 0;
    return recurse(n + 1) + pad[0];
}

static int overflower(void *arg)
{
    (void)arg;
    return recurse(0);
}

static int init_overflow(void *arg)
{
    (void)arg;
    sy_attr a = {.name = "deep-diver"};
    int c = sy_spawn(overflower, NULL, &a);
    sy_wait(c, NULL, 0);
    return 0;
}

static void test_overflow_report(void)
{
#if defined(SY_VALGRIND)
    return; /* valgrind reports the overflow itself, before our handler */
#endif
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        signal(SIGABRT, SIG_DFL);
        sy_run(NULL, init_overflow, NULL);
        _exit(0); /* not reached */
    }
    close(fds[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(fds[0]);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    if (!strstr(buf, "stack overflow in task 2 (deep-diver): stack of 65536 bytes"))
        fprintf(stderr, "child said: %s\n", buf);
    CHECK(strstr(buf, "stack overflow in task 2 (deep-diver): stack of 65536 bytes"));
    CHECK(WIFSIGNALED(st));
    CHECK_EQ(WTERMSIG(st), SIGABRT);
}

static int nframes;
static int bt_task(void *arg)
{
    (void)arg;
    void *frames[128];
    nframes = backtrace(frames, 128);
    return 0;
}

static int init_bt(void *arg)
{
    (void)arg;
    int c = sy_spawn(bt_task, NULL, NULL);
    sy_wait(c, NULL, 0);
    return 0;
}

static void test_backtrace_stops(void)
{
    nframes = -1;
    run_init(init_bt, NULL, 0);
    /* bt_task <- sy__task_start <- sy__arch_task_entry, then the unwinder
     * must stop (it would walk into garbage or crash otherwise) */
    CHECK(nframes >= 2 && nframes <= 8);
}

static int nop(void *arg)
{
    (void)arg;
    return 0;
}

static int init_pool(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++) {
        int c = sy_spawn(nop, NULL, NULL);
        CHECK(c > 0);
        if (i % 3 == 0)
            sy_yield();
        if (i % 50 == 49)
            while (sy_wait(-1, NULL, SY_WNOHANG) > 0)
                ;
    }
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    /* at most ~50 alive at once: one slab of 60 stacks serves them all */
    CHECK(sy__stacks_mapped(NULL) <= 128);
    return 0;
}

static void test_pooled(void)
{
    run_init(init_pool, NULL, 0);
}

static int big_user(void *arg)
{
    size_t n = (size_t)(long)arg;
    volatile char *p = __builtin_alloca(n);
    for (size_t i = 0; i < n; i += 4096)
        p[i] = 1;
    return p[0];
}

static int init_sizes(void *arg)
{
    (void)arg;
    sy_attr a = {.stack_size = 2 << 20};
    int c = sy_spawn(big_user, (void *)(long)(1500 << 10), &a);
    CHECK(c > 0);
    int st;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    CHECK_EQ(st, 1);
    a.stack_size = SY_STACK_MIN + 1; /* rounded up to pages */
    c = sy_spawn(big_user, (void *)(long)(8 << 10), &a);
    CHECK_EQ(sy_wait(c, &st, 0), c);
    sy_task_info v[1];
    CHECK_EQ(sy_ps(v, 1), 1);
    return 0;
}

/* Tasks on stacks of another size switching among themselves, deep in
 * their stacks (valgrind took such switches for stack moves when these
 * stacks were not registered with it: uninitialised values, SIGSEGV). */
static int deep(int n)
{
    volatile char buf[512];
    memset((char *)buf, n, sizeof buf);
    if (n % 8 == 0)
        sy_yield();
    return n ? deep(n - 1) + buf[5] - n : 0;
}

static int deep_user(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++)
        CHECK_EQ(deep(40), 0);
    return 0;
}

static int init_switch_sizes(void *arg)
{
    (void)arg;
    int pid[16];
    for (int i = 0; i < 16; i++) {
        sy_attr a = {.stack_size = (size_t)(128 + 64 * (i % 3)) << 10};
        pid[i] = sy_spawn(deep_user, NULL, &a);
        CHECK(pid[i] > 0);
    }
    for (int i = 0; i < 16; i++) {
        int st = -1;
        CHECK_EQ(sy_wait(pid[i], &st, 0), pid[i]);
        CHECK_EQ(st, 0);
    }
    return 0;
}

static void test_other_sizes(void)
{
    run_init(init_sizes, NULL, 0);
    run_init(init_switch_sizes, NULL, 0);
}

int main(void)
{
    RUN(test_overflow_report);
    RUN(test_backtrace_stops);
    RUN(test_pooled);
    RUN(test_other_sizes);
    return 0;
}
