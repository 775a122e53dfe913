/* t_syncedge - the edges of the synchronization objects' lifetimes, found
 * in review: destroy while a waiter whose wait has just ended (its deadline,
 * or the object itself) is still inside its call must be -EBUSY (it was a
 * use-after-free: the waiter then locks the object to clean up), and a
 * sy_once whose initialiser's task exits inside it goes back to "not run".
 *
 * The stale-record case: a waiter (pinned to CPU 0) waits with a 250 ms
 * deadline; the driver (pinned to CPU 0 too, no preemption) spins until
 * CPU 1 has fired the waiter's timer (sy_ps shows the waiter RUNNABLE: it
 * cannot run, the driver holds the CPU); the driver's operation then finds
 * the waiter's record stale and takes it off the queue.  Destroy must still
 * say -EBUSY, and the waiter's wait must say -ETIMEDOUT.  (The driver spun
 * a fixed 100 ms: on a loaded machine CPU 1's host thread came back from its
 * 45 ms futex timeout more than 50 ms late - measured here: timed sleeps
 * woke up to 48 ms late beside two hogs - so the timer had not fired yet,
 * the operation served the waiter, and the waiter said 0.  A timer that
 * never fires while CPU 1 is free is a runtime bug: the spin has a cap.)  */
#include <errno.h>
#include <stdint.h>
#include <stdbool.h>

#include "test.h"

enum mode { M_CHAN, M_COND, M_SEM, M_SELECT };
static enum mode mode;
static sy_chan *ch, *ch2;
static sy_cond cv;
static sy_mutex m;
static sy_sem s;
static volatile int w_in, w_done;
static int w_result;
static int w_pid;

/* The waiter's state as sy_ps shows it (-1: not found). */
static int state_of(int pid)
{
    sy_task_info info[16];
    int n = sy_ps(info, 16);
    for (int i = 0; i < n && i < 16; i++)
        if (info[i].pid == pid)
            return info[i].state;
    return -1;
}

/* Spin (no switch: the waiter, on this CPU, cannot run) until the waiter's
 * timer has fired on CPU 1: the waiter is RUNNABLE, not yet run. */
static void spin_until_timed_out(void)
{
    int64_t cap = sy_now() + 20 * (int64_t)1000000000;
    while (state_of(w_pid) == SY_SLEEPING)
        CHECK(sy_now() < cap);
    CHECK_EQ(state_of(w_pid), SY_RUNNABLE);
}

static int waiter(void *arg)
{
    (void)arg;
    long v;
    /* long enough to be asleep by then, even under valgrind on a loaded
     * machine (the driver waits for the timer, not for a fixed time) */
    int64_t dl = sy_now() + 250000000;
    w_in = 1;
    switch (mode) {
    case M_CHAN: w_result = sy_chan_recv_until(ch, &v, dl); break;
    case M_COND:
        CHECK_EQ(sy_mutex_lock(&m), 0);
        w_result = sy_cond_wait_until(&cv, &m, dl);
        CHECK_EQ(sy_mutex_unlock(&m), 0);
        break;
    case M_SEM: w_result = sy_sem_wait_until(&s, dl); break;
    case M_SELECT: {
        sy_select_case cs[2] = {{.chan = ch, .op = SY_RECV, .elem = &v},
                                {.chan = ch2, .op = SY_RECV, .elem = &v}};
        w_result = sy_select(cs, 2, SY_FOREVER);
        break;
    }
    }
    w_done = 1;
    return 0;
}

static int driver(void *arg)
{
    (void)arg;
    while (!w_in || state_of(w_pid) != SY_SLEEPING) {
        CHECK(!w_done); /* it timed out before it slept: raise its deadline */
        sy_yield(); /* the waiter runs until it sleeps */
    }
    long v = 7;
    int d = 0;
    switch (mode) {
    case M_CHAN:
        spin_until_timed_out();
        CHECK_EQ(sy_chan_trysend(ch, &v), -EAGAIN); /* takes the stale record off */
        d = sy_chan_destroy(ch);
        break;
    case M_COND:
        spin_until_timed_out();
        CHECK_EQ(sy_cond_signal(&cv), 0);
        d = sy_cond_destroy(&cv);
        break;
    case M_SEM:
        spin_until_timed_out();
        CHECK_EQ(sy_sem_post(&s), 0);
        d = sy_sem_destroy(&s);
        break;
    case M_SELECT:
        /* the selector's record on ch fires: it has not cleaned up yet */
        CHECK_EQ(sy_chan_send(ch, &v), 0);
        d = sy_chan_destroy(ch);
        break;
    }
    CHECK(!w_done);
    CHECK_EQ(d, -EBUSY);
    return 0;
}

static int init(void *arg)
{
    (void)arg;
    CHECK_EQ(sy_chan_create(&ch, sizeof(long), 0), 0);
    CHECK_EQ(sy_chan_create(&ch2, sizeof(long), 0), 0);
    CHECK_EQ(sy_cond_init(&cv), 0);
    CHECK_EQ(sy_mutex_init(&m), 0);
    CHECK_EQ(sy_sem_init(&s, 0), 0);
    w_in = w_done = 0;
    sy_attr a = {.name = "waiter", .flags = SY_ATTR_PIN, .cpu = 0};
    int wp = sy_spawn(waiter, NULL, &a);
    CHECK(wp > 0);
    w_pid = wp;
    CHECK(sy_spawn(driver, NULL, &a) > 0);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK(w_done);
    CHECK_EQ(w_result, mode == M_SELECT ? 0 : -ETIMEDOUT);
    /* now nobody is inside: everything can go */
    CHECK_EQ(sy_mutex_destroy(&m), 0);
    CHECK_EQ(sy_chan_destroy(ch), 0);
    CHECK_EQ(sy_chan_destroy(ch2), 0);
    CHECK_EQ(sy_cond_destroy(&cv), 0);
    CHECK_EQ(sy_sem_destroy(&s), 0);
    return 0;
}

