/* t_io - blocking I/O that sleeps the task, not its CPU (io.c): pipes,
 * socketpairs and TCP on loopback, on 1 and 2 CPUs; deadlines, kills,
 * sy_close waking waiters, sy_poll, and the deadlock detector leaving a
 * program alone while its tasks wait on fds. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "test.h"

static int ncpu_of_run = 1;

static void run(int ncpu, sy_fn fn)
{
    sy_config cfg = {.ncpu = ncpu};
    ncpu_of_run = ncpu;
    CHECK_EQ(sy_run(&cfg, fn, NULL), 0);
}

/* ---------------------------------------------- a read sleeps the task */

static int pfd[2];
static volatile long spins;
static volatile int reader_done;

static int slow_writer(void *arg)
{
    (void)arg;
    /* the reader is asleep on the pipe: this task has the CPU */
    for (int i = 0; i < 5; i++)
        sy_nanosleep(2000000);
    CHECK_EQ(sy_write(pfd[1], "hello", 5), 5);
    return 0;
}

static int reader(void *arg)
{
    (void)arg;
    char buf[16];
    CHECK_EQ(sy_read(pfd[0], buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    reader_done = 1;
    return 0;
}

static int spinner(void *arg)
{
    (void)arg;
    while (!reader_done) {
        spins++;
        sy_yield();
    }
    return 0;
}

static int init_pipe_read(void *arg)
{
    (void)arg;
    CHECK_EQ(pipe(pfd), 0);
    reader_done = 0;
    spins = 0;
    sy_attr pin0 = {.flags = SY_ATTR_PIN, .cpu = 0};
    CHECK(sy_spawn(reader, NULL, &pin0) > 0);
    CHECK(sy_spawn(spinner, NULL, &pin0) > 0); /* same CPU as the reader */
    CHECK(sy_spawn(slow_writer, NULL, NULL) > 0);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK(spins > 0); /* the reader's CPU ran others while it waited */
    CHECK_EQ(sy_close(pfd[0]), 0);
    CHECK_EQ(sy_close(pfd[1]), 0);
    return 0;
}

static void test_pipe_read(void)
{
    run(1, init_pipe_read);
    run(2, init_pipe_read);
}

/* ------------------------------------------- socketpair ping-pong, many */

#define PAIRS 16
#define ROUNDS 200

static int sp[PAIRS][2];

static int ponger(void *arg)
{
    int fd = sp[(long)arg][1];
    long v;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_EQ(sy_recv(fd, &v, sizeof v, 0), (long)sizeof v);
        v++;
        CHECK_EQ(sy_send(fd, &v, sizeof v, 0), (long)sizeof v);
    }
    return 0;
}

static int pinger(void *arg)
{
    int fd = sp[(long)arg][0];
    long v = 0;
    for (int i = 0; i < ROUNDS; i++) {
        CHECK_EQ(sy_send(fd, &v, sizeof v, 0), (long)sizeof v);
        long w;
        CHECK_EQ(sy_recv(fd, &w, sizeof w, 0), (long)sizeof w);
        CHECK_EQ(w, v + 1);
        v = w;
    }
    return 0;
}

static int init_pingpong(void *arg)
{
    (void)arg;
    for (long i = 0; i < PAIRS; i++) {
        CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sp[i]), 0);
        CHECK(sy_spawn(ponger, (void *)i, NULL) > 0);
        CHECK(sy_spawn(pinger, (void *)i, NULL) > 0);
    }
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    for (int i = 0; i < PAIRS; i++) {
        CHECK_EQ(sy_close(sp[i][0]), 0);
        CHECK_EQ(sy_close(sp[i][1]), 0);
    }
    return 0;
}

static void test_socketpair_pingpong(void)
{
    run(1, init_pingpong);
    run(2, init_pingpong);
}

/* --------------------------------------------------- TCP on loopback */

static int lfd;
static struct sockaddr_in laddr;

static int echo_conn(void *arg)
{
    int fd = (int)(long)arg;
    char buf[256];
    ssize_t n;
    while ((n = sy_read(fd, buf, sizeof buf)) > 0)
        CHECK_EQ(sy_write(fd, buf, (size_t)n), n);
    CHECK_EQ(n, 0);
    CHECK_EQ(sy_close(fd), 0);
    return 0;
}

