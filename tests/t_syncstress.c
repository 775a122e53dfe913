/* t_syncstress - the synchronization primitives under a randomized mix:
 * many tasks on 2 CPUs at a 100 us quantum lock a sy_mutex (some with short
 * deadlines), pass through a sy_sem of 3 units, read and write a sy_rwlock,
 * and send and receive on channels through sy_select with deadlines, while
 * a killer kills workers at random.  Checked: mutual exclusion (a plain
 * counter and an "inside" flag), the semaphore's bound, readers never with a
 * writer, every element sent received exactly once (or left in a buffer),
 * and that the run ends (a lost wakeup hangs it, and the deadlock detector
 * then makes sy_run return -EDEADLK).
 * SY_SYNCSTRESS_SECONDS (default 2) sets the length. */
#include <errno.h>
#include <stdatomic.h>

#include "test.h"

#define WORKERS 16

static sy_mutex mtx = SY_MUTEX_INIT;
static sy_sem sem = SY_SEM_INIT(3);
static sy_rwlock rw = SY_RWLOCK_INIT;
static sy_chan *ch[2];
static long counter;              /* under mtx */
static int inside;                /* under mtx */
static atomic_long incs;          /* successful increments */
static atomic_int in_sem;
static atomic_int readers, writers;
static atomic_long sent, received, sum_sent, sum_received;
static atomic_int bad;
static int64_t end_at;
static int pids[WORKERS];

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void spin(int n)
{
    for (volatile int i = 0; i < n; i++)
        ;
}

static int worker(void *arg)
{
    uint64_t s = (uint64_t)(long)arg * 0x9e3779b97f4a7c15ull + 1;
    long next = (long)arg << 32;
    while (sy_now() < end_at) {
        int r;
        switch (rnd(&s) % 4) {
        case 0: /* mutex */
            r = (rnd(&s) & 1) ? sy_mutex_lock(&mtx)
                              : sy_mutex_lock_until(&mtx, sy_now() + (int64_t)(rnd(&s) % 200000));
            if (r == -EINTR)
                return 0;
            if (r == -ETIMEDOUT)
                break;
            if (r != 0 || inside)
                atomic_store(&bad, 1);
            inside = 1;
            long v = counter;
            spin((int)(rnd(&s) % 2000));
            if (rnd(&s) % 8 == 0)
                sy_nanosleep(rnd(&s) % 50000); /* held across a sleep (sy_yield would be
                                                    a kill point: exit holding it) */
            counter = v + 1;
            inside = 0;
            atomic_fetch_add(&incs, 1);
            if (sy_mutex_unlock(&mtx) != 0)
                atomic_store(&bad, 2);
            break;
        case 1: /* semaphore */
            r = sy_sem_wait_until(&sem, sy_now() + (int64_t)(rnd(&s) % 500000));
            if (r == -EINTR)
                return 0;
            if (r == 0) {
                int n = atomic_fetch_add(&in_sem, 1) + 1;
                if (n > 3)
                    atomic_store(&bad, 3);
                spin((int)(rnd(&s) % 3000));
                atomic_fetch_sub(&in_sem, 1);
                sy_sem_post(&sem);
            }
            break;
        case 2: /* rwlock */
            if (rnd(&s) % 4) {
                r = sy_rwlock_rdlock_until(&rw, sy_now() + 300000);
                if (r == -EINTR)
                    return 0;
                if (r == 0) {
                    atomic_fetch_add(&readers, 1);
                    if (atomic_load(&writers))
                        atomic_store(&bad, 4);
                    spin((int)(rnd(&s) % 2000));
                    atomic_fetch_sub(&readers, 1);
                    sy_rwlock_unlock(&rw);
                }
            } else {
                r = sy_rwlock_wrlock(&rw);
                if (r == -EINTR)
                    return 0;
                if (atomic_fetch_add(&writers, 1) || atomic_load(&readers))
                    atomic_store(&bad, 5);
                spin((int)(rnd(&s) % 2000));
                atomic_fetch_sub(&writers, 1);
                sy_rwlock_unlock(&rw);
            }
            break;
        default: { /* channels through select */
            long out = next, in = 0;
            sy_select_case cs[3] = {
                {.chan = ch[0], .op = SY_SEND, .elem = &out},
                {.chan = ch[1], .op = SY_SEND, .elem = &out},
                {.chan = ch[rnd(&s) & 1], .op = SY_RECV, .elem = &in},
            };
            r = sy_select(cs, 3, sy_now() + (int64_t)(rnd(&s) % 300000));
            if (r == -EINTR)
                return 0;
            if (r == 0 || r == 1) {
                if (cs[r].err)
                    atomic_store(&bad, 6);
                atomic_fetch_add(&sent, 1);
                atomic_fetch_add(&sum_sent, out & 0xffffffff);
                next++;
            } else if (r == 2) {
                atomic_fetch_add(&received, 1);
                atomic_fetch_add(&sum_received, in & 0xffffffff);
            } else if (r != -ETIMEDOUT) {
                atomic_store(&bad, 7);
            }
        }
        }
    }
    return 0;
}

static int killer(void *arg)
{
    uint64_t s = 12345;
    (void)arg;
    while (sy_now() < end_at) {
        sy_nanosleep(1000000 + rnd(&s) % 4000000);
        sy_kill(pids[rnd(&s) % WORKERS]);
    }
    return 0;
}

static int init(void *arg)
{
    (void)arg;
    const char *e = getenv("SY_SYNCSTRESS_SECONDS");
    end_at = sy_now() + (int64_t)((e ? atof(e) : 2.0) * 1e9);
    CHECK_EQ(sy_chan_create(&ch[0], sizeof(long), 0), 0);
    CHECK_EQ(sy_chan_create(&ch[1], sizeof(long), 4), 0);
    for (int i = 0; i < WORKERS; i++) {
        pids[i] = sy_spawn(worker, (void *)(long)(i + 1), NULL);
        CHECK(pids[i] > 0);
    }
    CHECK(sy_spawn(killer, NULL, NULL) > 0);
    int st;
    while (sy_wait(-1, &st, 0) > 0)
        ;
    /* what is left in the buffered channel was sent but not received */
    long v;
    while (sy_chan_tryrecv(ch[1], &v) == 0) {
        atomic_fetch_add(&received, 1);
        atomic_fetch_add(&sum_received, v & 0xffffffff);
    }
    CHECK_EQ(sy_chan_tryrecv(ch[0], &v), -EAGAIN);
    CHECK_EQ(atomic_load(&bad), 0);
    CHECK_EQ(counter, atomic_load(&incs));
    CHECK_EQ(atomic_load(&sent), atomic_load(&received));
    CHECK_EQ(atomic_load(&sum_sent), atomic_load(&sum_received));
    /* nothing left behind: every object can be destroyed */
    CHECK_EQ(sy_mutex_destroy(&mtx), 0);
    CHECK_EQ(sy_sem_destroy(&sem), 0);
    CHECK_EQ(sy_rwlock_destroy(&rw), 0);
    CHECK_EQ(sy_chan_destroy(ch[0]), 0);
    CHECK_EQ(sy_chan_destroy(ch[1]), 0);
    printf("  %ld increments, %ld elements, quantum 100 us\n", counter, atomic_load(&sent));
    return 0;
}

static void test_mix(void)
{
    sy_config cfg = {.ncpu = 2, .quantum_us = 100, .tick_us = 100};
    CHECK_EQ(sy_run(&cfg, init, NULL), 0);
}

int main(void)
{
    RUN(test_mix);
    return 0;
}
