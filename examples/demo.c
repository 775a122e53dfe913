/*
 * demo - the kernel at work, in user space.
 *
 * init (pid 1) spawns a small tree of tasks:
 *   ping, pong      hand a ball back and forth with sleep/wakeup
 *   worker-N        compute a little, yield between rounds, exit with status N
 *   sleeper         sleeps on a channel nobody wakes: init kills it
 *   parent          spawns `orphan` and exits at once: init adopts the orphan
 *   spinner         xv6's `while (1) ;` with no runtime call: the timer
 *                   preempts it (NIVCSW), and init kills it
 * and prints a ps-style table at a few moments while it waits for them.
 * It runs on every CPU the process may use; the table's CPU and MIGR columns
 * show where each task runs and how often it moved.
 */
#include <stdio.h>
#include <string.h>

#include "switchyard.h"

static sy_spinlock lock = SY_SPINLOCK_INIT;

/* ------------------------------------------------------------ ping-pong */

static struct {
    int turn;  /* 0: ping's turn, 1: pong's */
    int rounds;
} ball;

static int player(void *arg)
{
    int me = (int)(long)arg, hits = 0;
    sy_spin_lock(&lock);
    while (ball.rounds > 0) {
        while (ball.turn != me && ball.rounds > 0)
            sy_sleep(&ball, &lock); /* the lock is dropped while asleep */
        if (ball.rounds == 0)
            break;
        ball.turn = !me;
        ball.rounds--;
        hits++;
        sy_wakeup(&ball);
    }
    sy_wakeup(&ball);
    sy_spin_unlock(&lock);
    return hits; /* exit status: how many times it hit the ball */
}

/* --------------------------------------------------------------- workers */

static int worker(void *arg)
{
    int n = (int)(long)arg;
    volatile double x = 0;
    for (int round = 0; round < 4 * n; round++) {
        for (int i = 0; i < 200000; i++)
            x = x + i * 0.5;
        sy_yield();
    }
    (void)x;
    return n;
}

/* ------------------------------------------------------------- spinner */

static int spinner(void *arg)
{
    (void)arg;
    volatile unsigned long n = 0;
    for (;;) /* never calls the runtime: only the timer gets the CPU back */
        n++;
    return 0;
}

/* --------------------------------------------------- sleeper and orphans */

static int nobody_wakes_this;

static int sleeper(void *arg)
{
    (void)arg;
    int r = sy_sleep(&nobody_wakes_this, NULL);
    printf("  sleeper (pid %d): my sleep returned %d (%s)\n", sy_self(), r, sy_strerror(r));
    sy_yield(); /* a kill point: the task exits here with SY_EXIT_KILLED */
    return 0;   /* not reached */
}

static int orphan_bell;

static int orphan(void *arg)
{
    (void)arg;
    printf("  orphan (pid %d): my parent is pid %d\n", sy_self(), sy_parent());
    sy_sleep(&orphan_bell, NULL);
    printf("  orphan (pid %d): woken; my parent is now pid %d (init)\n", sy_self(),
           sy_parent());
    return 3;
}

static int parent(void *arg)
{
    (void)arg;
    sy_attr a = {.name = "orphan"};
    sy_spawn(orphan, NULL, &a);
    sy_yield(); /* let the child say hello */
    return 0;   /* exit without waiting: the child is handed to init */
}

/* ------------------------------------------------------------------ init */

static void ps(const char *when)
{
    printf("\n-- ps: %s\n", when);
    fflush(stdout);
    sy_ps_print(1);
    printf("\n");
}

static int spawn(sy_fn fn, long arg, const char *name)
{
    sy_attr a = {.name = name};
    int pid = sy_spawn(fn, (void *)arg, &a);
    if (pid < 0)
        printf("spawn %s: %s\n", name, sy_strerror(pid));
    return pid;
}

static void reap_one(int pid)
{
    int st;
    sy_task_info v[64];
    char name[SY_NAME_MAX] = "?";
    int n = sy_ps(v, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (v[i].pid == pid)
            memcpy(name, v[i].name, sizeof name);
    int r = sy_wait(pid, &st, 0);
    if (r > 0)
        printf("  init: reaped pid %d (%s), exit status %d\n", r, name, st);
    else
        printf("  init: wait(%d): %s\n", pid, sy_strerror(r));
}

static int init(void *arg)
{
    (void)arg;
    printf("init (pid %d) boots the tree on %d CPUs\n", sy_self(), sy_ncpu());
    ball.rounds = 10;
    int ping = spawn(player, 0, "ping");
    int pong = spawn(player, 1, "pong");
    int w[3];
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "worker-%d", i + 1);
        w[i] = spawn(worker, i + 1, name);
    }
    int sl = spawn(sleeper, 0, "sleeper");
    int pa = spawn(parent, 0, "parent");
    int sp = spawn(spinner, 0, "spinner");

    ps("everything spawned, nothing has run yet");

    for (int i = 0; i < 6; i++)
        sy_yield();
    ps("after init yielded 6 times: ping/pong mid-game, workers mid-way, sleeper asleep");

    printf("  init: killing pid %d (sleeper) while it sleeps\n", sl);
    sy_kill(sl);
    reap_one(sl);
    reap_one(ping);
    reap_one(pong);
    reap_one(pa);

    ps("parent exited: its orphan now belongs to init (PPID 1)");

    sy_nanosleep(30000000); /* 30 ms: the spinner is preempted every 10 ms */
    printf("  init: killing pid %d (spinner), which never calls the runtime: it exits at "
           "the tick that ends its quantum\n", sp);
    sy_kill(sp);
    reap_one(sp);

    sy_wakeup(&orphan_bell);
    for (int i = 0; i < 3; i++)
        reap_one(w[i]);
    int st, pid;
    while ((pid = sy_wait(-1, &st, 0)) > 0) /* the adopted orphan */
        printf("  init: reaped adopted pid %d, exit status %d\n", pid, st);

    ps("all children reaped");
    printf("init exits with status 0\n");
    return 0;
}

int main(void)
{
    sy_config cfg = {.flags = SY_ACCT_PRECISE}; /* exact CPU times for the table */
    int st = sy_run(&cfg, init, NULL);
    if (st < 0) {
        fprintf(stderr, "demo: sy_run: %s\n", sy_strerror(st));
        return 1;
    }
    printf("sy_run returned init's status: %d\n", st);
    return st;
}