static int server(void *arg)
{
    long nconn = (long)arg;
    for (long i = 0; i < nconn; i++) {
        int fd = sy_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
        CHECK(fd >= 0);
        CHECK(sy_spawn(echo_conn, (void *)(long)fd, NULL) > 0);
    }
    return 0;
}

static int client(void *arg)
{
    long id = (long)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    CHECK_EQ(sy_connect(fd, (struct sockaddr *)&laddr, sizeof laddr), 0);
    for (int i = 0; i < 50; i++) {
        char out[64], in[64];
        int len = snprintf(out, sizeof out, "client %ld line %d", id, i);
        CHECK_EQ(sy_write(fd, out, (size_t)len), len);
        int got = 0;
        while (got < len) {
            ssize_t n = sy_read(fd, in + got, (size_t)(len - got));
            CHECK(n > 0);
            got += (int)n;
        }
        CHECK(memcmp(in, out, (size_t)len) == 0);
    }
    CHECK_EQ(sy_shutdown(fd, SHUT_WR), 0);
    char c;
    CHECK_EQ(sy_read(fd, &c, 1), 0);
    CHECK_EQ(sy_close(fd), 0);
    return 0;
}

static int init_tcp(void *arg)
{
    (void)arg;
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(lfd >= 0);
    laddr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(lfd, (struct sockaddr *)&laddr, sizeof laddr), 0);
    socklen_t len = sizeof laddr;
    CHECK_EQ(getsockname(lfd, (struct sockaddr *)&laddr, &len), 0);
    CHECK_EQ(listen(lfd, 64), 0);
    const long n = 20;
    CHECK(sy_spawn(server, (void *)n, NULL) > 0);
    for (long i = 0; i < n; i++)
        CHECK(sy_spawn(client, (void *)i, NULL) > 0);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK_EQ(sy_close(lfd), 0);
    /* a refused connection reports the error */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK_EQ(sy_connect(fd, (struct sockaddr *)&laddr, sizeof laddr), -ECONNREFUSED);
    CHECK_EQ(sy_close(fd), 0);
    return 0;
}

static void test_tcp_echo(void)
{
    run(1, init_tcp);
    run(2, init_tcp);
}

/* ------------------------------------------- deadline, kill, close */

static int victim_fd;

static int victim(void *arg)
{
    (void)arg;
    char c;
    return (int)-sy_read(victim_fd, &c, 1); /* its error, positive */
}

static int init_deadline_kill_close(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe(p), 0);
    char c;
    /* a past deadline: nothing to read, no wait */
    CHECK_EQ(sy_read_until(p[0], &c, 1, 0), -ETIMEDOUT);
    /* a future one passes */
    int64_t t0 = sy_now();
    CHECK_EQ(sy_read_until(p[0], &c, 1, t0 + 20000000), -ETIMEDOUT);
    CHECK(sy_now() - t0 >= 20000000);
    /* data there: a past deadline still reads */
    CHECK_EQ(sy_write(p[1], "x", 1), 1);
    CHECK_EQ(sy_read_until(p[0], &c, 1, 0), 1);
    /* a kill wakes a reader with -EINTR */
    victim_fd = p[0];
    int pid = sy_spawn(victim, NULL, NULL);
    CHECK(pid > 0);
    sy_nanosleep(5000000);
    CHECK_EQ(sy_kill(pid), 0);
    int st;
    CHECK_EQ(sy_wait(pid, &st, 0), pid);
    CHECK_EQ(st, EINTR);
    /* sy_close wakes readers with -EBADF */
    pid = sy_spawn(victim, NULL, NULL);
    CHECK(pid > 0);
    /* until it is asleep on the pipe (slow under valgrind and emulators) */
    bool seen = false;
    for (int k = 0; k < 10000 && !seen; k++) {
        sy_nanosleep(1000000);
        sy_task_info info[8];
        int n = sy_ps(info, 8);
        for (int i = 0; i < n; i++)
            if (info[i].pid == pid)
                seen = info[i].state == SY_SLEEPING && !strcmp(info[i].wait_kind, "io");
    }
    CHECK(seen);
    CHECK_EQ(sy_close(p[0]), 0);
    CHECK_EQ(sy_wait(pid, &st, 0), pid);
    CHECK_EQ(st, EBADF);
    CHECK_EQ(sy_close(p[1]), 0);
    /* bad fds */
    CHECK_EQ(sy_read(-1, &c, 1), -EBADF);
    CHECK_EQ(sy_read(p[0], &c, 1), -EBADF); /* closed */
    CHECK_EQ(sy_close(-1), -EBADF);
    return 0;
}

