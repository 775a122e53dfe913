/* t_iocancel - a wait ended while its request is in flight (kill, deadline,
 * sy_close), on 1 and 2 CPUs: the call returns its error, and the kernel
 * touches the buffer no more after the return (on io_uring the request is
 * cancelled and its own completion awaited); an accept that completes
 * anyway has its new fd closed; files byte for byte; the deadlock detector
 * quiet while I/O is in flight and firing once nothing can wake anyone.
 * Written for both backends: the Makefile runs it on io_uring (the default)
 * and again with SY_IO=epoll, and with SY_IO_WAKE=eventfd (a park's wake
 * through an eventfd read in the ring, as on kernels before 6.7). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "test.h"

#define BUF 4096
#define PATTERN 0x5a

static void run(int ncpu, sy_fn fn)
{
    sy_config cfg = {.ncpu = ncpu};
    CHECK_EQ(sy_run(&cfg, fn, NULL), 0);
}

static bool untouched(const unsigned char *b)
{
    for (int i = 0; i < BUF; i++)
        if (b[i] != PATTERN)
            return false;
    return true;
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Until task pid is asleep in an I/O call (slow under valgrind and qemu). */
static void until_asleep_in_io(int pid)
{
    for (int k = 0; k < 20000; k++) {
        sy_task_info info[64];
        int n = sy_ps(info, 64);
        for (int i = 0; i < n; i++)
            if (info[i].pid == pid && info[i].state == SY_SLEEPING &&
                !strcmp(info[i].wait_kind, "io"))
                return;
        sy_nanosleep(1000000);
    }
    CHECK(!"the task never slept in its I/O call");
}

/* ------------------------------ kill, deadline, close: buffer untouched */

enum how { BY_KILL, BY_DEADLINE, BY_CLOSE };
struct victim_arg {
    int fd;
    enum how how;
    unsigned char *buf;
};

static int victim(void *arg)
{
    struct victim_arg *v = arg;
    int64_t dl = v->how == BY_DEADLINE ? sy_now() + 30000000 : SY_FOREVER;
    return (int)-sy_recv_until(v->fd, v->buf, BUF, 0, dl); /* its error, positive */
}

static int init_cancel(void *arg)
{
    (void)arg;
    printf("    backend %s, %d CPUs\n", sy_io_backend(), sy_ncpu());
    for (int how = BY_KILL; how <= BY_CLOSE; how++) {
        int sp[2];
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), 0);
        unsigned char *buf = malloc(BUF);
        CHECK(buf);
        memset(buf, PATTERN, BUF);
        struct victim_arg v = {.fd = sp[0], .how = how, .buf = buf};
        int pid = sy_spawn(victim, &v, NULL);
        CHECK(pid > 0);
        until_asleep_in_io(pid);
        if (how == BY_KILL)
            CHECK_EQ(sy_kill(pid), 0);
        else if (how == BY_CLOSE)
            CHECK_EQ(sy_close(sp[0]), 0);
        int st;
        CHECK_EQ(sy_wait(pid, &st, 0), pid);
        CHECK_EQ(st, how == BY_KILL ? EINTR : how == BY_DEADLINE ? ETIMEDOUT : EBADF);
        /* the call has returned: data sent now must not land in buf */
        ssize_t w = send(sp[1], "late data", 9, MSG_NOSIGNAL | MSG_DONTWAIT);
        CHECK(how == BY_CLOSE ? w == -1 : w == 9); /* closed: the peer is gone */
        sy_nanosleep(20000000);
        CHECK(untouched(buf));
        if (how != BY_CLOSE) { /* and it is still there to read */
            char back[16];
            CHECK_EQ(sy_recv(sp[0], back, sizeof back, 0), 9);
            CHECK(memcmp(back, "late data", 9) == 0);
            CHECK_EQ(sy_close(sp[0]), 0);
        }
        CHECK_EQ(sy_close(sp[1]), 0);
        free(buf);
    }
    return 0;
}

static void test_cancel_kill_deadline_close(void)
{
    run(1, init_cancel);
    run(2, init_cancel);
}

/* Many readers on one pipe, ended by deadlines and kills at random, on 2
 * CPUs (a wait may end on a CPU other than the one its request is on):
 * every buffer untouched, every byte written afterwards read once. */
