/* Channels and select, on one CPU and across CPUs:
 *   - every error path (-EPERM from a thread that runs no task, -EINVAL for
 *     bad arguments, -EBUSY for a destroy with waiters, -EPIPE after close);
 *   - unbuffered channels hand over directly (a sender waits for its
 *     receiver), buffered ones keep order and capacity, elements of 1 to
 *     65536 bytes are copied by value;
 *   - close while senders and receivers wait: senders get -EPIPE, receivers
 *     drain the buffer, then -EPIPE;
 *   - sy_kill of a task waiting in send, recv and select: -EINTR, and
 *     nothing left behind (the next partner is the right one, the channel
 *     can be destroyed), also with kills racing transfers across CPUs
 *     (every element sent is received exactly once);
 *   - deadlines: a past one times out at once when the call would wait, a
 *     future one never early;
 *   - select: ready cases chosen 50 +- 5 % of 100000 times (receive and
 *     receive, send and receive), default (deadline 0), deadline expiry,
 *     NULL chans ignored, send and receive cases mixed, more cases than fit
 *     on the stack, only the case taken happens;
 *   - no lost wakeup: a token passed round a ring of tasks through
 *     unbuffered and buffered channels, many producers and consumers with a
 *     100 us quantum (a lost wakeup hangs them: the runtime then reports a
 *     deadlock and sy_run returns -EDEADLK, which fails the case);
 *   - Go's concurrent prime sieve (a generator, a filter task per prime)
 *     for the first 1000 primes (SY_SIEVE_PRIMES; 100 under TSan),
 *     checked against a sieve of Eratosthenes, ended by closing
 *     the last channel (the close travels upstream) or by killing every
 *     task; on one CPU and on two. */
#include "test.h"

#include <errno.h>
#include <pthread.h>

#if defined(__SANITIZE_THREAD__) || defined(SY_VALGRIND)
#define SLOW 1
#else
#define SLOW 0
#endif

#define MS 1000000ll
#define SEC 1000000000ll

/* ------------------------------------------------------------- helpers */

/* Run `init` in a fresh runtime of `ncpu` CPUs, with the timer preempting
 * every `quantum_us` (0: the default); it must return 0 (not -EDEADLK). */
static void run_cfg(sy_fn init, void *arg, int ncpu, unsigned quantum_us)
{
    sy_config c = {.ncpu = ncpu, .quantum_us = quantum_us, .tick_us = quantum_us};
    int st = sy_run(&c, init, arg);
    if (st != 0) {
        fprintf(stderr, "sy_run (%d CPUs, quantum %u us) returned %d (%s), want 0\n", ncpu,
                quantum_us, st, st < 0 ? sy_strerror(st) : "status");
        exit(1);
    }
}

static void run_1_2(sy_fn init)
{
    run_cfg(init, NULL, 1, 0);
    run_cfg(init, NULL, 2, 0);
}

/* The ps entry of `pid`, however many tasks there are; 0 if it is gone. */
static int find_task(int pid, sy_task_info *out)
{
    int cap = 128;
    for (;;) {
        sy_task_info *v = malloc((size_t)cap * sizeof *v);
        CHECK(v);
        int n = sy_ps(v, cap);
        CHECK(n >= 0);
        if (n > cap) {
            free(v);
            cap = n + 64;
            continue;
        }
        for (int i = 0; i < n; i++)
            if (v[i].pid == pid) {
                *out = v[i];
                free(v);
                return 1;
            }
        free(v);
        return 0;
    }
}

/* Wait (up to 30 s) until task `pid` is SLEEPING in a wait of kind `kind`
 * on `obj` (NULL: any wchan). */
static void wait_asleep(int pid, const void *obj, const char *kind)
{
    uint64_t cap = mono_ns() + 30 * (uint64_t)SEC;
    sy_yield();
    for (;;) {
        sy_task_info ti;
        CHECK(find_task(pid, &ti));
        const char *k = ti.wait_kind ? ti.wait_kind : "(null)";
        if (ti.state == SY_SLEEPING && (!obj || ti.wchan == obj) && strcmp(k, kind) == 0)
            return;
        if (mono_ns() > cap) {
            fprintf(stderr, "task %d: state %s, wchan %p, wait_kind \"%s\"; want SLEEPING on %p, \"%s\"\n",
                    pid, sy_state_name(ti.state), ti.wchan, k, obj, kind);
            exit(1);
        }
        sy_nanosleep(50000);
    }
}

/* The caller's voluntary switches: unchanged across a call that did not
 * wait. */
static uint64_t my_nvcsw(void)
{
    sy_task_info ti;
    CHECK(find_task(sy_self(), &ti));
    return ti.nvcsw;
}

/* `call` returns `want` at once: the caller never slept in it */
#define NO_WAIT(call, want)                        \
    do {                                           \
        uint64_t nv_ = my_nvcsw();                 \
        CHECK_EQ(call, want);                      \
        CHECK_EQ(my_nvcsw(), nv_);                 \
    } while (0)

static void reap(int pid, int want)
{
    int st;
    CHECK_EQ(sy_wait(pid, &st, 0), pid);
    CHECK_EQ(st, want);
}

static void reap_all(void)
{
    int st;
    while (sy_wait(-1, &st, 0) > 0)
        CHECK_EQ(st, 0);
}

static sy_chan *mkchan(size_t esize, size_t cap)
{
    sy_chan *ch = NULL;
    CHECK_EQ(sy_chan_create(&ch, esize, cap), 0);
    CHECK(ch != NULL);
    return ch;
}

static void send_ok(sy_chan *ch, long v)
{
    CHECK_EQ(sy_chan_send(ch, &v), 0);
}

static long recv_ok(sy_chan *ch)
{
    long v = -1;
    CHECK_EQ(sy_chan_recv(ch, &v), 0);
    return v;
}

static uint32_t rnd(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

/* A future deadline expired: never early, and not ignored (a few seconds
 * late at most, on the busiest machine). */
static void check_expired(int64_t d)
{
    int64_t now = sy_now();
    CHECK(now >= d);
    CHECK(now < d + 10 * SEC);
}

/* The victim of a kill records what its blocking call returned, then
 * returns VICTIM_STATUS. */
#define VICTIM_STATUS 42
static int vres;

static void set_vres(int r)
{
    __atomic_store_n(&vres, r, __ATOMIC_RELEASE);
}

static void kill_reap(int pid)
{
    CHECK_EQ(sy_kill(pid), 0);
    int st;
    CHECK_EQ(sy_wait(pid, &st, 0), pid);
    CHECK_EQ(__atomic_load_n(&vres, __ATOMIC_ACQUIRE), -EINTR);
    CHECK(st == VICTIM_STATUS || st == SY_EXIT_KILLED);
}

/* ----------------------------------------------------------- -EPERM */

static sy_chan *pch;

static void check_eperm_chan(sy_chan *ch)
{
    sy_chan *c2 = NULL;
    long v = 1;
    CHECK_EQ(sy_chan_create(&c2, 8, 1), -EPERM);
    CHECK(c2 == NULL);
    CHECK_EQ(sy_chan_send(ch, &v), -EPERM);
    CHECK_EQ(sy_chan_send_until(ch, &v, 0), -EPERM);
    CHECK_EQ(sy_chan_trysend(ch, &v), -EPERM);
    CHECK_EQ(sy_chan_recv(ch, &v), -EPERM);
    CHECK_EQ(sy_chan_recv_until(ch, &v, 0), -EPERM);
    CHECK_EQ(sy_chan_tryrecv(ch, &v), -EPERM);
    CHECK_EQ(sy_chan_close(ch), -EPERM);
    CHECK_EQ(sy_chan_destroy(ch), -EPERM);
    sy_select_case cs[1] = {{ch, SY_RECV, 0, &v}};
    CHECK_EQ(sy_select(cs, 1, 0), -EPERM);
    CHECK_EQ(sy_select(NULL, 0, 0), -EPERM);
    CHECK_EQ(v, 1);
}

static void *foreign(void *arg)
{
    check_eperm_chan(arg);
    return NULL;
}

static int init_foreign(void *arg)
{
    (void)arg;
    pch = mkchan(8, 2);
    send_ok(pch, 5);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, foreign, pch), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    /* nothing changed: one element, open, not destroyed */
    CHECK_EQ(sy_chan_len(pch), 1);
    CHECK_EQ(recv_ok(pch), 5);
    send_ok(pch, 6);
    CHECK_EQ(recv_ok(pch), 6);
    CHECK_EQ(sy_chan_close(pch), 0);
    CHECK_EQ(sy_chan_destroy(pch), 0);
    return 0;
}

