/* t_iostress - I/O mixed with spawn, kill and preemption at 100 us on 2
 * CPUs: pairs of tasks ping-pong numbered messages over SOCK_SEQPACKET
 * socketpairs (a message is sent whole or not at all), a spawner starts
 * short-lived tasks that wait on a pipe with a deadline and read a file
 * through the workers, and a killer kills tasks at random.  Checked: every
 * reply is the number sent plus one (no message lost, duplicated or
 * garbled), the file's bytes, and that the run ends (a lost wakeup hangs
 * it; the watchdog then aborts).  SY_IOSTRESS_SECONDS (default 2). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "test.h"

#define PAIRS 12

static int sp[PAIRS][2];
static int pipefd[2];
static int filefd;
static int64_t end_at;
static atomic_int bad;
static atomic_long exchanges, spawned, files_read;
static int pids[2 * PAIRS];

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int pinger(void *arg)
{
    int fd = sp[(long)arg][0];
    uint64_t v = 0;
    while (sy_now() < end_at) {
        ssize_t r = sy_send_until(fd, &v, sizeof v, 0, sy_now() + 20000000);
        if (r == -EINTR)
            return 0;
        if (r == -ETIMEDOUT)
            continue;
        if (r != (ssize_t)sizeof v) {
            atomic_store(&bad, 1);
            return 1;
        }
        uint64_t w;
        for (;;) {
            r = sy_recv_until(fd, &w, sizeof w, 0, sy_now() + 20000000);
            if (r == -EINTR)
                return 0;
            if (r != -ETIMEDOUT)
                break;
            if (sy_now() >= end_at)
                return 0; /* the ponger was killed */
        }
        if (r != (ssize_t)sizeof w || w != v + 1) {
            atomic_store(&bad, 2);
            return 1;
        }
        v = w + 1;
        atomic_fetch_add(&exchanges, 1);
    }
    return 0;
}

static int ponger(void *arg)
{
    int fd = sp[(long)arg][1];
    while (sy_now() < end_at) {
        uint64_t v;
        ssize_t r = sy_recv_until(fd, &v, sizeof v, 0, sy_now() + 20000000);
        if (r == -EINTR)
            return 0;
        if (r == -ETIMEDOUT)
            continue;
        if (r != (ssize_t)sizeof v) {
            atomic_store(&bad, 3);
            return 1;
        }
        v++;
        r = sy_send_until(fd, &v, sizeof v, 0, sy_now() + 20000000);
        if (r == -EINTR)
            return 0;
        if (r != (ssize_t)sizeof v && r != -ETIMEDOUT) {
            atomic_store(&bad, 4);
            return 1;
        }
    }
    return 0;
}

static int short_lived(void *arg)
{
    uint64_t s = (uint64_t)(long)arg;
    char c;
    ssize_t r = sy_read_until(pipefd[0], &c, 1, sy_now() + (int64_t)(rnd(&s) % 2000000));
    if (r != -ETIMEDOUT && r != -EINTR)
        atomic_store(&bad, 5);
    unsigned char buf[256];
    off_t off = (off_t)(rnd(&s) % 3840);
    r = sy_pread(filefd, buf, sizeof buf, off);
    if (r != (ssize_t)sizeof buf) {
        atomic_store(&bad, 6);
        return 1;
    }
    for (size_t i = 0; i < sizeof buf; i++)
        if (buf[i] != (unsigned char)((off + (off_t)i) * 13))
            atomic_store(&bad, 7);
    atomic_fetch_add(&files_read, 1);
    return 0;
}

static int spawner(void *arg)
{
    (void)arg;
    uint64_t s = 99;
    while (sy_now() < end_at) {
        if (sy_spawn(short_lived, (void *)(long)(rnd(&s) | 1), NULL) > 0)
            atomic_fetch_add(&spawned, 1);
        sy_nanosleep(rnd(&s) % 300000);
        while (sy_wait(-1, NULL, SY_WNOHANG) > 0)
            ;
    }
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    return 0;
}

static int killer(void *arg)
{
    (void)arg;
    uint64_t s = 4242;
    while (sy_now() < end_at) {
        sy_nanosleep(5000000 + rnd(&s) % 20000000);
        sy_kill(pids[rnd(&s) % (2 * PAIRS)]); /* -ESRCH once gone: fine */
    }
    return 0;
}

static int init(void *arg)
{
    (void)arg;
    const char *e = getenv("SY_IOSTRESS_SECONDS");
    end_at = sy_now() + (int64_t)((e ? atof(e) : 2.0) * 1e9);
    char path[64];
    snprintf(path, sizeof path, "/tmp/sy_t_iostress.%d", (int)getpid());
    filefd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(filefd >= 0);
    unlink(path);
    unsigned char data[4096];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 13);
    CHECK_EQ(sy_pwrite(filefd, data, sizeof data, 0), (long)sizeof data);
    CHECK_EQ(pipe(pipefd), 0);
    for (long i = 0; i < PAIRS; i++) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp[i]), 0);
        pids[2 * i] = sy_spawn(pinger, (void *)i, NULL);
        pids[2 * i + 1] = sy_spawn(ponger, (void *)i, NULL);
        CHECK(pids[2 * i] > 0 && pids[2 * i + 1] > 0);
    }
    CHECK(sy_spawn(spawner, NULL, NULL) > 0);
    CHECK(sy_spawn(killer, NULL, NULL) > 0);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK_EQ(atomic_load(&bad), 0);
    CHECK(atomic_load(&exchanges) > 0);
    CHECK(atomic_load(&files_read) > 0);
    for (int i = 0; i < PAIRS; i++) {
        CHECK_EQ(sy_close(sp[i][0]), 0);
        CHECK_EQ(sy_close(sp[i][1]), 0);
    }
    CHECK_EQ(sy_close(pipefd[0]), 0);
    CHECK_EQ(sy_close(pipefd[1]), 0);
    CHECK_EQ(sy_close(filefd), 0);
    printf("  %ld exchanges, %ld short tasks, %ld file reads, quantum 100 us\n",
           atomic_load(&exchanges), atomic_load(&spawned), atomic_load(&files_read));
    return 0;
}

static atomic_int finished;

static void *watchdog(void *arg)
{
    double secs = *(double *)arg;
    for (double t = 0; t < secs; t += 0.1) {
        if (atomic_load(&finished))
            return NULL;
        usleep(100000);
    }
    fprintf(stderr, "watchdog: t_iostress still running after %.0f s\n", secs);
    abort();
}

static void test_mix(void)
{
    const char *e = getenv("SY_IOSTRESS_SECONDS"), *w = getenv("SY_IOSTRESS_WATCHDOG");
    double secs = w ? atof(w) : 120 + (e ? atof(e) : 2.0);
    pthread_t th;
    atomic_store(&finished, 0);
    CHECK_EQ(pthread_create(&th, NULL, watchdog, &secs), 0);
    sy_config cfg = {.ncpu = 2, .quantum_us = 100, .tick_us = 100};
    CHECK_EQ(sy_run(&cfg, init, NULL), 0);
    atomic_store(&finished, 1);
    pthread_join(th, NULL);
}

int main(void)
{
    RUN(test_mix);
    return 0;
}