static void run_mode(enum mode md)
{
    mode = md;
    sy_config cfg = {.ncpu = 2, .flags = SY_NO_PREEMPT};
    CHECK_EQ(sy_run(&cfg, init, NULL), 0);
}

static void test_destroy_chan_stale_waiter(void) { run_mode(M_CHAN); }
static void test_destroy_cond_stale_waiter(void) { run_mode(M_COND); }
static void test_destroy_sem_stale_waiter(void) { run_mode(M_SEM); }
static void test_destroy_select_served(void) { run_mode(M_SELECT); }

/* --------------------------------------- once: the runner exits inside */

static sy_once once = SY_ONCE_INIT;
static int in_fn; /* atomic: set by the runner on another CPU */
static volatile int ran_by_caller;

static void stuck_init(void *arg)
{
    (void)arg;
    __atomic_store_n(&in_fn, 1, __ATOMIC_RELEASE); /* read by init on another CPU */
    for (;;)
        sy_yield(); /* a kill point: the killed runner exits here */
}

static void good_init(void *arg)
{
    (void)arg;
    ran_by_caller++;
}

static int runner(void *arg)
{
    (void)arg;
    sy_once_run(&once, stuck_init, NULL);
    return 0;
}

static int caller(void *arg)
{
    (void)arg;
    return sy_once_run(&once, good_init, NULL) == 0 ? 0 : 1;
}

static int init_once(void *arg)
{
    (void)arg;
    in_fn = ran_by_caller = 0;
    int pr = sy_spawn(runner, NULL, NULL);
    CHECK(pr > 0);
    while (!__atomic_load_n(&in_fn, __ATOMIC_ACQUIRE))
        sy_yield();
    int pc = sy_spawn(caller, NULL, NULL); /* waits for the runner */
    CHECK(pc > 0);
    sy_nanosleep(2000000);
    CHECK_EQ(sy_kill(pr), 0);
    int st;
    CHECK_EQ(sy_wait(pr, &st, 0), pr);
    CHECK_EQ(st, SY_EXIT_KILLED);
    CHECK_EQ(sy_wait(pc, &st, 0), pc); /* the caller ran it instead */
    CHECK_EQ(st, 0);
    CHECK_EQ(ran_by_caller, 1);
    CHECK_EQ(sy_once_run(&once, good_init, NULL), 0); /* done now */
    CHECK_EQ(ran_by_caller, 1);
    return 0;
}

static void test_once_runner_exits_inside(void)
{
    for (int ncpu = 1; ncpu <= 2; ncpu++) {
        once = (sy_once)SY_ONCE_INIT;
        sy_config cfg = {.ncpu = ncpu};
        CHECK_EQ(sy_run(&cfg, init_once, NULL), 0);
    }
}

/* ------------------------- bogus deadlines: -EINVAL, nothing left behind */

static int init_bad_deadlines(void *arg)
{
    (void)arg;
    sy_mutex bm = SY_MUTEX_INIT;
    sy_sem bs = SY_SEM_INIT(0);
    sy_chan *bc;
    static int chan;
    CHECK_EQ(sy_chan_create(&bc, sizeof(long), 0), 0);
    CHECK_EQ(sy_mutex_lock(&bm), 0);
    long v = 0;
    int p[2];
    CHECK_EQ(pipe(p), 0);
    char c;
    const int64_t bad[] = {-2, -1000000000, INT64_MIN};
    for (int i = 0; i < 3; i++) {
        /* each would have to wait: a negative deadline other than
         * SY_FOREVER is bad input */
        CHECK_EQ(sy_sem_wait_until(&bs, bad[i]), -EINVAL);
        CHECK_EQ(sy_chan_recv_until(bc, &v, bad[i]), -EINVAL);
        CHECK_EQ(sy_chan_send_until(bc, &v, bad[i]), -EINVAL);
        CHECK_EQ(sy_sleep_until(&chan, NULL, bad[i]), -EINVAL);
        CHECK_EQ(sy_read_until(p[0], &c, 1, bad[i]), -EINVAL);
        sy_select_case cs[1] = {{.chan = bc, .op = SY_RECV, .elem = &v}};
        CHECK_EQ(sy_select(cs, 1, bad[i]), -EINVAL);
    }
    /* nothing was left queued */
    CHECK_EQ(sy_chan_destroy(bc), 0);
    CHECK_EQ(sy_sem_destroy(&bs), 0);
    CHECK_EQ(sy_mutex_unlock(&bm), 0);
    CHECK_EQ(sy_mutex_destroy(&bm), 0);
    CHECK_EQ(sy_close(p[0]), 0);
    CHECK_EQ(sy_close(p[1]), 0);
    return 0;
}

static void test_bad_deadlines(void)
{
    for (int ncpu = 1; ncpu <= 2; ncpu++) {
        sy_config cfg = {.ncpu = ncpu};
        CHECK_EQ(sy_run(&cfg, init_bad_deadlines, NULL), 0);
    }
}

int main(void)
{
    RUN(test_destroy_chan_stale_waiter);
    RUN(test_destroy_cond_stale_waiter);
    RUN(test_destroy_sem_stale_waiter);
    RUN(test_destroy_select_served);
    RUN(test_once_runner_exits_inside);
    RUN(test_bad_deadlines);
    return 0;
}