static void test_eperm(void)
{
    sy_chan *c = NULL;
    CHECK_EQ(sy_chan_create(&c, 8, 0), -EPERM); /* before any runtime */
    CHECK(c == NULL);
    CHECK_EQ(sy_select(NULL, 0, 0), -EPERM);
    run_cfg(init_foreign, NULL, 2, 0); /* a thread of the program's own */
}

/* sy_chan_len outside a task: the header's rule for every call says
 * -EPERM. */
static int len_result;

static void *len_thread(void *arg)
{
    len_result = sy_chan_len(arg);
    return NULL;
}

static int init_len_foreign(void *arg)
{
    (void)arg;
    pch = mkchan(8, 2);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, len_thread, pch), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(sy_chan_destroy(pch), 0);
    CHECK_EQ(len_result, -EPERM);
    return 0;
}

static void test_eperm_len(void)
{
    run_cfg(init_len_foreign, NULL, 1, 0);
}

/* ------------------------------------------------------ bad arguments */

static int init_bad_args(void *arg)
{
    (void)arg;
    sy_chan *ch = NULL;
    long v = 0;
    CHECK_EQ(sy_chan_create(NULL, 8, 0), -EINVAL);
    CHECK_EQ(sy_chan_create(&ch, 0, 0), -EINVAL);
    CHECK_EQ(sy_chan_create(&ch, 0, 4), -EINVAL);
    CHECK_EQ(sy_chan_create(&ch, 65537, 0), -EINVAL);
    CHECK_EQ(sy_chan_create(&ch, (size_t)-1, 0), -EINVAL);
    CHECK_EQ(sy_chan_create(&ch, 8, (1u << 24) + 1), -EINVAL);
    CHECK_EQ(sy_chan_create(&ch, 8, (size_t)-1), -EINVAL);
    CHECK(ch == NULL);
    ch = mkchan(65536, 1); /* the largest element */
    CHECK_EQ(sy_chan_destroy(ch), 0);
    ch = mkchan(1, 1u << 24); /* the largest capacity */
    CHECK_EQ(sy_chan_len(ch), 0);
    CHECK_EQ(sy_chan_destroy(ch), 0);

    CHECK_EQ(sy_chan_destroy(NULL), -EINVAL);
    CHECK_EQ(sy_chan_send(NULL, &v), -EINVAL);
    CHECK_EQ(sy_chan_send_until(NULL, &v, 0), -EINVAL);
    CHECK_EQ(sy_chan_trysend(NULL, &v), -EINVAL);
    CHECK_EQ(sy_chan_recv(NULL, &v), -EINVAL);
    CHECK_EQ(sy_chan_recv_until(NULL, &v, 0), -EINVAL);
    CHECK_EQ(sy_chan_tryrecv(NULL, &v), -EINVAL);
    CHECK_EQ(sy_chan_close(NULL), -EINVAL);
    CHECK_EQ(sy_chan_len(NULL), -EINVAL);

    /* select */
    ch = mkchan(8, 2);
    sy_select_case cs[2] = {{ch, SY_RECV, 0, &v}, {ch, SY_SEND, 0, &v}};
    CHECK_EQ(sy_select(cs, -1, 0), -EINVAL);
    CHECK_EQ(sy_select(cs, SY_SELECT_MAX + 1, 0), -EINVAL);
    CHECK_EQ(sy_select(NULL, 1, 0), -EINVAL);
    CHECK_EQ(sy_select(NULL, 1, SY_FOREVER), -EINVAL);
    cs[0].op = 0;
    CHECK_EQ(sy_select(cs, 2, SY_FOREVER), -EINVAL);
    cs[0].op = 3;
    CHECK_EQ(sy_select(cs, 2, SY_FOREVER), -EINVAL);
    cs[0].op = SY_RECV;
    cs[1].elem = NULL; /* a send needs an element */
    CHECK_EQ(sy_select(cs, 2, SY_FOREVER), -EINVAL);
    CHECK_EQ(sy_chan_len(ch), 0); /* none of them did anything */
    /* nothing to select: Go's default at once */
    CHECK_EQ(sy_select(NULL, 0, 0), -ETIMEDOUT);
    CHECK_EQ(sy_select(cs, 0, 0), -ETIMEDOUT);
    int64_t d = sy_now() + 20 * MS;
    CHECK_EQ(sy_select(NULL, 0, d), -ETIMEDOUT);
    check_expired(d);
    /* a receive may drop what it takes */
    send_ok(ch, 9);
    send_ok(ch, 10);
    sy_select_case drop[1] = {{ch, SY_RECV, 1, NULL}};
    CHECK_EQ(sy_select(drop, 1, 0), 0);
    CHECK_EQ(drop[0].err, 0);
    CHECK_EQ(sy_chan_len(ch), 1);
    CHECK_EQ(recv_ok(ch), 10);
    CHECK_EQ(sy_chan_destroy(ch), 0);
    return 0;
}

static void test_bad_args(void)
{
    run_cfg(init_bad_args, NULL, 1, 0);
}

/* ---------------------------------------------------------- unbuffered */

static sy_chan *uch;
static int sent_flag;

static int u_sender(void *arg)
{
    send_ok(uch, (long)arg);
    __atomic_store_n(&sent_flag, 1, __ATOMIC_RELEASE);
    return 0;
}

static int u_receiver(void *arg)
{
    long want = (long)arg;
    CHECK_EQ(recv_ok(uch), want);
    return 0;
}

static int u_counter(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++)
        send_ok(uch, i);
    return 0;
}

static int init_unbuffered(void *arg)
{
    (void)arg;
    long v = 0;
    uch = mkchan(sizeof(long), 0);
    CHECK_EQ(sy_chan_len(uch), 0);
    CHECK_EQ(sy_chan_trysend(uch, &v), -EAGAIN); /* nobody receives */
    CHECK_EQ(sy_chan_tryrecv(uch, &v), -EAGAIN); /* nobody sends */

    /* a sender waits until its receiver takes the element */
    sent_flag = 0;
    int s = sy_spawn(u_sender, (void *)42L, NULL);
    wait_asleep(s, uch, "chan");
    CHECK_EQ(__atomic_load_n(&sent_flag, __ATOMIC_ACQUIRE), 0);
    CHECK_EQ(sy_chan_len(uch), 0);
    CHECK_EQ(sy_chan_destroy(uch), -EBUSY);
    CHECK_EQ(sy_chan_tryrecv(uch, &v), 0); /* a sender waits: no need to */
    CHECK_EQ(v, 42);
    reap(s, 0);
    CHECK_EQ(sent_flag, 1);

    /* a receiver waits; trysend hands it over */
    int r = sy_spawn(u_receiver, (void *)43L, NULL);
    wait_asleep(r, uch, "chan");
    CHECK_EQ(sy_chan_destroy(uch), -EBUSY);
    v = 43;
    CHECK_EQ(sy_chan_trysend(uch, &v), 0);
    reap(r, 0);
    CHECK_EQ(sy_chan_trysend(uch, &v), -EAGAIN);

    /* in order, one sender */
    int n = SLOW ? 2000 : 20000;
    s = sy_spawn(u_counter, (void *)(long)n, NULL);
    for (long i = 0; i < n; i++) {
        long got = -1;
        if (i % 3 == 0)
            CHECK_EQ(sy_chan_recv_until(uch, &got, sy_now() + 600 * SEC), 0);
        else
            CHECK_EQ(sy_chan_recv(uch, &got), 0);
        CHECK_EQ(got, i);
    }
    reap(s, 0);
    CHECK_EQ(sy_chan_destroy(uch), 0);
    return 0;
}