static void test_deadline_kill_close(void)
{
    run(1, init_deadline_kill_close);
    run(2, init_deadline_kill_close);
}

/* ------------------------------------------------------------- poll */

static int poll_fds[3][2];

static int late_writer(void *arg)
{
    sy_nanosleep(10000000);
    CHECK_EQ(sy_write(poll_fds[(long)arg][1], "y", 1), 1);
    return 0;
}

static int init_poll(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        CHECK_EQ(pipe(poll_fds[i]), 0);
    struct pollfd pf[3];
    for (int i = 0; i < 3; i++)
        pf[i] = (struct pollfd){.fd = poll_fds[i][0], .events = POLLIN};
    CHECK_EQ(sy_poll(pf, 3, 0), 0); /* nothing ready, past deadline */
    CHECK_EQ(sy_poll(pf, 3, sy_now() + 5000000), 0);
    CHECK(sy_spawn(late_writer, (void *)1L, NULL) > 0);
    CHECK_EQ(sy_poll(pf, 3, SY_FOREVER), 1);
    CHECK(pf[1].revents & POLLIN);
    CHECK_EQ(pf[0].revents, 0);
    CHECK_EQ(sy_wait(-1, NULL, 0) > 0, 1);
    /* writable at once */
    struct pollfd w = {.fd = poll_fds[2][1], .events = POLLOUT};
    CHECK_EQ(sy_poll(&w, 1, SY_FOREVER), 1);
    CHECK_EQ(sy_poll(NULL, 1, 0), -EINVAL);
    CHECK_EQ(sy_poll(NULL, 0, sy_now() + 1000000), 0); /* a sleep */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(sy_close(poll_fds[i][0]), 0);
        CHECK_EQ(sy_close(poll_fds[i][1]), 0);
    }
    return 0;
}

static void test_poll(void)
{
    run(1, init_poll);
    run(2, init_poll);
}

/* --------------------- every task waits on an fd: not a deadlock */

static int outside[2];

static void *outside_writer(void *arg)
{
    (void)arg;
    usleep(200000);
    if (write(outside[1], "z", 1) != 1)
        abort();
    return NULL;
}

static int init_not_deadlock(void *arg)
{
    (void)arg;
    char c;
    /* only a thread outside the runtime will write: the runtime must wait */
    CHECK_EQ(sy_read(outside[0], &c, 1), 1);
    CHECK_EQ(c, 'z');
    return 0;
}

static void test_waiting_on_fd_is_not_deadlock(void)
{
    for (int ncpu = 1; ncpu <= 2; ncpu++) {
        CHECK_EQ(pipe(outside), 0);
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, outside_writer, NULL), 0);
        run(ncpu, init_not_deadlock);
        pthread_join(th, NULL);
        close(outside[0]);
        close(outside[1]);
    }
}

static void test_eperm_outside(void)
{
    char c;
    CHECK_EQ(sy_read(0, &c, 1), -EPERM);
    CHECK_EQ(sy_write(1, &c, 1), -EPERM);
    CHECK_EQ(sy_close(0), -EPERM);
    CHECK_EQ(sy_poll(NULL, 0, 0), -EPERM);
}

/* -------------------------------------- files: on the workers, not the CPU */

static volatile int file_done_flag;
static volatile long others_ran;

