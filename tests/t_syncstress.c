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
#include <pthread.h>
#include <signal.h>
#include <ucontext.h>
#include <stdatomic.h>

#include "test.h"
#include "internal.h" /* the watchdog's dump reads the runtime's state */

int main(void);

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
/* elements sent and received: count << 40 | sum of their values, one atomic
 * add each (a killed task may exit at any instruction of its own code: at
 * the tick that ends its quantum) */
static atomic_llong sent, received;
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
                /* a unit has no owner: a killed task exiting at a tick
                 * with one would lose it, and leave in_sem counted */
                sy_preempt_disable();
                int n = atomic_fetch_add(&in_sem, 1) + 1;
                if (n > 3)
                    atomic_store(&bad, 3);
                spin((int)(rnd(&s) % 3000));
                atomic_fetch_sub(&in_sem, 1);
                sy_preempt_enable();
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
                atomic_fetch_add(&sent, (1ll << 40) + (out & 0xffffffff));
                next++;
            } else if (r == 2) {
                atomic_fetch_add(&received, (1ll << 40) + (in & 0xffffffff));
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
        atomic_fetch_add(&received, (1ll << 40) + (v & 0xffffffff));
    }
    CHECK_EQ(sy_chan_tryrecv(ch[0], &v), -EAGAIN);
    CHECK_EQ(atomic_load(&bad), 0);
    CHECK_EQ(counter, atomic_load(&incs));
    CHECK_EQ(atomic_load(&sent) >> 40, atomic_load(&received) >> 40);
    CHECK_EQ(atomic_load(&sent), atomic_load(&received));
    /* nothing left behind: every object can be destroyed */
    CHECK_EQ(sy_mutex_destroy(&mtx), 0);
    CHECK_EQ(sy_sem_destroy(&sem), 0);
    CHECK_EQ(sy_rwlock_destroy(&rw), 0);
    CHECK_EQ(sy_chan_destroy(ch[0]), 0);
    CHECK_EQ(sy_chan_destroy(ch[1]), 0);
    printf("  %ld increments, %lld elements, quantum 100 us\n", counter, atomic_load(&sent) >> 40);
    return 0;
}

/* A hang the deadlock detector cannot see (a task still runnable) would
 * only show as the runner's timeout: past SY_SYNCSTRESS_WATCHDOG seconds
 * (default 60 + the run's length; the Makefile gives emulators more) a
 * plain thread prints what every CPU, task and object is doing, racily,
 * and aborts. */
static atomic_int finished;

static void dump(void)
{
    fprintf(stderr, "\nwatchdog: runtime state\nncpu %d nidle %d nparked %d ntimers %u nlive %u\n",
            rt.ncpu, READ_ONCE(rt.nidle), READ_ONCE(rt.nparked), READ_ONCE(rt.ntimers),
            READ_ONCE(rt.nlive));
    for (int i = 0; i < rt.ncpu; i++) {
        struct cpu *c = cpu_slot(i);
        struct task *cur = READ_ONCE(c->curr);
        fprintf(stderr, "cpu %d: curr %d rq %lu events %#x parked %d idling %d inbox %p nswitch %llu\n",
                i, cur ? cur->pid : -1, READ_ONCE(c->rq.len), READ_ONCE(c->events),
                READ_ONCE(c->parked), READ_ONCE(c->idling), (void *)READ_ONCE(c->inbox),
                (unsigned long long)READ_ONCE(c->nswitch));
    }
    for (uint32_t sl = 0; sl < rt.nslots; sl++) {
        struct task *t = &rt.chunks[sl / TASK_CHUNK][sl % TASK_CHUNK];
        if (READ_ONCE(t->state) == SY_UNUSED)
            continue;
        fprintf(stderr, "task %d state %d kind %d wchan %p chan %p token %#x killed %d mutexes %d "
                        "rwlocks %d wait_lock %d\n",
                t->pid, READ_ONCE(t->state), READ_ONCE(t->wait_kind), (void *)READ_ONCE(t->wchan),
                (void *)READ_ONCE(t->chan), READ_ONCE(t->wait_token), READ_ONCE(t->killed),
                t->mutexes, t->rwlocks, READ_ONCE(t->wait_lock.locked));
    }
    fprintf(stderr, "rw writer %d lock %d | sem lock %d\n", rw.writer_, rw.lock_.locked, sem.lock_.locked);
    fprintf(stderr, "mtx %p word %#llx lock %d head %p | sem %p word %#llx head %p | rw %p readers %d "
                    "wwait %d head %p\n",
            (void *)&mtx, (unsigned long long)mtx.word_, mtx.lock_.locked, (void *)mtx.q_.head_,
            (void *)&sem, (unsigned long long)sem.word_, (void *)sem.q_.head_, (void *)&rw,
            rw.readers_, rw.wwait_, (void *)rw.q_.head_);
    for (int i = 0; i < 2; i++)
        fprintf(stderr, "chan %d %p len %d\n", i, (void *)ch[i], ch[i] ? sy_chan_len(ch[i]) : -1);
}

/* Where each CPU's host thread is: its PC (and the return address). */
static void where(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    (void)sig, (void)si;
#if defined(__x86_64__)
    unsigned long pc = (unsigned long)uc->uc_mcontext.gregs[REG_RIP], lr = 0;
#elif defined(__aarch64__)
    unsigned long pc = (unsigned long)uc->uc_mcontext.pc, lr = (unsigned long)uc->uc_mcontext.regs[30];
#else
    unsigned long pc = 0, lr = 0;
#endif
    char buf[128];
    int n = snprintf(buf, sizeof buf, "thread: pc %#lx lr %#lx (main at %p)\n", pc, lr, (void *)main);
    if (write(2, buf, (size_t)n) < 0)
        return;
}

static void *watchdog(void *arg)
{
    double secs = *(double *)arg;
    for (double t = 0; t < secs; t += 0.1) {
        if (atomic_load(&finished))
            return NULL;
        usleep(100000);
    }
    dump();
    struct sigaction sa = {.sa_sigaction = where, .sa_flags = SA_SIGINFO};
    sigaction(SIGUSR2, &sa, NULL);
    for (int i = 0; i < rt.ncpu; i++) {
        pthread_kill(cpu_slot(i)->thread, SIGUSR2);
        usleep(200000);
    }
    abort();
}

static void test_mix(void)
{
    sy_config cfg = {.ncpu = 2, .quantum_us = 100, .tick_us = 100};
    const char *e = getenv("SY_SYNCSTRESS_SECONDS"), *w = getenv("SY_SYNCSTRESS_WATCHDOG");
    double secs = w ? atof(w) : 60 + (e ? atof(e) : 2.0);
    pthread_t th;
    atomic_store(&finished, 0);
    CHECK_EQ(pthread_create(&th, NULL, watchdog, &secs), 0);
    CHECK_EQ(sy_run(&cfg, init, NULL), 0);
    atomic_store(&finished, 1);
    pthread_join(th, NULL);
}

int main(void)
{
    RUN(test_mix);
    return 0;
}