static void test_unbuffered(void)
{
    run_1_2(init_unbuffered);
}

/* ------------------------------------------------------------ buffered */

static sy_chan *bch;

static int b_filler(void *arg)
{
    long n = (long)arg;
    for (long i = 0; i < n; i++)
        send_ok(bch, 100 + i);
    return 0;
}

/* big elements: each one is a pattern of its index */
#define BIG 65536
static unsigned char *bigbuf;
static int big_sender(void *arg)
{
    long n = (long)arg;
    unsigned char *e = malloc(BIG);
    CHECK(e);
    for (long i = 0; i < n; i++) {
        for (int k = 0; k < BIG; k++)
            e[k] = (unsigned char)(i * 31 + k);
        CHECK_EQ(sy_chan_send(bch, e), 0);
        memset(e, 0, BIG); /* copied at the send: ours to reuse */
    }
    free(e);
    return 0;
}

static int init_buffered(void *arg)
{
    (void)arg;
    long v;
    bch = mkchan(sizeof(long), 4);
    for (long i = 0; i < 4; i++) {
        CHECK_EQ(sy_chan_len(bch), i);
        v = i;
        CHECK_EQ(i % 2 ? sy_chan_trysend(bch, &v) : sy_chan_send_until(bch, &v, 0), 0);
    }
    v = 99;
    CHECK_EQ(sy_chan_trysend(bch, &v), -EAGAIN); /* full */
    CHECK_EQ(sy_chan_send_until(bch, &v, 0), -ETIMEDOUT);
    CHECK_EQ(sy_chan_len(bch), 4);
    for (long i = 0; i < 4; i++) {
        CHECK_EQ(i % 2 ? sy_chan_tryrecv(bch, &v) : sy_chan_recv_until(bch, &v, 0), 0);
        CHECK_EQ(v, i);
    }
    CHECK_EQ(sy_chan_tryrecv(bch, &v), -EAGAIN);
    CHECK_EQ(sy_chan_len(bch), 0);

    /* a sender that fills it and waits; each receive lets one more in */
    int s = sy_spawn(b_filler, (void *)10L, NULL);
    wait_asleep(s, bch, "chan");
    CHECK_EQ(sy_chan_len(bch), 4);
    CHECK_EQ(sy_chan_destroy(bch), -EBUSY);
    for (long i = 0; i < 10; i++)
        CHECK_EQ(recv_ok(bch), 100 + i);
    reap(s, 0);
    CHECK_EQ(sy_chan_len(bch), 0);
    CHECK_EQ(sy_chan_destroy(bch), 0);

    /* 1-byte elements */
    bch = mkchan(1, 3);
    unsigned char c = 7, d = 0;
    CHECK_EQ(sy_chan_send(bch, &c), 0);
    c = 8;
    CHECK_EQ(sy_chan_send(bch, &c), 0);
    CHECK_EQ(sy_chan_recv(bch, &d), 0);
    CHECK_EQ(d, 7);
    CHECK_EQ(sy_chan_recv(bch, &d), 0);
    CHECK_EQ(d, 8);
    CHECK_EQ(sy_chan_destroy(bch), 0);

    /* 64 KiB elements, through a buffer of 2 and unbuffered */
    bigbuf = malloc(BIG);
    CHECK(bigbuf);
    for (int cap = 0; cap <= 2; cap += 2) {
        bch = mkchan(BIG, (size_t)cap);
        long n = SLOW ? 10 : 40;
        s = sy_spawn(big_sender, (void *)n, NULL);
        for (long i = 0; i < n; i++) {
            memset(bigbuf, 0xff, BIG);
            CHECK_EQ(sy_chan_recv(bch, bigbuf), 0);
            for (int k = 0; k < BIG; k++)
                if (bigbuf[k] != (unsigned char)(i * 31 + k))
                    CHECK_EQ(bigbuf[k], (unsigned char)(i * 31 + k));
        }
        reap(s, 0);
        CHECK_EQ(sy_chan_destroy(bch), 0);
    }
    free(bigbuf);
    return 0;
}

static void test_buffered(void)
{
    run_1_2(init_buffered);
}

/* --------------------------------------------------------------- close */

static sy_chan *cch;

static int c_sender(void *arg)
{
    long v = (long)arg;
    CHECK_EQ(sy_chan_send(cch, &v), -EPIPE);
    return 0;
}

static int c_receiver(void *arg)
{
    (void)arg;
    long v = 12345;
    CHECK_EQ(sy_chan_recv(cch, &v), -EPIPE);
    CHECK_EQ(v, 12345); /* nothing stored */
    return 0;
}

static int c_selector(void *arg)
{
    (void)arg;
    long v = 12345;
    sy_select_case cs[2] = {{NULL, SY_RECV, 1, &v}, {cch, SY_RECV, 1, &v}};
    CHECK_EQ(sy_select(cs, 2, SY_FOREVER), 1);
    CHECK_EQ(cs[1].err, -EPIPE);
    return 0;
}

