/* Lifecycle: spawn, exit, wait, statuses, trees deep and wide, orphans to
 * init, what happens to the living when init exits. */
#include "test.h"

#include <errno.h>

static int ret_arg(void *arg)
{
    return (int)(long)arg;
}

static int exit_arg(void *arg)
{
    sy_exit((int)(long)arg);
    return -1; /* not reached */
}

static int init_basic(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_self(), 1);
    CHECK_EQ(sy_parent(), 0);
    int a = sy_spawn(ret_arg, (void *)7L, NULL);
    int b = sy_spawn(exit_arg, (void *)9L, NULL);
    CHECK(a > 1 && b > 1 && a != b);
    int st = -1;
    CHECK_EQ(sy_wait(b, &st, 0), b); /* a specific child */
    CHECK_EQ(st, 9);
    CHECK_EQ(sy_wait(-1, &st, 0), a); /* any child */
    CHECK_EQ(st, 7);
    CHECK_EQ(sy_wait(-1, &st, 0), -ECHILD);
    CHECK_EQ(sy_wait(a, &st, 0), -ECHILD); /* reaped already */
    return 42;
}

static void test_basic(void)
{
    run_init(init_basic, NULL, 42);
}

/* wait with WNOHANG before and after the child exits */
static int init_nohang(void *arg)
{
    (void)arg;
    int c = sy_spawn(ret_arg, (void *)3L, NULL);
    int st = 0;
    CHECK_EQ(sy_wait(c, &st, SY_WNOHANG), 0); /* has not run yet */
    CHECK_EQ(sy_yield(), 0);                  /* child runs and exits */
    CHECK_EQ(sy_wait(-1, &st, SY_WNOHANG), c);
    CHECK_EQ(st, 3);
    CHECK_EQ(sy_wait(-1, NULL, SY_WNOHANG), -ECHILD);
    return 0;
}

static void test_nohang(void)
{
    run_init(init_nohang, NULL, 0);
}

/* a chain of depth N: each task spawns one child and returns its status + 1 */
static int chain(void *arg)
{
    long depth = (long)arg;
    if (depth == 0)
        return 0;
    int c = sy_spawn(chain, (void *)(depth - 1), NULL);
    CHECK(c > 0);
    int st;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    return st + 1;
}

static void test_deep(void)
{
    run_init(chain, (void *)2000L, 2000);
}

/* a wide tree: 10,000 children, reaped by pid-any; statuses all seen once */
#define WIDE TASKS(10000)
static int init_wide(void *arg)
{
    (void)arg;
    static unsigned char seen[10000];
    memset(seen, 0, sizeof seen);
    for (long i = 0; i < WIDE; i++)
        CHECK(sy_spawn(ret_arg, (void *)i, NULL) > 0);
    for (int i = 0; i < WIDE; i++) {
        int st = -1;
        CHECK(sy_wait(-1, &st, 0) > 0);
        CHECK(st >= 0 && st < WIDE);
        CHECK_EQ(seen[st], 0);
        seen[st] = 1;
    }
    CHECK_EQ(sy_wait(-1, NULL, 0), -ECHILD);
    return 0;
}

static void test_wide(void)
{
    run_init(init_wide, NULL, 0);
}

/* a binary tree of depth 12, each node waits for both children */
static int tree(void *arg)
{
    long d = (long)arg;
    if (d == 0)
        return 1;
    int a = sy_spawn(tree, (void *)(d - 1), NULL);
    int b = sy_spawn(tree, (void *)(d - 1), NULL);
    CHECK(a > 0 && b > 0);
    int sa, sb;
    CHECK_EQ(sy_wait(a, &sa, 0), a);
    CHECK_EQ(sy_wait(b, &sb, 0), b);
    return sa + sb; /* leaves below */
}

static void test_tree(void)
{
    run_init(tree, (void *)(long)TREE_DEPTH(12), 1 << TREE_DEPTH(12));
}

/* orphans: a parent exits before its children; init inherits and reaps them */
static int grandchild(void *arg)
{
    (void)arg;
    sy_yield();
    sy_yield();
    CHECK_EQ(sy_parent(), 1); /* adopted by init */
    return 5;
}

static int short_parent(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        CHECK(sy_spawn(grandchild, NULL, NULL) > 0);
    return 1; /* exits without waiting */
}

static int init_orphans(void *arg)
{
    (void)arg;
    int p = sy_spawn(short_parent, NULL, NULL);
    int st, n = 0, fives = 0, pid;
    while ((pid = sy_wait(-1, &st, 0)) > 0) {
        n++;
        if (pid == p)
            CHECK_EQ(st, 1);
        else
            fives += st == 5;
    }
    CHECK_EQ(pid, -ECHILD);
    CHECK_EQ(n, 4);
    CHECK_EQ(fives, 3);
    return 0;
}

static void test_orphans(void)
{
    run_init(init_orphans, NULL, 0);
}

/* zombie orphans: children that already exited when their parent exits go
 * to init as zombies, and init's wait collects them */
static int zombie_parent(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++)
        sy_spawn(ret_arg, (void *)11L, NULL);
    sy_yield(); /* they all run and exit: zombies of ours */
    return 2;
}

static int init_zombie_orphans(void *arg)
{
    (void)arg;
    sy_spawn(zombie_parent, NULL, NULL);
    int st, n = 0, elevens = 0;
    while (sy_wait(-1, &st, 0) > 0) {
        n++;
        elevens += st == 11;
    }
    CHECK_EQ(n, 6);
    CHECK_EQ(elevens, 5);
    return 0;
}

static void test_zombie_orphans(void)
{
    run_init(init_zombie_orphans, NULL, 0);
}

/* init exits while others live: they are killed, sy_run returns init's
 * status after the last is gone */
static int counter;
static int sleeper_forever(void *arg)
{
    static int chan;
    (void)arg;
    int r = sy_sleep(&chan, NULL);
    CHECK_EQ(r, -EINTR);
    counter++;
    sy_yield(); /* a kill point: exits here */
    counter += 1000;
    return 0;
}

static int spinner_yield(void *arg)
{
    (void)arg;
    for (;;)
        sy_yield(); /* exits at the first yield after the kill */
    return 0;
}

static int init_exit_early(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        sy_spawn(sleeper_forever, NULL, NULL);
    sy_spawn(spinner_yield, NULL, NULL);
    sy_yield(); /* let them reach their sleep */
    return 77;
}

static void test_init_exits_first(void)
{
    counter = 0;
    run_init(init_exit_early, NULL, 77);
    CHECK_EQ(counter, 10);
}

/* the runtime can be booted again and again */
static void test_reboot(void)
{
    for (int i = 0; i < 20; i++)
        run_init(ret_arg, (void *)(long)i, i);
}

int main(void)
{
    RUN(test_basic);
    RUN(test_nohang);
    RUN(test_deep);
    RUN(test_wide);
    RUN(test_tree);
    RUN(test_orphans);
    RUN(test_zombie_orphans);
    RUN(test_init_exits_first);
    RUN(test_reboot);
    return 0;
}