#define READERS 16
static int mpipe[2];
static unsigned char *mbufs[READERS];

static int mreader(void *arg)
{
    long i = (long)arg;
    int64_t dl = i % 2 ? sy_now() + 1000000 * (1 + i % 7) : SY_FOREVER;
    return (int)-sy_read_until(mpipe[0], mbufs[i], BUF, dl);
}

static int init_many(void *arg)
{
    (void)arg;
    for (int round = 0; round < 20; round++) {
        CHECK_EQ(pipe2(mpipe, O_CLOEXEC), 0);
        int pids[READERS];
        for (long i = 0; i < READERS; i++) {
            mbufs[i] = malloc(BUF);
            memset(mbufs[i], PATTERN, BUF);
            pids[i] = sy_spawn(mreader, (void *)i, NULL);
            CHECK(pids[i] > 0);
        }
        sy_nanosleep(2000000);
        for (int i = 0; i < READERS; i += 2)
            sy_kill(pids[i]);
        for (int i = 0; i < READERS; i++) {
            int st;
            CHECK_EQ(sy_wait(pids[i], &st, 0), pids[i]);
            CHECK(st == EINTR || st == ETIMEDOUT);
        }
        CHECK_EQ(write(mpipe[1], "abc", 3), 3);
        sy_nanosleep(5000000);
        for (int i = 0; i < READERS; i++) {
            CHECK(untouched(mbufs[i]));
            free(mbufs[i]);
        }
        char back[8];
        CHECK_EQ(sy_read(mpipe[0], back, sizeof back), 3);
        CHECK_EQ(sy_close(mpipe[0]), 0);
        CHECK_EQ(sy_close(mpipe[1]), 0);
    }
    return 0;
}

static void test_many_cancelled_readers(void)
{
    run(2, init_many);
}

/* -------------------------------- an accept that completes anyway */

static int lfd;
static struct sockaddr_in laddr;

static int acceptor(void *arg)
{
    (void)arg;
    return -sy_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
}

static int init_accept_anyway(void *arg)
{
    (void)arg;
    int wp[2]; /* first, the backend's own fds (ring, epoll) */
    char c;
    CHECK_EQ(pipe(wp), 0);
    CHECK_EQ(sy_write(wp[1], "w", 1), 1);
    CHECK_EQ(sy_read(wp[0], &c, 1), 1);
    CHECK_EQ(sy_close(wp[0]), 0);
    CHECK_EQ(sy_close(wp[1]), 0);
    int fds0 = open_fds();
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0);
    laddr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(lfd, (struct sockaddr *)&laddr, sizeof laddr), 0);
    socklen_t len = sizeof laddr;
    CHECK_EQ(getsockname(lfd, (struct sockaddr *)&laddr, &len), 0);
    CHECK_EQ(listen(lfd, 16), 0);
    /* On one CPU: the acceptor's request waits in the ring, not submitted
     * yet (its CPU runs us first); a connection arrives; the kill then ends
     * its wait, and the cancel is submitted behind the accept, which
     * completes at once: its new fd must be closed. */
    int pid = sy_spawn(acceptor, NULL, NULL);
    CHECK(pid > 0);
    sy_yield(); /* it runs up to its sleep */
    int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(cl >= 0);
    CHECK_EQ(connect(cl, (struct sockaddr *)&laddr, sizeof laddr), 0);
    CHECK_EQ(sy_kill(pid), 0);
    int st;
    CHECK_EQ(sy_wait(pid, &st, 0), pid);
    if (st == EINTR) {
        /* accepted and closed (io_uring), or still queued (epoll): either
         * way the client sees the end once nobody holds the server side */
        CHECK_EQ(fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK), 0);
        int s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        bool ring = strcmp(sy_io_backend(), "io_uring") == 0;
        CHECK(ring ? s < 0 && errno == EAGAIN : s >= 0);
        if (s >= 0)
            close(s);
    } else {
        CHECK(!"the acceptor should have been killed");
    }
    CHECK_EQ(sy_recv_until(cl, &c, 1, 0, sy_now() + 5000000000ll), 0); /* EOF */
    CHECK_EQ(sy_close(cl), 0);
    CHECK_EQ(sy_close(lfd), 0);
    CHECK_EQ(open_fds(), fds0); /* no fd leaked */
    return 0;
}

