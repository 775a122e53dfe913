/* The invariants the debug builds check (SY_DEBUG: the sanitizer builds):
 * each case breaks one on purpose, in a child process, and expects the
 * runtime to panic with the right message rather than carry on.  The
 * release builds compile the checks away: there the cases are skipped. */
#include "test.h"
#include "internal.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(SY_DEBUG)
/* Run fn as init in a child; expect it to abort with `want` on stderr. */
static void expect_panic(sy_fn fn, int ncpu, const char *want)
{
    int pipefd[2];
    CHECK(pipe(pipefd) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        sy_config cfg = {.ncpu = ncpu};
        sy_run(&cfg, fn, NULL);
        _exit(0); /* not reached if the check works */
    }
    close(pipefd[1]);
    char buf[4096];
    size_t n = 0;
    ssize_t r;
    while (n < sizeof buf - 1 && (r = read(pipefd[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
    close(pipefd[0]);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT || !strstr(buf, want)) {
        fprintf(stderr, "\nexpected an abort with \"%s\"; got status %#x and:\n%s\n", want, status,
                buf);
        exit(1);
    }
}

static int order_inversion(void *arg)
{
    (void)arg;
    rt_lock(&rt.timer_lock);
    rt_lock(&rt.tree_lock); /* tree_lock ranks before timer_lock */
    return 0;
}

static int release_unheld(void *arg)
{
    (void)arg;
    rt_unlock(&rt.tree_lock);
    return 0;
}

static int bad_transition(void *arg)
{
    (void)arg;
    task_set_state(this_cpu()->curr, SY_EMBRYO); /* RUNNING -> EMBRYO */
    return 0;
}

static int switch_with_lock(void *arg)
{
    (void)arg;
    sy_spawn(release_unheld, NULL, NULL); /* something to switch to */
    rt_lock(&rt.tree_lock);
    sy_yield(); /* a switch under tree_lock */
    return 0;
}

static int not_held(void *arg)
{
    (void)arg;
    /* a wakeup that would take a task off its queue without its lock */
    assert_held(&rt.waitq[0].lock);
    return 0;
}
#endif

static void test_lock_order(void)
{
#if defined(SY_DEBUG)
    expect_panic(order_inversion, 1, "lock order: took tree_lock");
    expect_panic(order_inversion, 2, "lock order: took tree_lock");
#else
    fprintf(stderr, "[skipped: release build] ");
#endif
}

static void test_release_unheld(void)
{
#if defined(SY_DEBUG)
    expect_panic(release_unheld, 2, "released tree_lock");
#endif
}

static void test_state_table(void)
{
#if defined(SY_DEBUG)
    expect_panic(bad_transition, 1, "state transition not in the table");
#endif
}

static void test_switch_holding_lock(void)
{
#if defined(SY_DEBUG)
    expect_panic(switch_with_lock, 1, "runtime lock held");
#endif
}

static void test_assert_held(void)
{
#if defined(SY_DEBUG)
    expect_panic(not_held, 1, "not held");
#endif
}

int main(void)
{
    RUN(test_lock_order);
    RUN(test_release_unheld);
    RUN(test_state_table);
    RUN(test_switch_holding_lock);
    RUN(test_assert_held);
    return 0;
}