static int file_worker_task(void *arg)
{
    const char *path = arg;
    int fd = sy_openat(AT_FDCWD, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    static char buf[1 << 20];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)(i * 7);
    for (int k = 0; k < 8; k++)
        CHECK_EQ(sy_pwrite(fd, buf, sizeof buf, (off_t)k * (off_t)sizeof buf), (long)sizeof buf);
    CHECK_EQ(sy_fsync(fd), 0);
    CHECK_EQ(sy_fdatasync(fd), 0);
    static char back[1 << 20];
    CHECK_EQ(sy_pread(fd, back, sizeof back, 3 * (off_t)sizeof buf), (long)sizeof back);
    CHECK(memcmp(buf, back, sizeof buf) == 0);
    /* sy_pread from the page cache at once (fileio.c), from the disk the
     * slow way: the pages dropped (clean after the fsync), one page read
     * back, then a read from that page on (a part at once, the rest the
     * slow way, or all of it the slow way: the kernel's readahead says) */
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    CHECK_EQ(pread(fd, back, 4096, 5 * (off_t)sizeof buf), 4096);
    memset(back, 0, sizeof back);
    CHECK_EQ(sy_pread(fd, back, sizeof back, 5 * (off_t)sizeof buf), (long)sizeof back);
    CHECK(memcmp(buf, back, sizeof buf) == 0);
    CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    memset(back, 0, sizeof back);
    CHECK_EQ(sy_pread(fd, back, 100000, 2 * (off_t)sizeof buf + 12345), 100000);
    CHECK(memcmp(buf + 12345, back, 100000) == 0);
    CHECK_EQ(sy_pread(fd, back, 8192, 8 * (off_t)sizeof buf - 4096), 4096); /* to the end */
    CHECK(memcmp(buf + sizeof buf - 4096, back, 4096) == 0);
    CHECK_EQ(sy_pread(fd, back, 8192, 8 * (off_t)sizeof buf), 0);
    CHECK_EQ(sy_pread(fd, back, 1, -1), -EINVAL);
    /* sy_read and sy_write on a regular file go to the workers too */
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_EQ(sy_read(fd, back, 4096), 4096);
    CHECK(memcmp(buf, back, 4096) == 0);
    CHECK_EQ(sy_write(fd, "tail", 4), 4);
    CHECK_EQ(sy_close(fd), 0);
    CHECK_EQ(sy_pread(fd, back, 1, 0), -EBADF);
    CHECK_EQ(sy_openat(AT_FDCWD, "/nonexistent/x", O_RDONLY, 0), -ENOENT);
    CHECK_EQ(sy_openat(AT_FDCWD, NULL, O_RDONLY, 0), -EFAULT);
    unlink(path);
    file_done_flag = 1;
    return 0;
}

static int file_other(void *arg)
{
    (void)arg;
    while (!file_done_flag) {
        others_ran++;
        sy_yield();
    }
    return 0;
}

static int init_files(void *arg)
{
    (void)arg;
    char path[64];
    snprintf(path, sizeof path, "/tmp/sy_t_io.%d", (int)getpid());
    file_done_flag = 0;
    others_ran = 0;
    sy_attr pin0 = {.flags = SY_ATTR_PIN, .cpu = 0};
    CHECK(sy_spawn(file_worker_task, path, &pin0) > 0);
    CHECK(sy_spawn(file_other, NULL, &pin0) > 0);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    CHECK(others_ran > 0); /* the CPU ran the other task during the file work */
    return 0;
}

static void test_files_on_workers(void)
{
    run(1, init_files);
    run(2, init_files);
}

static void test_file_eperm_outside(void)
{
    char c;
    CHECK_EQ(sy_pread(0, &c, 1, 0), -EPERM);
    CHECK_EQ(sy_fsync(0), -EPERM);
    CHECK_EQ(sy_openat(AT_FDCWD, "/", O_RDONLY, 0), -EPERM);
}

/* -------------------------------------------------- review's edge cases */

/* A plain close() forgets the fd too: the number's next life (accept and
 * pipe reuse numbers at once) is registered and made non-blocking afresh,
 * so a deadline still works on it. */
static int init_plain_close_reuse(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe(p), 0);
    char c;
    CHECK_EQ(sy_read_until(p[0], &c, 1, sy_now() + 1000000), -ETIMEDOUT); /* registered */
    int old = p[0];
    CHECK_EQ(close(p[0]), 0);
    CHECK_EQ(close(p[1]), 0);
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(p[0], old); /* the same number, a new pipe */
    int64_t t0 = sy_now();
    CHECK_EQ(sy_read_until(p[0], &c, 1, t0 + 50000000), -ETIMEDOUT);
    CHECK(sy_now() - t0 < 5000000000ll); /* not blocked in read(2) */
    /* and poll on it sees data written later */
    CHECK_EQ(sy_write(p[1], "k", 1), 1);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    CHECK_EQ(sy_poll(&pf, 1, sy_now() + 2000000000ll), 1);
    CHECK_EQ(sy_close(p[0]), 0);
    CHECK_EQ(sy_close(p[1]), 0);
    return 0;
}

static void test_plain_close_then_reuse(void)
{
    run(1, init_plain_close_reuse);
    run(2, init_plain_close_reuse);
}