static int init_close(void *arg)
{
    (void)arg;
    long v;
    int pids[4];
    /* unbuffered: waiting senders get -EPIPE */
    cch = mkchan(sizeof(long), 0);
    for (int i = 0; i < 3; i++) {
        pids[i] = sy_spawn(c_sender, (void *)(long)i, NULL);
        wait_asleep(pids[i], cch, "chan");
    }
    CHECK_EQ(sy_chan_close(cch), 0);
    for (int i = 0; i < 3; i++)
        reap(pids[i], 0);
    CHECK_EQ(sy_chan_tryrecv(cch, &v), -EPIPE); /* none of theirs arrived */
    CHECK_EQ(sy_chan_close(cch), -EPIPE);
    CHECK_EQ(sy_chan_destroy(cch), 0);

    /* unbuffered: waiting receivers (and a select) get -EPIPE */
    cch = mkchan(sizeof(long), 0);
    for (int i = 0; i < 3; i++) {
        pids[i] = sy_spawn(c_receiver, NULL, NULL);
        wait_asleep(pids[i], cch, "chan");
    }
    pids[3] = sy_spawn(c_selector, NULL, NULL);
    wait_asleep(pids[3], NULL, "select");
    CHECK_EQ(sy_chan_close(cch), 0);
    for (int i = 0; i < 4; i++)
        reap(pids[i], 0);
    v = 1;
    CHECK_EQ(sy_chan_send(cch, &v), -EPIPE);
    CHECK_EQ(sy_chan_destroy(cch), 0);

    /* buffered and full, senders waiting: they get -EPIPE, the buffer
     * keeps what it had and is drained, then -EPIPE */
    cch = mkchan(sizeof(long), 2);
    send_ok(cch, 1);
    send_ok(cch, 2);
    for (int i = 0; i < 2; i++) {
        pids[i] = sy_spawn(c_sender, (void *)(long)(3 + i), NULL);
        wait_asleep(pids[i], cch, "chan");
    }
    CHECK_EQ(sy_chan_close(cch), 0);
    for (int i = 0; i < 2; i++)
        reap(pids[i], 0);
    CHECK_EQ(sy_chan_close(cch), -EPIPE);
    v = 9;
    CHECK_EQ(sy_chan_send(cch, &v), -EPIPE);
    CHECK_EQ(sy_chan_trysend(cch, &v), -EPIPE);
    CHECK_EQ(sy_chan_send_until(cch, &v, 0), -EPIPE);
    CHECK_EQ(sy_chan_send_until(cch, &v, SY_FOREVER), -EPIPE);
    CHECK_EQ(sy_chan_len(cch), 2);
    sy_select_case sc[1] = {{cch, SY_SEND, 1, &v}};
    CHECK_EQ(sy_select(sc, 1, SY_FOREVER), 0);
    CHECK_EQ(sc[0].err, -EPIPE);
    CHECK_EQ(sy_chan_recv(cch, &v), 0);
    CHECK_EQ(v, 1);
    CHECK_EQ(sy_chan_tryrecv(cch, &v), 0);
    CHECK_EQ(v, 2);
    CHECK_EQ(sy_chan_recv(cch, &v), -EPIPE);
    CHECK_EQ(sy_chan_tryrecv(cch, &v), -EPIPE);
    CHECK_EQ(sy_chan_recv_until(cch, &v, 0), -EPIPE);
    CHECK_EQ(sy_chan_recv_until(cch, &v, SY_FOREVER), -EPIPE);
    sc[0].op = SY_RECV;
    sc[0].err = 1;
    CHECK_EQ(sy_select(sc, 1, 0), 0); /* closed is ready */
    CHECK_EQ(sc[0].err, -EPIPE);
    CHECK_EQ(sy_chan_len(cch), 0);
    CHECK_EQ(sy_chan_destroy(cch), 0);

    /* a closed channel's receive is ready in a select beside an empty one */
    sy_chan *open = mkchan(sizeof(long), 1);
    cch = mkchan(sizeof(long), 1);
    CHECK_EQ(sy_chan_close(cch), 0);
    sy_select_case two[2] = {{open, SY_RECV, 1, &v}, {cch, SY_RECV, 1, &v}};
    for (int i = 0; i < 20; i++) {
        CHECK_EQ(sy_select(two, 2, 0), 1);
        CHECK_EQ(two[1].err, -EPIPE);
    }
    CHECK_EQ(sy_chan_destroy(open), 0);
    CHECK_EQ(sy_chan_destroy(cch), 0);
    return 0;
}

static void test_close(void)
{
    run_1_2(init_close);
}

/* -------------------------------------------------------------- kills */

static sy_chan *kch, *kch2;

static int v_send(void *arg)
{
    long v = (long)arg;
    set_vres(sy_chan_send(kch, &v));
    return VICTIM_STATUS;
}

static int v_recv(void *arg)
{
    (void)arg;
    long v = -1;
    set_vres(sy_chan_recv(kch, &v));
    CHECK_EQ(v, -1);
    return VICTIM_STATUS;
}

static int v_select(void *arg)
{
    (void)arg;
    long in = -1, out = 77;
    sy_select_case cs[3] = {{kch, SY_RECV, 1, &in}, {NULL, SY_SEND, 1, &out}, {kch2, SY_SEND, 1, &out}};
    set_vres(sy_select(cs, 3, SY_FOREVER));
    CHECK_EQ(in, -1);
    CHECK_EQ(cs[0].err, 1);
    CHECK_EQ(cs[2].err, 1);
    return VICTIM_STATUS;
}

static int w_recv(void *arg)
{
    long want = (long)arg;
    CHECK_EQ(recv_ok(kch), want);
    return 43;
}

static int w_send(void *arg)
{
    send_ok(kch, (long)arg);
    return 43;
}

static int spawn_victim(sy_fn fn, void *arg, const void *obj, const char *kind)
{
    set_vres(1);
    int v = sy_spawn(fn, arg, &(sy_attr){.name = "victim"});
    CHECK(v > 0);
    wait_asleep(v, obj, kind);
    return v;
}

static int init_kills(void *arg)
{
    (void)arg;
    long v;
    for (int cap = 0; cap <= 2; cap += 2) {
        kch = mkchan(sizeof(long), (size_t)cap);
        /* a receiver killed: the next element goes to the next receiver */
        int vic = spawn_victim(v_recv, NULL, kch, "chan");
        int w = sy_spawn(w_recv, (void *)7L, NULL);
        wait_asleep(w, kch, "chan");
        kill_reap(vic);
        CHECK_EQ(sy_chan_destroy(kch), -EBUSY); /* w still waits */
        v = 7;
        CHECK_EQ(sy_chan_send(kch, &v), 0);
        reap(w, 43);
        CHECK_EQ(sy_chan_len(kch), 0);
        v = 8;
        if (cap == 0)
            CHECK_EQ(sy_chan_trysend(kch, &v), -EAGAIN); /* no receiver left */
        CHECK_EQ(sy_chan_destroy(kch), 0);

        /* a sender killed: its element is not sent; the next sender's is */
        kch = mkchan(sizeof(long), (size_t)cap);
        for (long i = 0; i < cap; i++)
            send_ok(kch, 500 + i); /* full */
        vic = spawn_victim(v_send, (void *)1L, kch, "chan");
        w = sy_spawn(w_send, (void *)2L, NULL);
        wait_asleep(w, kch, "chan");
        kill_reap(vic);
        for (long i = 0; i < cap; i++)
            CHECK_EQ(recv_ok(kch), 500 + i);
        CHECK_EQ(recv_ok(kch), 2);
        reap(w, 43);
        CHECK_EQ(sy_chan_tryrecv(kch, &v), -EAGAIN);
        CHECK_EQ(sy_chan_destroy(kch), 0);

        /* a select killed: no case happened, no record left on either */
        kch = mkchan(sizeof(long), (size_t)cap);
        kch2 = mkchan(sizeof(long), (size_t)cap);
        for (long i = 0; i < cap; i++)
            send_ok(kch2, 600 + i); /* full: its send case waits */
        vic = spawn_victim(v_select, NULL, NULL, "select");
        CHECK_EQ(sy_chan_destroy(kch), -EBUSY);
        CHECK_EQ(sy_chan_destroy(kch2), -EBUSY);
        kill_reap(vic);
        v = 9;
        if (cap == 0)
            CHECK_EQ(sy_chan_trysend(kch, &v), -EAGAIN); /* no receiver */
        CHECK_EQ(sy_chan_len(kch), 0);
        for (long i = 0; i < cap; i++)
            CHECK_EQ(recv_ok(kch2), 600 + i);
        CHECK_EQ(sy_chan_tryrecv(kch2, &v), -EAGAIN); /* its 77 was not sent */
        CHECK_EQ(sy_chan_destroy(kch), 0);
        CHECK_EQ(sy_chan_destroy(kch2), 0);
    }
    return 0;
}

static void test_kill_waiters(void)
{
    run_1_2(init_kills);
}

/* Senders and receivers (some through select) killed at random moments
 * while they transfer: every element whose send returned 0 is received
 * exactly once (or left in the buffer), and no waiter is left behind. */
#define KR_SENDERS 6
#define KR_RECEIVERS 6
static sy_chan *krch;
static long kr_sent_n, kr_sent_sum, kr_recv_n, kr_recv_sum;