/* An accept in flight, ended by a kill, a deadline or a close of the
 * listening socket: after a close nobody may be listening any more (a
 * request left in flight would hold the socket open, and a connect would
 * still succeed). */
static int accept_victim(void *arg)
{
    int64_t dl = arg ? sy_now() + 30000000 : SY_FOREVER;
    return -sy_accept_until(lfd, NULL, NULL, SOCK_CLOEXEC, dl);
}

static int init_accept_cancel(void *arg)
{
    (void)arg;
    for (int how = BY_KILL; how <= BY_CLOSE; how++) {
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(lfd >= 0);
        laddr = (struct sockaddr_in){.sin_family = AF_INET,
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        CHECK_EQ(bind(lfd, (struct sockaddr *)&laddr, sizeof laddr), 0);
        socklen_t len = sizeof laddr;
        CHECK_EQ(getsockname(lfd, (struct sockaddr *)&laddr, &len), 0);
        CHECK_EQ(listen(lfd, 16), 0);
        int pid = sy_spawn(accept_victim, how == BY_DEADLINE ? (void *)1 : NULL, NULL);
        CHECK(pid > 0);
        until_asleep_in_io(pid);
        if (how == BY_KILL)
            CHECK_EQ(sy_kill(pid), 0);
        else if (how == BY_CLOSE)
            CHECK_EQ(sy_close(lfd), 0);
        int st;
        CHECK_EQ(sy_wait(pid, &st, 0), pid);
        CHECK_EQ(st, how == BY_KILL ? EINTR : how == BY_DEADLINE ? ETIMEDOUT : EBADF);
        int cl = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(cl >= 0);
        int r = sy_connect(cl, (struct sockaddr *)&laddr, sizeof laddr);
        if (how == BY_CLOSE) {
            CHECK_EQ(r, -ECONNREFUSED); /* nobody listens: the accept let go */
        } else {
            CHECK_EQ(r, 0);
            int s = sy_accept(lfd, NULL, NULL, SOCK_CLOEXEC); /* still there to take */
            CHECK(s >= 0);
            CHECK_EQ(sy_close(s), 0);
            CHECK_EQ(sy_close(lfd), 0);
        }
        CHECK_EQ(sy_close(cl), 0);
    }
    return 0;
}

static void test_accept_cancelled(void)
{
    run(1, init_accept_cancel);
    run(2, init_accept_cancel);
}

static void test_accept_completes_anyway(void)
{
    run(1, init_accept_anyway);
}

/* ------------------------------------------ files, byte for byte */

#define FCHUNK (256 * 1024)
static int ffd;

static int file_writer(void *arg)
{
    long k = (long)arg;
    unsigned char *b = malloc(FCHUNK);
    for (int i = 0; i < FCHUNK; i++)
        b[i] = (unsigned char)(i * 31 + k * 17 + (i >> 9));
    CHECK_EQ(sy_pwrite(ffd, b, FCHUNK, k * FCHUNK), FCHUNK);
    unsigned char *back = malloc(FCHUNK);
    CHECK_EQ(sy_pread(ffd, back, FCHUNK, k * FCHUNK), FCHUNK);
    CHECK(memcmp(b, back, FCHUNK) == 0);
    free(b);
    free(back);
    return 0;
}

static int init_files(void *arg)
{
    (void)arg;
    char path[64];
    snprintf(path, sizeof path, "/tmp/sy_t_iocancel.%d", (int)getpid());
    ffd = sy_openat(AT_FDCWD, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(ffd >= 0);
    for (long k = 0; k < 8; k++)
        CHECK(sy_spawn(file_writer, (void *)k, NULL) > 0);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK_EQ(sy_fdatasync(ffd), 0);
    /* the whole file through sy_read (the file position), in odd pieces */
    CHECK_EQ(lseek(ffd, 0, SEEK_SET), 0);
    unsigned char *all = malloc(8 * FCHUNK + 65536); /* (room for the last read) */
    size_t got = 0;
    ssize_t r;
    while ((r = sy_read(ffd, all + got, got % 3 ? 4093 : 65536)) > 0)
        got += (size_t)r;
    CHECK_EQ(r, 0);
    CHECK_EQ(got, 8 * FCHUNK);
    for (long k = 0; k < 8; k++)
        for (int i = 0; i < FCHUNK; i++)
            if (all[k * FCHUNK + i] != (unsigned char)(i * 31 + k * 17 + (i >> 9)))
                CHECK(!"a byte differs");
    /* sy_write appends at the position; bad input */
    CHECK_EQ(sy_write(ffd, "end", 3), 3);
    CHECK_EQ(sy_pread(ffd, all, 3, 8 * FCHUNK), 3);
    CHECK(memcmp(all, "end", 3) == 0);
    CHECK_EQ(sy_pread(ffd, all, 3, -1), -EINVAL);
    CHECK_EQ(sy_pwrite(ffd, all, 3, -5), -EINVAL);
    free(all);
    CHECK_EQ(sy_close(ffd), 0);
    CHECK_EQ(sy_pread(ffd, path, 1, 0), -EBADF);
    CHECK_EQ(sy_fsync(ffd), -EBADF);
    unlink(path);
    return 0;
}

static void test_files_byte_for_byte(void)
{
    run(1, init_files);
    run(2, init_files);
}

/* ----------------------------------------------- the deadlock detector */

static int dpipe[2];
static volatile int read_done;
static int dl_chan;

static void *late_writer(void *arg)
{
    (void)arg;
    usleep(150000);
    if (write(dpipe[1], "q", 1) != 1)
        abort();
    return NULL;
}

static int io_reader(void *arg)
{
    (void)arg;
    char c;
    CHECK_EQ(sy_read(dpipe[0], &c, 1), 1);
    read_done = 1;
    return 0;
}

static int init_deadlock_once_io_done(void *arg)
{
    (void)arg;
    CHECK(sy_spawn(io_reader, NULL, NULL) > 0);
    /* asleep with nobody to wake us: but the reader's request is in
     * flight (quiet), until it completes and the reader exits (deadlock) */
    sy_sleep(&dl_chan, NULL);
    CHECK(read_done); /* killed by the report, after the read */
    return 0;
}

static void test_deadlock_quiet_then_found(void)
{
    for (int ncpu = 1; ncpu <= 2; ncpu++) {
        CHECK_EQ(pipe(dpipe), 0);
        read_done = 0;
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, late_writer, NULL), 0);
        sy_config cfg = {.ncpu = ncpu};
        fprintf(stderr, "[a deadlock report is expected:]\n");
        CHECK_EQ(sy_run(&cfg, init_deadlock_once_io_done, NULL), -EDEADLK);
        CHECK(read_done);
        pthread_join(th, NULL);
        close(dpipe[0]);
        close(dpipe[1]);
    }
}