/* io.h's guess of what an fd is: a socket's reads and writes are done as
 * recv and send.  Sockets closed behind the runtime's back (the system
 * call, as fclose's close inside the C library is) whose numbers come back
 * as a pipe, then as a regular file, are still read and written right (recv
 * and send answer ENOTSOCK, and the guess is corrected), on both
 * backends. */
static void mark_pair_as_sockets(int *lo, int *hi)
{
    int sv[2];
    char buf[8];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    CHECK_EQ(sy_write(sv[0], "ab", 2), 2); /* a send: known as sockets */
    CHECK_EQ(sy_write(sv[1], "cd", 2), 2);
    CHECK_EQ(sy_read(sv[1], buf, sizeof buf), 2); /* recvs */
    CHECK(memcmp(buf, "ab", 2) == 0);
    CHECK_EQ(sy_read(sv[0], buf, sizeof buf), 2);
    CHECK(memcmp(buf, "cd", 2) == 0);
    *lo = sv[0] < sv[1] ? sv[0] : sv[1];
    *hi = sv[0] < sv[1] ? sv[1] : sv[0];
    CHECK_EQ(syscall(SYS_close, sv[0]), 0); /* not seen by io.c's close() */
    CHECK_EQ(syscall(SYS_close, sv[1]), 0);
}