static int kr_sender(void *arg)
{
    long base = (long)arg * 10000000;
    for (long i = 1;; i++) {
        long v = base + i;
        int r = i % 3 ? sy_chan_send(krch, &v) : sy_chan_send_until(krch, &v, sy_now() + 600 * SEC);
        if (r == -EINTR)
            return 1;
        CHECK_EQ(r, 0);
        __atomic_add_fetch(&kr_sent_n, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&kr_sent_sum, v, __ATOMIC_RELAXED);
        /* a send that need not wait may succeed for a killed task: stop
         * at once (a killed task that runs a quantum dies at a tick) */
        if (sy_killed() || (i % 8 == 0 && sy_nanosleep(1000) == -EINTR))
            return 1;
    }
}

static int kr_receiver(void *arg)
{
    long k = (long)arg;
    for (long i = 1;; i++) {
        long v = 0;
        int r;
        if (k % 2) {
            sy_select_case cs[2] = {{NULL, SY_RECV, 1, NULL}, {krch, SY_RECV, 1, &v}};
            r = sy_select(cs, 2, SY_FOREVER);
            if (r == 1)
                r = cs[1].err;
        } else {
            r = sy_chan_recv(krch, &v);
        }
        if (r == -EINTR)
            return 1;
        CHECK_EQ(r, 0);
        __atomic_add_fetch(&kr_recv_n, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&kr_recv_sum, v, __ATOMIC_RELAXED);
        if (sy_killed() || (i % 8 == 0 && sy_nanosleep(1000) == -EINTR))
            return 1;
    }
}

