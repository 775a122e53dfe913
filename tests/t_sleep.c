/* Sleep and wakeup: xv6's contract (the condition lock is dropped only once
 * the sleeper is on the queue), wakeup counts, FIFO order of wakeup_one,
 * channels that share a hash bucket, and a producer/consumer that would hang
 * on a lost wakeup. */
#include "test.h"

#include <errno.h>

static sy_spinlock lk = SY_SPINLOCK_INIT;
static int cond_flag;
static int order[16], norder;

static int waiter(void *arg)
{
    sy_spin_lock(&lk);
    while (!cond_flag)
        CHECK_EQ(sy_sleep(&cond_flag, &lk), 0);
    order[norder++] = (int)(long)arg;
    sy_spin_unlock(&lk);
    return 0;
}

static int init_basic(void *arg)
{
    (void)arg;
    cond_flag = 0;
    norder = 0;
    for (long i = 0; i < 5; i++)
        sy_spawn(waiter, (void *)i, NULL);
    sy_yield(); /* all five asleep now */
    CHECK_EQ(sy_wakeup(&order), 0); /* nobody on that channel */
    sy_spin_lock(&lk);
    cond_flag = 1;
    CHECK_EQ(sy_wakeup(&cond_flag), 5);
    sy_spin_unlock(&lk);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK_EQ(norder, 5);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(order[i], i); /* woken in the order they slept */
    return 0;
}

static void test_basic(void)
{
    run_init(init_basic, NULL, 0);
}

/* wakeup_one wakes one at a time, first sleeper first; a spurious wakeup
 * (condition still false) puts the task back to sleep */
static int init_one(void *arg)
{
    (void)arg;
    cond_flag = 0;
    norder = 0;
    for (long i = 0; i < 4; i++)
        sy_spawn(waiter, (void *)i, NULL);
    sy_yield();
    CHECK_EQ(sy_wakeup_one(&cond_flag), 1); /* spurious: flag still 0 */
    sy_yield();
    CHECK_EQ(norder, 0);
    cond_flag = 1;
    for (int k = 0; k < 4; k++) {
        CHECK_EQ(sy_wakeup_one(&cond_flag), 1);
        sy_yield();
        CHECK_EQ(norder, k + 1);
    }
    CHECK_EQ(sy_wakeup_one(&cond_flag), 0);
    /* woken in sleep order; task 0 went back to sleep at the end */
    CHECK_EQ(order[0], 1);
    CHECK_EQ(order[1], 2);
    CHECK_EQ(order[2], 3);
    CHECK_EQ(order[3], 0);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    return 0;
}

static void test_wakeup_one_fifo(void)
{
    run_init(init_one, NULL, 0);
}

/* Many channels in few buckets: waking one channel wakes only its own. */
#define NCHANS TASKS(20000)
static char chans[20000];
static int woke[20000];

static int chan_sleeper(void *arg)
{
    long i = (long)arg;
    CHECK_EQ(sy_sleep(&chans[i], NULL), 0);
    woke[i]++;
    return 0;
}

static int init_buckets(void *arg)
{
    (void)arg;
    memset(woke, 0, sizeof woke);
    for (long i = 0; i < NCHANS; i++)
        sy_spawn(chan_sleeper, (void *)i, NULL);
    sy_yield();
    for (long i = 0; i < NCHANS; i += 2)
        CHECK_EQ(sy_wakeup(&chans[i]), 1);
    sy_yield();
    for (long i = 0; i < NCHANS; i++)
        CHECK_EQ(woke[i], i % 2 == 0);
    for (long i = 1; i < NCHANS; i += 2)
        CHECK_EQ(sy_wakeup(&chans[i]), 1);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    for (long i = 0; i < NCHANS; i++)
        CHECK_EQ(woke[i], 1);
    return 0;
}

static void test_buckets(void)
{
    run_init(init_buckets, NULL, 0);
}

/* Producer/consumer through a one-slot buffer: each side sleeps until the
 * other changes the state.  A lost wakeup leaves both asleep: the runtime
 * would report a deadlock and sy_run would return -EDEADLK. */
static struct {
    sy_spinlock lk;
    int full;
    long value;
    long sum;
} box;

#define ITEMS 100000

static int producer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= ITEMS; i++) {
        sy_spin_lock(&box.lk);
        while (box.full)
            CHECK_EQ(sy_sleep(&box.full, &box.lk), 0);
        box.value = i;
        box.full = 1;
        sy_wakeup(&box.value);
        sy_spin_unlock(&box.lk);
        if (i % 7 == 0)
            sy_yield();
    }
    return 0;
}

static int consumer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= ITEMS; i++) {
        sy_spin_lock(&box.lk);
        while (!box.full)
            CHECK_EQ(sy_sleep(&box.value, &box.lk), 0);
        CHECK_EQ(box.value, i);
        box.sum += box.value;
        box.full = 0;
        sy_wakeup(&box.full);
        sy_spin_unlock(&box.lk);
        if (i % 5 == 0)
            sy_yield();
    }
    return 0;
}

static int init_pc(void *arg)
{
    (void)arg;
    memset(&box, 0, sizeof box);
    sy_spawn(consumer, NULL, NULL);
    sy_spawn(producer, NULL, NULL);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK_EQ(box.sum, (long)ITEMS * (ITEMS + 1) / 2);
    return 0;
}

static void test_producer_consumer(void)
{
    run_init(init_pc, NULL, 0);
}

/* the lock is really held again when sy_sleep returns, and really dropped
 * while the task sleeps */
static int lock_checker(void *arg)
{
    (void)arg;
    sy_spin_lock(&lk);
    CHECK_EQ(sy_sleep(&lk, &lk), 0);
    CHECK(lk.locked);
    sy_spin_unlock(&lk);
    return 0;
}

static int init_lock(void *arg)
{
    (void)arg;
    sy_spawn(lock_checker, NULL, NULL);
    sy_yield();
    CHECK(!lk.locked); /* dropped while it sleeps */
    sy_spin_lock(&lk);
    sy_wakeup(&lk);
    sy_spin_unlock(&lk);
    CHECK_EQ(sy_wait(-1, NULL, 0) > 0, 1);
    return 0;
}

static void test_lock_protocol(void)
{
    run_init(init_lock, NULL, 0);
}

int main(void)
{
    RUN(test_basic);
    RUN(test_wakeup_one_fifo);
    RUN(test_buckets);
    RUN(test_producer_consumer);
    RUN(test_lock_protocol);
    return 0;
}
