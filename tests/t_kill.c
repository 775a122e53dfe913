/* Kill: a sleeping task is woken with -EINTR and exits at its next kill
 * point with SY_EXIT_KILLED; a running one exits at its next kill point; a
 * waiter in sy_wait gets -EINTR; a task can kill itself; kill before sleep
 * is not lost. */
#include "test.h"

#include <errno.h>

static int chan;
static int stage;

static int sleeper(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_killed(), 0);
    int r = sy_sleep(&chan, NULL);
    CHECK_EQ(r, -EINTR);
    CHECK_EQ(sy_killed(), 1);
    stage = 1;
    sy_yield(); /* kill point */
    stage = 2;  /* not reached */
    return 0;
}

static int init_sleeping(void *arg)
{
    (void)arg;
    stage = 0;
    int c = sy_spawn(sleeper, NULL, NULL);
    sy_yield();
    CHECK_EQ(sy_kill(c), 0);
    CHECK_EQ(sy_kill(c), 0); /* twice is fine while it lives */
    int st;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    CHECK_EQ(st, SY_EXIT_KILLED);
    CHECK_EQ(stage, 1);
    return 0;
}

static void test_kill_sleeping(void)
{
    run_init(init_sleeping, NULL, 0);
}

static long spins;
static int yielder(void *arg)
{
    (void)arg;
    for (;;) {
        spins++;
        sy_yield();
    }
    return 0;
}

static int init_running(void *arg)
{
    (void)arg;
    spins = 0;
    int c = sy_spawn(yielder, NULL, NULL);
    for (int i = 0; i < 10; i++)
        sy_yield();
    CHECK_EQ(sy_kill(c), 0);
    int st;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    CHECK_EQ(st, SY_EXIT_KILLED);
    CHECK_EQ(spins, 11); /* it resumes, counts, then meets its kill point */
    return 0;
}

static void test_kill_running(void)
{
    run_init(init_running, NULL, 0);
}

/* a waiter killed while in sy_wait */
static int forever(void *arg)
{
    (void)arg;
    int r = sy_sleep(&chan, NULL);
    return r == -EINTR ? 9 : 0;
}

static int waiting_parent(void *arg)
{
    (void)arg;
    int c = sy_spawn(forever, NULL, NULL);
    CHECK(c > 0);
    int r = sy_wait(c, NULL, 0);
    CHECK_EQ(r, -EINTR);
    return 4; /* exits normally after the interrupted wait */
}

static int init_waiter(void *arg)
{
    (void)arg;
    int p = sy_spawn(waiting_parent, NULL, NULL);
    sy_yield(); /* parent waits, child sleeps */
    CHECK_EQ(sy_kill(p), 0);
    int st;
    CHECK_EQ(sy_wait(p, &st, 0), p);
    CHECK_EQ(st, 4);
    /* the orphaned child is ours now; it still sleeps */
    CHECK_EQ(sy_wait(-1, &st, SY_WNOHANG), 0);
    CHECK_EQ(sy_wakeup(&chan), 1);
    CHECK(sy_wait(-1, &st, 0) > 0);
    CHECK_EQ(st, 0);
    return 0;
}

static void test_kill_waiter(void)
{
    run_init(init_waiter, NULL, 0);
}

/* killed before it sleeps: its sleep returns -EINTR at once (lock held) */
static sy_spinlock lk;
static int late_sleeper(void *arg)
{
    (void)arg;
    sy_spin_lock(&lk);
    CHECK_EQ(sy_sleep(&chan, &lk), -EINTR);
    CHECK(lk.locked);
    sy_spin_unlock(&lk);
    return 6;
}

static int init_before(void *arg)
{
    (void)arg;
    int c = sy_spawn(late_sleeper, NULL, NULL);
    CHECK_EQ(sy_kill(c), 0); /* RUNNABLE, not yet run */
    int st;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    CHECK_EQ(st, 6); /* it returned, no kill point in between */
    return 0;
}

static void test_kill_before_sleep(void)
{
    run_init(init_before, NULL, 0);
}

static int self_killer(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_kill(sy_self()), 0);
    CHECK_EQ(sy_killed(), 1);
    sy_spawn(self_killer, NULL, NULL); /* kill point: exits here */
    return 0;
}

static int init_self(void *arg)
{
    (void)arg;
    int c = sy_spawn(self_killer, NULL, NULL);
    int st;
    CHECK_EQ(sy_wait(c, &st, 0), c);
    CHECK_EQ(st, SY_EXIT_KILLED);
    CHECK_EQ(sy_wait(-1, NULL, 0), -ECHILD); /* it spawned nothing */
    return 0;
}

static void test_kill_self(void)
{
    run_init(init_self, NULL, 0);
}

/* killing init kills everybody */
static int init_killed(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5; i++)
        sy_spawn(forever, NULL, NULL);
    sy_yield();
    CHECK_EQ(sy_kill(1), 0);
    sy_wait(-1, NULL, 0); /* kill point on entry */
    CHECK(0);
    return 0;
}

static void test_kill_init(void)
{
    run_init(init_killed, NULL, SY_EXIT_KILLED);
}

int main(void)
{
    RUN(test_kill_sleeping);
    RUN(test_kill_running);
    RUN(test_kill_waiter);
    RUN(test_kill_before_sleep);
    RUN(test_kill_self);
    RUN(test_kill_init);
    return 0;
}