static int init_kill_race(void *arg)
{
    (void)arg;
    uint32_t seed = 777;
    int rounds = SLOW ? 2 : 8, inexact = 0;
    long kills = 0;
    for (int round = 0; round < rounds; round++) {
        int died_at_tick = 0;
        krch = mkchan(sizeof(long), (size_t)(round % 2 ? 3 : 0));
        kr_sent_n = kr_sent_sum = kr_recv_n = kr_recv_sum = 0;
        int pids[KR_SENDERS + KR_RECEIVERS];
        for (long i = 0; i < KR_SENDERS; i++)
            pids[i] = sy_spawn(kr_sender, (void *)(i + 1), NULL);
        for (long i = 0; i < KR_RECEIVERS; i++)
            pids[KR_SENDERS + i] = sy_spawn(kr_receiver, (void *)i, NULL);
        /* kill them in a random order */
        int order[KR_SENDERS + KR_RECEIVERS];
        for (int i = 0; i < KR_SENDERS + KR_RECEIVERS; i++)
            order[i] = i;
        for (int i = KR_SENDERS + KR_RECEIVERS - 1; i > 0; i--) {
            int j = (int)(rnd(&seed) % (uint32_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int i = 0; i < KR_SENDERS + KR_RECEIVERS; i++) {
            sy_nanosleep(rnd(&seed) % 200000);
            CHECK_EQ(sy_kill(pids[order[i]]), 0);
            kills++;
        }
        for (int i = 0; i < KR_SENDERS + KR_RECEIVERS; i++) {
            int st;
            CHECK_EQ(sy_wait(pids[i], &st, 0), pids[i]);
            CHECK(st == 1 || st == SY_EXIT_KILLED);
            if (st == SY_EXIT_KILLED) /* died at a tick, maybe between a transfer and its count */
                died_at_tick = 1;
        }
        long v;
        while (sy_chan_tryrecv(krch, &v) == 0) {
            kr_recv_n++;
            kr_recv_sum += v;
        }
        if (!died_at_tick) {
            CHECK_EQ(kr_recv_n, kr_sent_n);
            CHECK_EQ(kr_recv_sum, kr_sent_sum);
        }
        inexact += died_at_tick;
        CHECK(kr_sent_n > 0);
        CHECK_EQ(sy_chan_destroy(krch), 0); /* nobody left waiting on it */
    }
    fprintf(stderr, "[%d CPU: %ld kills, %d of %d rounds exact] ", sy_ncpu(), kills, rounds - inexact,
            rounds);
    CHECK(inexact < rounds);
    return 0;
}

static void test_kill_race(void)
{
    run_cfg(init_kill_race, NULL, 1, 0);
    run_cfg(init_kill_race, NULL, 2, 0);
    run_cfg(init_kill_race, NULL, 2, 100);
}

/* ----------------------------------------------------------- deadlines */

static sy_chan *dch;

static int d_late_sender(void *arg)
{
    (void)arg;
    sy_nanosleep(5 * MS);
    send_ok(dch, 31);
    return 0;
}

static long d_received;
static int d_late_receiver(void *arg)
{
    (void)arg;
    sy_nanosleep(5 * MS);
    d_received = recv_ok(dch);
    return 0;
}

static int d_waiting_receiver(void *arg)
{
    CHECK_EQ(recv_ok(dch), (long)arg);
    return 0;
}

static int d_waiting_sender(void *arg)
{
    send_ok(dch, (long)arg);
    return 0;
}

static int init_deadlines(void *arg)
{
    (void)arg;
    long v;
    int64_t d;
    for (int cap = 0; cap <= 1; cap++) {
        dch = mkchan(sizeof(long), (size_t)cap);
        /* receive from an empty channel */
        NO_WAIT(sy_chan_recv_until(dch, &v, 0), -ETIMEDOUT);
        NO_WAIT(sy_chan_recv_until(dch, &v, sy_now() - 1), -ETIMEDOUT);
        d = sy_now() + 20 * MS;
        CHECK_EQ(sy_chan_recv_until(dch, &v, d), -ETIMEDOUT);
        check_expired(d);
        /* send to a full one (unbuffered: no receiver) */
        if (cap)
            send_ok(dch, 1);
        v = 2;
        NO_WAIT(sy_chan_send_until(dch, &v, 0), -ETIMEDOUT);
        d = sy_now() + 20 * MS;
        CHECK_EQ(sy_chan_send_until(dch, &v, d), -ETIMEDOUT);
        check_expired(d);
        CHECK_EQ(sy_chan_len(dch), cap);
        if (cap)
            CHECK_EQ(recv_ok(dch), 1);
        /* nothing left behind by the timed-out calls */
        CHECK_EQ(sy_chan_tryrecv(dch, &v), -EAGAIN);
        if (cap == 0)
            CHECK_EQ(sy_chan_trysend(dch, &v), -EAGAIN);
        /* the same through select */
        sy_select_case r1[1] = {{dch, SY_RECV, 1, &v}};
        NO_WAIT(sy_select(r1, 1, 0), -ETIMEDOUT);
        d = sy_now() + 20 * MS;
        CHECK_EQ(sy_select(r1, 1, d), -ETIMEDOUT);
        check_expired(d);
        CHECK_EQ(r1[0].err, 1); /* untouched */
        if (cap == 0)
            CHECK_EQ(sy_chan_trysend(dch, &v), -EAGAIN);

        /* a past deadline, but no need to wait: done */
        int w;
        if (cap) {
            v = 3;
            NO_WAIT(sy_chan_send_until(dch, &v, 0), 0); /* room */
            v = 0;
            NO_WAIT(sy_chan_recv_until(dch, &v, 0), 0); /* data */
            CHECK_EQ(v, 3);
        } else {
            w = sy_spawn(d_waiting_receiver, (void *)4L, NULL);
            wait_asleep(w, dch, "chan");
            v = 4;
            NO_WAIT(sy_chan_send_until(dch, &v, 0), 0); /* a receiver waits */
            reap(w, 0);
            w = sy_spawn(d_waiting_sender, (void *)5L, NULL);
            wait_asleep(w, dch, "chan");
            NO_WAIT(sy_chan_recv_until(dch, &v, 0), 0); /* a sender waits */
            CHECK_EQ(v, 5);
            reap(w, 0);
        }
        v = 5;
        sy_select_case r2[1] = {{dch, SY_SEND, 1, &v}};
        if (cap) {
            NO_WAIT(sy_select(r2, 1, 0), 0);
            CHECK_EQ(r2[0].err, 0);
            CHECK_EQ(recv_ok(dch), 5);
        } else {
            w = sy_spawn(d_waiting_receiver, (void *)5L, NULL);
            wait_asleep(w, dch, "chan");
            NO_WAIT(sy_select(r2, 1, 0), 0);
            CHECK_EQ(r2[0].err, 0);
            reap(w, 0);
        }

        /* in time: the partner comes after 5 ms */
        int p = sy_spawn(d_late_sender, NULL, NULL);
        d = sy_now() + 600 * SEC;
        CHECK_EQ(sy_chan_recv_until(dch, &v, d), 0);
        CHECK_EQ(v, 31);
        reap(p, 0);
        if (cap)
            send_ok(dch, 1); /* full again */
        d_received = 0;
        p = sy_spawn(d_late_receiver, NULL, NULL);
        v = 32;
        CHECK_EQ(cap ? sy_chan_send_until(dch, &v, d) : sy_chan_send_until(dch, &v, SY_FOREVER), 0);
        CHECK(sy_now() < d);
        reap(p, 0);
        CHECK_EQ(d_received, cap ? 1 : 32); /* it took the oldest */
        if (cap)
            CHECK_EQ(recv_ok(dch), 32);
        CHECK_EQ(sy_chan_destroy(dch), 0);
    }
    return 0;
}

static void test_deadlines(void)
{
    run_1_2(init_deadlines);
}

/* -------------------------------------------------------------- select */

static sy_chan *sa, *sb;

static int s_sender(void *arg)
{
    sy_nanosleep(2 * MS);
    send_ok(sb, (long)arg);
    return 0;
}

static int s_receiver(void *arg)
{
    (void)arg;
    sy_nanosleep(2 * MS);
    CHECK_EQ(recv_ok(sa), 55);
    return 0;
}

static int init_select(void *arg)
{
    (void)arg;
    long va = -1, vb = -1, out = 55;
    sa = mkchan(sizeof(long), 0);
    sb = mkchan(sizeof(long), 0);

    /* NULL chans are never ready; alone, they are a default or a timeout */
    sy_select_case none[2] = {{NULL, SY_RECV, 1, &va}, {NULL, SY_SEND, 1, &out}};
    NO_WAIT(sy_select(none, 2, 0), -ETIMEDOUT);
    int64_t d = sy_now() + 20 * MS;
    CHECK_EQ(sy_select(none, 2, d), -ETIMEDOUT);
    check_expired(d);

    /* nothing ready: default */
    sy_select_case cs[3] = {{sa, SY_SEND, 1, &out}, {NULL, SY_RECV, 1, &va}, {sb, SY_RECV, 1, &vb}};
    NO_WAIT(sy_select(cs, 3, 0), -ETIMEDOUT);
    CHECK_EQ(cs[0].err, 1);
    CHECK_EQ(cs[2].err, 1);

    /* it waits; a sender on sb completes the receive case only */
    int p = sy_spawn(s_sender, (void *)66L, NULL);
    CHECK_EQ(sy_select(cs, 3, SY_FOREVER), 2);
    CHECK_EQ(cs[2].err, 0);
    CHECK_EQ(vb, 66);
    reap(p, 0);
    CHECK_EQ(sy_chan_trysend(sa, &out), -EAGAIN);  /* no record of ours left on sa */
    CHECK_EQ(sy_chan_tryrecv(sa, &va), -EAGAIN);   /* and nothing was sent */
    CHECK_EQ(va, -1);

    /* a receiver on sa completes the send case only */
    p = sy_spawn(s_receiver, NULL, NULL);
    cs[2].err = 1;
    CHECK_EQ(sy_select(cs, 3, sy_now() + 600 * SEC), 0);
    CHECK_EQ(cs[0].err, 0);
    CHECK_EQ(cs[2].err, 1);
    reap(p, 0);
    CHECK_EQ(sy_chan_trysend(sb, &out), -EAGAIN); /* no record left on sb */

    /* a send and a receive on the same unbuffered channel: the select does
     * not meet itself; a receiver takes the send */
    sy_select_case same[2] = {{sa, SY_RECV, 1, &va}, {sa, SY_SEND, 1, &out}};
    CHECK_EQ(sy_select(same, 2, 0), -ETIMEDOUT);
    p = sy_spawn(s_receiver, NULL, NULL);
    CHECK_EQ(sy_select(same, 2, SY_FOREVER), 1);
    CHECK_EQ(same[1].err, 0);
    reap(p, 0);

    CHECK_EQ(sy_chan_destroy(sa), 0);
    CHECK_EQ(sy_chan_destroy(sb), 0);

    /* more cases than fit on the stack: 100 channels, one of them ready,
     * and SY_SELECT_MAX cases, most of them NULL */
    int n = 100;
    sy_chan **many = calloc((size_t)n, sizeof *many);
    sy_select_case *mc = calloc(SY_SELECT_MAX, sizeof *mc);
    CHECK(many && mc);
    for (int i = 0; i < n; i++) {
        many[i] = mkchan(sizeof(long), 1);
        mc[i] = (sy_select_case){many[i], SY_RECV, 1, &va};
    }
    for (int k = 0; k < 5; k++) {
        int ready = (k * 37 + 11) % n;
        send_ok(many[ready], 1000 + ready);
        CHECK_EQ(sy_select(mc, n, SY_FOREVER), ready);
        CHECK_EQ(mc[ready].err, 0);
        CHECK_EQ(va, 1000 + ready);
    }
    CHECK_EQ(sy_select(mc, n, 0), -ETIMEDOUT);
    for (int i = 0; i < SY_SELECT_MAX; i++)
        if (i != 4000)
            mc[i] = (sy_select_case){NULL, SY_RECV, 1, &va};
    mc[4000] = (sy_select_case){many[3], SY_SEND, 1, &out};
    CHECK_EQ(sy_select(mc, SY_SELECT_MAX, SY_FOREVER), 4000);
    CHECK_EQ(mc[4000].err, 0);
    CHECK_EQ(recv_ok(many[3]), 55);
    CHECK_EQ(sy_select(mc, SY_SELECT_MAX, 0), 4000); /* room again */
    CHECK_EQ(sy_select(mc, SY_SELECT_MAX, 0), -ETIMEDOUT); /* full */
    CHECK_EQ(recv_ok(many[3]), 55);
    for (int i = 0; i < n; i++)
        CHECK_EQ(sy_chan_destroy(many[i]), 0);
    free(many);
    free(mc);
    return 0;
}

static void test_select(void)
{
    run_1_2(init_select);
}

/* Two always-ready cases are taken about equally often. */
#define FAIR_N 100000

static void check_fair(const char *what, long c0, long n)
{
    fprintf(stderr, "[%s %.1f%%] ", what, 100.0 * (double)c0 / (double)n);
    CHECK(c0 >= n * 45 / 100 && c0 <= n * 55 / 100);
}

static int init_fair(void *arg)
{
    (void)arg;
    long va, vb, got = 0, c[2];
    /* two receives from buffered channels kept non-empty */
    sy_chan *a = mkchan(sizeof(long), 4), *b = mkchan(sizeof(long), 4);
    for (int i = 0; i < 2; i++) {
        send_ok(a, 1);
        send_ok(b, 2);
    }
    sy_select_case rr[2] = {{a, SY_RECV, 1, &got}, {b, SY_RECV, 1, &got}};
    c[0] = c[1] = 0;
    for (long i = 0; i < FAIR_N; i++) {
        int r = sy_select(rr, 2, i % 2 ? SY_FOREVER : 0);
        CHECK(r == 0 || r == 1);
        CHECK_EQ(rr[r].err, 0);
        CHECK_EQ(got, r + 1);
        c[r]++;
        send_ok(r ? b : a, r + 1);
    }
    CHECK_EQ(c[0] + c[1], FAIR_N);
    check_fair("recv/recv", c[0], FAIR_N);

    /* a send with room and a receive with data */
    va = 5;
    sy_select_case sr[2] = {{a, SY_SEND, 1, &va}, {b, SY_RECV, 1, &vb}};
    c[0] = c[1] = 0;
    for (long i = 0; i < FAIR_N; i++) {
        int r = sy_select(sr, 2, i % 2 ? 0 : sy_now() + 600 * SEC);
        CHECK(r == 0 || r == 1);
        CHECK_EQ(sr[r].err, 0);
        c[r]++;
        if (r == 0) {
            CHECK_EQ(sy_chan_len(a), 3);
            long x;
            CHECK_EQ(sy_chan_tryrecv(a, &x), 0); /* room again */
        } else {
            CHECK_EQ(vb, 2);
            send_ok(b, 2);
        }
    }
    check_fair("send/recv", c[0], FAIR_N);
    CHECK_EQ(sy_chan_destroy(a), 0);
    CHECK_EQ(sy_chan_destroy(b), 0);
    return 0;
}

static void test_select_fairness(void)
{
    run_1_2(init_fair);
}

/* The same with two sender tasks that keep their channels full. */
static sy_chan *fa, *fb;

static int fair_sender(void *arg)
{
    sy_chan *ch = arg;
    long v = ch == fa ? 0 : 1;
    for (;;) {
        int r = sy_chan_send(ch, &v);
        if (r == -EPIPE)
            return 0;
        CHECK_EQ(r, 0);
    }
}

static int init_fair_senders(void *arg)
{
    (void)arg;
    fa = mkchan(sizeof(long), 64);
    fb = mkchan(sizeof(long), 64);
    sy_spawn(fair_sender, fa, NULL);
    sy_spawn(fair_sender, fb, NULL);
    /* both full before we start */
    uint64_t cap = mono_ns() + 30 * (uint64_t)SEC;
    while (sy_chan_len(fa) < 64 || sy_chan_len(fb) < 64) {
        CHECK(mono_ns() < cap);
        sy_nanosleep(100000);
    }
    /* Only this task takes from them: when both hold something before a
     * select, both cases are ready in it.  When one is empty (on two CPUs
     * the sender that shares this task's CPU runs only when it gives the
     * CPU away), it lets the senders run instead of selecting. */
    long got, c[2] = {0, 0}, waits = 0;
    sy_select_case rr[2] = {{fa, SY_RECV, 1, &got}, {fb, SY_RECV, 1, &got}};
    for (long i = 0; i < FAIR_N;) {
        if (sy_chan_len(fa) == 0 || sy_chan_len(fb) == 0) {
            if (++waits % 4)
                sy_yield();
            else
                sy_nanosleep(10000);
            CHECK(waits < 50L * FAIR_N);
            continue;
        }
        int r = sy_select(rr, 2, SY_FOREVER);
        CHECK(r == 0 || r == 1);
        CHECK_EQ(rr[r].err, 0);
        CHECK_EQ(got, r);
        c[r]++;
        i++;
    }
    check_fair("senders", c[0], FAIR_N);
    CHECK_EQ(sy_chan_close(fa), 0);
    CHECK_EQ(sy_chan_close(fb), 0);
    reap_all();
    CHECK_EQ(sy_chan_destroy(fa), 0);
    CHECK_EQ(sy_chan_destroy(fb), 0);
    return 0;
}

static void test_select_fairness_senders(void)
{
    run_1_2(init_fair_senders);
}

/* ------------------------------------------ no lost wakeup: token rings */

#define RING 8
#define RING_MIN 20
#define RING_MAX (SLOW ? 300 : 3000)
static sy_chan *ring_ch[RING];
static long ring_last, ring_hops;
static uint64_t ring_until;

static int ring_task(void *arg)
{
    int i = (int)(long)arg;
    for (long r = 0;; r++) {
        long v = -1;
        CHECK_EQ(r % 2 ? sy_chan_recv(ring_ch[i], &v)
                       : sy_chan_recv_until(ring_ch[i], &v, sy_now() + 600 * SEC),
                 0);
        CHECK_EQ(v, ring_hops); /* the token is ours: the hop count is too */
        CHECK_EQ(ring_hops % RING, i);
        if (i == 0 && ring_last < 0 && r >= RING_MIN && (r >= RING_MAX || mono_ns() > ring_until))
            ring_last = r;
        v = ++ring_hops;
        long last = ring_last;
        if (last == r && i == RING - 1)
            return 0; /* task 0 has gone: keep the token */
        if (r % 3 == 0) {
            sy_select_case cs[2] = {{NULL, SY_RECV, 1, NULL}, {ring_ch[(i + 1) % RING], SY_SEND, 1, &v}};
            CHECK_EQ(sy_select(cs, 2, SY_FOREVER), 1);
            CHECK_EQ(cs[1].err, 0);
        } else {
            CHECK_EQ(sy_chan_send(ring_ch[(i + 1) % RING], &v), 0);
        }
        if (last == r)
            return 0;
    }
}

static int init_ring(void *arg)
{
    size_t cap = (size_t)(long)arg;
    ring_last = -1;
    ring_hops = 0;
    ring_until = mono_ns() + (SLOW ? 3 : 1) * (uint64_t)SEC;
    for (int i = 0; i < RING; i++)
        ring_ch[i] = mkchan(sizeof(long), cap);
    for (long i = 0; i < RING; i++)
        CHECK(sy_spawn(ring_task, (void *)i, NULL) > 0);
    send_ok(ring_ch[0], 0);
    reap_all();
    CHECK(ring_last >= RING_MIN);
    CHECK_EQ(ring_hops, (ring_last + 1) * RING);
    for (int i = 0; i < RING; i++) {
        CHECK_EQ(sy_chan_len(ring_ch[i]), 0);
        CHECK_EQ(sy_chan_destroy(ring_ch[i]), 0);
    }
    return 0;
}

static void run_ring(long cap)
{
    run_cfg(init_ring, (void *)cap, 1, 0);
    long r1 = ring_last + 1;
    run_cfg(init_ring, (void *)cap, 2, 100);
    fprintf(stderr, "[%ld, %ld rounds] ", r1, ring_last + 1);
}

static void test_ring_unbuffered(void)
{
    run_ring(0);
}

static void test_ring_buffered(void)
{
    run_ring(1);
    run_ring(4);
}

/* Many producers and consumers, preempted every 100 us; then close. */
#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER (SLOW ? 2000 : 20000)
static sy_chan *mch;
static long m_sum, m_count;

static int m_producer(void *arg)
{
    long k = (long)arg;
    for (long i = 1; i <= PER_PRODUCER; i++) {
        long v = k * PER_PRODUCER + i;
        int r;
        switch ((k + i) % 4) {
        case 0:
            r = sy_chan_send(mch, &v);
            break;
        case 1:
            while ((r = sy_chan_trysend(mch, &v)) == -EAGAIN)
                sy_yield();
            break;
        case 2:
            r = sy_chan_send_until(mch, &v, sy_now() + 600 * SEC);
            break;
        default: {
            sy_select_case cs[1] = {{mch, SY_SEND, 1, &v}};
            r = sy_select(cs, 1, SY_FOREVER);
            CHECK_EQ(r, 0);
            r = cs[0].err;
        }
        }
        CHECK_EQ(r, 0);
    }
    return 0;
}

static int m_consumer(void *arg)
{
    long k = (long)arg, sum = 0, n = 0;
    for (;;) {
        long v;
        int r;
        if (k % 2) {
            sy_select_case cs[2] = {{mch, SY_RECV, 1, &v}, {NULL, SY_RECV, 1, NULL}};
            r = sy_select(cs, 2, SY_FOREVER);
            CHECK_EQ(r, 0);
            r = cs[0].err;
        } else {
            r = sy_chan_recv(mch, &v);
        }
        if (r == -EPIPE)
            break;
        CHECK_EQ(r, 0);
        sum += v;
        n++;
    }
    __atomic_add_fetch(&m_sum, sum, __ATOMIC_RELAXED);
    __atomic_add_fetch(&m_count, n, __ATOMIC_RELAXED);
    return 0;
}

static int init_mpmc(void *arg)
{
    size_t cap = (size_t)(long)arg;
    mch = mkchan(sizeof(long), cap);
    m_sum = m_count = 0;
    int prod[PRODUCERS];
    for (long i = 0; i < CONSUMERS; i++)
        sy_spawn(m_consumer, (void *)i, NULL);
    for (long i = 0; i < PRODUCERS; i++)
        prod[i] = sy_spawn(m_producer, (void *)i, NULL);
    for (int i = 0; i < PRODUCERS; i++)
        reap(prod[i], 0);
    CHECK_EQ(sy_chan_close(mch), 0);
    reap_all();
    long total = (long)PRODUCERS * PER_PRODUCER;
    CHECK_EQ(m_count, total);
    CHECK_EQ(m_sum, total * (total + 1) / 2);
    CHECK_EQ(sy_chan_destroy(mch), 0);
    return 0;
}

static void test_producers_consumers(void)
{
    for (long cap = 0; cap <= 16; cap += 16) {
        run_cfg(init_mpmc, (void *)cap, 1, 100);
        run_cfg(init_mpmc, (void *)cap, 2, 100);
    }
}

/* --------------------------------------------------------- prime sieve */

#define SIEVE_MAX 2000
static int sieve_n;
static sy_chan *sieve_ch[SIEVE_MAX + 1];
static long sieve_got[SIEVE_MAX];
static int sieve_kill; /* end by killing every task instead of closing */
static int sieve_pids[SIEVE_MAX + 1];

struct filter {
    sy_chan *in, *out;
    long prime;
};
static struct filter filters[SIEVE_MAX];

static int generator(void *arg)
{
    sy_chan *out = arg;
    for (long i = 2;; i++) {
        int r = sy_chan_send(out, &i);
        if (r == -EPIPE)
            return 0; /* closed downstream */
        if (r == -EINTR)
            return 1;
        CHECK_EQ(r, 0);
    }
}

static int filter(void *arg)
{
    struct filter *f = arg;
    for (;;) {
        long v;
        int r = sy_chan_recv(f->in, &v);
        if (r == -EINTR)
            return 1;
        CHECK_EQ(r, 0); /* its input is closed only by itself */
        if (v % f->prime == 0)
            continue;
        r = sy_chan_send(f->out, &v);
        if (r == -EINTR)
            return 1;
        if (r == -EPIPE) { /* the end, from downstream: pass it upstream */
            CHECK_EQ(sy_chan_close(f->in), 0);
            return 0;
        }
        CHECK_EQ(r, 0);
    }
}

static int init_sieve(void *arg)
{
    (void)arg;
    size_t cap = sieve_kill ? 4 : 0;
    sieve_ch[0] = mkchan(sizeof(long), cap);
    sieve_pids[0] = sy_spawn(generator, sieve_ch[0], &(sy_attr){.name = "generator"});
    CHECK(sieve_pids[0] > 0);
    for (int i = 0; i < sieve_n; i++) {
        sieve_got[i] = recv_ok(sieve_ch[i]);
        sieve_ch[i + 1] = mkchan(sizeof(long), cap);
        filters[i] = (struct filter){sieve_ch[i], sieve_ch[i + 1], sieve_got[i]};
        sieve_pids[i + 1] = sy_spawn(filter, &filters[i], &(sy_attr){.name = "filter"});
        CHECK(sieve_pids[i + 1] > 0);
    }
    int st;
    if (!sieve_kill) {
        /* close the last channel: each filter closes its input when its
         * output is closed, up to the generator */
        CHECK_EQ(sy_chan_close(sieve_ch[sieve_n]), 0);
        for (int i = 0; i <= sieve_n; i++)
            reap(sieve_pids[i], 0);
    } else {
        for (int i = 0; i <= sieve_n; i++)
            CHECK_EQ(sy_kill(sieve_pids[i]), 0);
        for (int i = 0; i <= sieve_n; i++) {
            CHECK_EQ(sy_wait(sieve_pids[i], &st, 0), sieve_pids[i]);
            CHECK(st == 1 || st == SY_EXIT_KILLED);
        }
    }
    CHECK_EQ(sy_wait(-1, &st, SY_WNOHANG), -ECHILD);
    for (int i = 0; i <= sieve_n; i++)
        CHECK_EQ(sy_chan_destroy(sieve_ch[i]), 0); /* nobody waits on any */
    return 0;
}

static void check_primes(void)
{
    /* Eratosthenes */
    int limit = 20000; /* the 2000th prime is 17389 */
    char *composite = calloc((size_t)limit, 1);
    CHECK(composite);
    int k = 0;
    for (long p = 2; p < limit && k < sieve_n; p++) {
        if (composite[p])
            continue;
        CHECK_EQ(sieve_got[k], p);
        k++;
        for (long q = p * p; q < limit; q += p)
            composite[q] = 1;
    }
    CHECK_EQ(k, sieve_n);
    free(composite);
}

static void test_prime_sieve(void)
{
    const char *s = getenv("SY_SIEVE_PRIMES");
#if defined(__SANITIZE_THREAD__)
    sieve_n = s ? atoi(s) : 100; /* 1000: 80 s */
#else
    sieve_n = s ? atoi(s) : 1000; /* valgrind: 7 s */
#endif
    if (sieve_n < 1 || sieve_n > SIEVE_MAX)
        sieve_n = 1000;
    for (int ncpu = 1; ncpu <= 2; ncpu++)
        for (sieve_kill = 0; sieve_kill <= 1; sieve_kill++) {
            memset(sieve_got, 0, sizeof sieve_got);
            uint64_t t0 = mono_ns();
            run_cfg(init_sieve, NULL, ncpu, 0);
            check_primes();
            fprintf(stderr, "[%d CPU %s: %d primes, %.2f s] ", ncpu, sieve_kill ? "kill" : "close",
                    sieve_n, (double)(mono_ns() - t0) / 1e9);
        }
}

int main(void)
{
    RUN(test_eperm);
    RUN(test_eperm_len);
    RUN(test_bad_args);
    RUN(test_unbuffered);
    RUN(test_buffered);
    RUN(test_close);
    RUN(test_kill_waiters);
    RUN(test_kill_race);
    RUN(test_deadlines);
    RUN(test_select);
    RUN(test_select_fairness);
    RUN(test_select_fairness_senders);
    RUN(test_ring_unbuffered);
    RUN(test_ring_buffered);
    RUN(test_producers_consumers);
    RUN(test_prime_sieve);
    return 0;
}