/* ------------------------------------- the fallback when rings are refused */

static int init_fallback(void *arg)
{
    (void)arg;
    CHECK(strcmp(sy_io_backend(), "epoll") == 0);
    int p[2];
    char c;
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(sy_write(p[1], "f", 1), 1);
    CHECK_EQ(sy_read(p[0], &c, 1), 1);
    CHECK_EQ(sy_read_until(p[0], &c, 1, sy_now() + 2000000), -ETIMEDOUT);
    CHECK_EQ(sy_close(p[0]), 0);
    CHECK_EQ(sy_close(p[1]), 0);
    return 0;
}

/* In a child: io_uring_setup refused with `err` by a seccomp filter (as
 * Docker's default profile does: EPERM; ENOSYS as a kernel without it or
 * an emulator): the runtime falls back to epoll by itself. */
static void refused_with(int err)
{
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct sock_filter f[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {.len = sizeof f / sizeof *f, .filter = f};
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            _exit(0); /* (no seccomp here, e.g. under an emulator: nothing to test) */
        sy_config cfg = {.ncpu = 2};
        _exit(sy_run(&cfg, init_fallback, NULL) == 0 ? 0 : 1);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_fallback_when_refused(void)
{
    refused_with(EPERM);
    refused_with(ENOSYS);
}

int main(void)
{
    RUN(test_cancel_kill_deadline_close);
    RUN(test_many_cancelled_readers);
    RUN(test_accept_cancelled);
    RUN(test_accept_completes_anyway);
    RUN(test_files_byte_for_byte);
    RUN(test_deadlock_quiet_then_found);
    RUN(test_fallback_when_refused);
    return 0;
}