static int init_sock_guess_stale(void *arg)
{
    (void)arg;
    int lo, hi, p[2];
    char buf[16];
    mark_pair_as_sockets(&lo, &hi);
    CHECK_EQ(pipe(p), 0);
    CHECK_EQ(p[0], lo); /* the same numbers, now a pipe */
    CHECK_EQ(p[1], hi);
    CHECK_EQ(sy_write(p[1], "hello", 5), 5);
    CHECK_EQ(sy_read(p[0], buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_EQ(sy_write(p[1], "again", 5), 5); /* corrected: write(2) at once */
    CHECK_EQ(sy_read(p[0], buf, sizeof buf), 5);
    CHECK(memcmp(buf, "again", 5) == 0);
    CHECK_EQ(close(p[0]), 0);
    CHECK_EQ(close(p[1]), 0);

    mark_pair_as_sockets(&lo, &hi);
    char path[] = "/tmp/t_io_guessXXXXXX";
    int f = mkstemp(path);
    CHECK_EQ(f, lo); /* now a regular file */
    unlink(path);
    CHECK_EQ(write(f, "0123456789", 10), 10);
    CHECK_EQ(lseek(f, 0, SEEK_SET), 0);
    CHECK_EQ(sy_read(f, buf, 4), 4);
    CHECK(memcmp(buf, "0123", 4) == 0);
    CHECK_EQ(sy_read(f, buf, sizeof buf), 6); /* from the file position */
    CHECK(memcmp(buf, "456789", 6) == 0);
    CHECK_EQ(sy_write(f, "ab", 2), 2);
    CHECK_EQ(pread(f, buf, 12, 0), 12);
    CHECK(memcmp(buf, "0123456789ab", 12) == 0);
    CHECK_EQ(sy_close(f), 0);
    return 0;
}

static void test_sock_guess_stale(void)
{
    run(1, init_sock_guess_stale);
    run(2, init_sock_guess_stale);
}

/* Bad fds and bad buffers on the paths io.h's guess and the pread from the
 * page cache added: each the system call's error, nothing left asleep. */
static int init_bad_input(void *arg)
{
    (void)arg;
    char c[8];
    int big = 1 << 30; /* beyond the fd table */
    CHECK_EQ(sy_write(big, "x", 1), -EBADF);
    CHECK_EQ(sy_read(big, c, 1), -EBADF);
    CHECK_EQ(sy_pread(big, c, 1, 0), -EBADF);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
#if !defined(SY_VALGRIND) /* (valgrind reports a bad pointer given to a system
                              call, which these do on purpose) */
    CHECK_EQ(sy_write(sv[0], NULL, 5), -EFAULT); /* the first send, not yet known */
    CHECK_EQ(sy_write(sv[0], "hello", 5), 5);
    CHECK_EQ(sy_read(sv[1], NULL, 5), -EFAULT); /* not known: a read */
    CHECK_EQ(sy_write(sv[1], "x", 1), 1);
    CHECK_EQ(sy_read(sv[0], NULL, 1), -EFAULT); /* known by its send: a recv */
#endif
    CHECK_EQ(sy_close(sv[0]), 0);
    CHECK_EQ(sy_close(sv[1]), 0);
    char path[] = "/tmp/t_io_badXXXXXX";
    int f = mkstemp(path);
    CHECK(f >= 0);
    unlink(path);
    CHECK_EQ(write(f, "0123", 4), 4);
#if !defined(SY_VALGRIND)
    CHECK_EQ(sy_pread(f, NULL, 4, 0), -EFAULT);
#endif
    CHECK_EQ(sy_pread(f, c, 4, -5), -EINVAL);
    CHECK_EQ(sy_pread(f, c, 4, 0), 4);
    CHECK_EQ(sy_close(f), 0);
    return 0;
}

static void test_bad_input(void)
{
    run(1, init_bad_input);
    run(2, init_bad_input);
}

/* sy_write writes the whole buffer, as a blocking write(2) does. */
static int wp[2];

static int drain(void *arg)
{
    size_t want = (size_t)(long)arg, got = 0;
    static char buf[65536];
    while (got < want) {
        ssize_t n = sy_read(wp[0], buf, sizeof buf);
        CHECK(n > 0);
        got += (size_t)n;
    }
    return 0;
}

static int init_write_whole(void *arg)
{
    (void)arg;
    CHECK_EQ(pipe(wp), 0);
    static char big[1 << 20];
    CHECK(sy_spawn(drain, (void *)(long)sizeof big, NULL) > 0);
    CHECK_EQ(sy_write(wp[1], big, sizeof big), (long)sizeof big);
    CHECK(sy_wait(-1, NULL, 0) > 0);
    CHECK_EQ(sy_close(wp[0]), 0);
    CHECK_EQ(sy_close(wp[1]), 0);
    return 0;
}

static void test_write_whole_buffer(void)
{
    run(1, init_write_whole);
    run(2, init_write_whole);
}

/* POLLHUP is reported even when no event was asked for. */
static int hp[2];

static int hangup(void *arg)
{
    (void)arg;
    sy_nanosleep(5000000);
    CHECK_EQ(sy_close(hp[1]), 0);
    return 0;
}

static int init_pollhup(void *arg)
{
    (void)arg;
    CHECK_EQ(pipe(hp), 0);
    CHECK(sy_spawn(hangup, NULL, NULL) > 0);
    struct pollfd pf = {.fd = hp[0], .events = 0};
    CHECK_EQ(sy_poll(&pf, 1, sy_now() + 5000000000ll), 1);
    CHECK(pf.revents & POLLHUP);
    CHECK(sy_wait(-1, NULL, 0) > 0);
    CHECK_EQ(sy_close(hp[0]), 0);
    return 0;
}

static void test_pollhup_without_events(void)
{
    run(1, init_pollhup);
    run(2, init_pollhup);
}

/* After an fd wait, a real deadlock is still found. */
static int dl_chan;

static int init_deadlock_after_io(void *arg)
{
    (void)arg;
    int p[2];
    CHECK_EQ(pipe(p), 0);
    char c;
    CHECK_EQ(sy_read_until(p[0], &c, 1, sy_now() + 2000000), -ETIMEDOUT);
    CHECK_EQ(sy_close(p[0]), 0);
    CHECK_EQ(sy_close(p[1]), 0);
    sy_sleep(&dl_chan, NULL); /* nobody will wake it: -EINTR after the report */
    return 0;
}

static void test_deadlock_found_after_io(void)
{
    for (int ncpu = 1; ncpu <= 2; ncpu++) {
        sy_config cfg = {.ncpu = ncpu};
        fprintf(stderr, "[a deadlock report is expected:]\n");
        CHECK_EQ(sy_run(&cfg, init_deadlock_after_io, NULL), -EDEADLK);
    }
}

int main(void)
{
    RUN(test_eperm_outside);
    RUN(test_pipe_read);
    RUN(test_socketpair_pingpong);
    RUN(test_tcp_echo);
    RUN(test_deadline_kill_close);
    RUN(test_poll);
    RUN(test_waiting_on_fd_is_not_deadlock);
    RUN(test_file_eperm_outside);
    RUN(test_files_on_workers);
    RUN(test_plain_close_then_reuse);
    RUN(test_write_whole_buffer);
    RUN(test_sock_guess_stale);
    RUN(test_bad_input);
    RUN(test_pollhup_without_events);
    RUN(test_deadlock_found_after_io);
    return 0;
}
