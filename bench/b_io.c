/*
 * b_io - echo servers, and HTTP servers under wrk, in one run (issue 8's
 * benchmark): Switchyard's I/O calls on one CPU on each backend
 * (switchyard-uring: io_uring, the default; switchyard-epoll: SY_IO=epoll),
 * a hand-written C epoll loop and a hand-written C liburing loop (the upper
 * bounds for one thread), Go 1.19's net (GOMAXPROCS=1, bench/go/echo.go)
 * when Go is installed, and Node's net (bench/node/echo.js, node exec'd:
 * its pid is the server's, libuv's threads included) when node is found
 * (B_IO_NODE, else PATH).
 *
 * Each server runs in a child process pinned to one core; the load client
 * (this process, one thread, its own epoll loop) runs on the other.  For
 * every server it reports the rate and the server's CPU time per request
 * (utime + stime from /proc/PID/stat over the measured interval): on
 * loopback the client pays the kernel's TCP work for both ends and
 * saturates first, so efficiency is what it cannot hide.  The echo rows
 * (pingpong, conns, accept) run a row's servers side by side and load them
 * in turns of 200 ms, round after round, until each has had SECONDS of
 * turns (load_side_by_side): every server sees the same machine, whose
 * speed drifts by up to 2x within seconds here.
 *
 *   b_io [--tsv] all | pingpong | conns | accept | pread | wake | idle | http [SECONDS]
 *     pingpong   one connection, 64-byte ping-pong: round trips/s, p50, p99
 *     conns      100 and 1000 connections, 64-byte and 4 KiB ping-pong
 *                each: messages (round trips) per second
 *     accept     connections per second, one at a time: connect, a 1-byte
 *                round trip, close (reset: no TIME_WAIT)
 *     pread      4 KiB preads at random offsets of a cached 16 MiB file, 16
 *                at a time, on one core: operations per second and the
 *                process's CPU time per operation (the kernel's workers and
 *                the epoll backend's worker threads included)
 *     wake       what waking a parked CPU costs: a task on CPU 0 sends the
 *                time on a channel every 300 us to a task on CPU 1, which
 *                has parked meanwhile; p50 and p99 of send-to-run, with CPU
 *                1 parked on its futex (no I/O in flight), in its ring (a
 *                read in flight: the futex wait armed in the ring), and in
 *                its ring woken through an eventfd (SY_IO_WAKE=eventfd)
 *     idle       10,000 idle connections: the server's CPU use over 2 s
 *                (must be ~0) and its memory (RSS) per connection
 *     http       HTTP servers under Debian's wrk (B_IO_WRK, else PATH; none:
 *                a "# wrk not found" line), last in `all`: each server
 *                pinned to one core, `wrk -t1 -c100 -dSECONDSs --latency`
 *                (whole seconds) pinned to the other, a 1 s wrk first to
 *                warm up; rate = wrk's Requests/sec, CPU per request = the
 *                server's utime+stime from right before the measured wrk
 *                starts to right after it exits, over wrk's request count
 *                (its 100 connects and closes fall in the interval: a few
 *                ms of CPU in seconds), p50/p99 = wrk's latency lines;
 *                wrk's socket errors and non-2xx responses print as an
 *                ERRORS line.  Servers, all answering "hello\n" with
 *                examples/httpd.c's headers (Content-Type: text/plain,
 *                Content-Length: 6; no Date), keep-alive, pipelining:
 *                switchyard-uring/-epoll = build/examples/httpd (beside
 *                this program's bench/; B_IO_HTTPD) on the one core it may
 *                run on (ncpu defaults to the affinity mask), SY_IO=epoll
 *                for the second; epoll-loop = serve-http-epoll below; go =
 *                bench/go/httpd.go (net/http, GOMAXPROCS=1); node =
 *                bench/node/httpd.js (http module; adds Connection and
 *                Keep-Alive headers)
 *   b_io serve-sy PORT | serve-epoll PORT | serve-uring PORT  (the echo servers)
 *   b_io serve-http-epoll PORT  (the HTTP loop: one thread, level-triggered
 *                epoll, requests read up to their blank line)
 *
 * Targets (issue 8): Switchyard on one CPU >= 0.9x the C loop on rate and
 * CPU per request, and ahead of Go on both.  After each row's servers, a
 * "#" line per Switchyard server gives its ratios to the best C loop (the
 * kinds named *-loop), to Go and to Node.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#if defined(SY_URING)
#include <liburing.h>
#endif

#define MSG 64
#define MAXMSG 4096

static void pin(int core)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return;
    int n = 0;
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &set) && n++ == core) {
            CPU_ZERO(&set);
            CPU_SET(i, &set);
            sched_setaffinity(0, sizeof set, &set);
            return;
        }
}

static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0) {
        perror("b_io: listen");
        exit(1);
    }
    return fd;
}

/* ---------------------------------------------------- Switchyard's server */

static int sy_lfd;

static int sy_conn(void *arg)
{
    int fd = (int)(long)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[4096];
    ssize_t n;
    while ((n = sy_read(fd, buf, sizeof buf)) > 0)
        for (ssize_t off = 0; off < n;) {
            ssize_t w = sy_write(fd, buf + off, (size_t)(n - off));
            if (w < 0)
                goto out;
            off += w;
        }
out:
    sy_close(fd);
    return 0;
}

static int sy_server(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = sy_accept(sy_lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            sy_spawn(sy_conn, (void *)(long)fd, NULL);
    }
    return 0;
}

static int serve_sy(int port)
{
    sy_lfd = listen_on(port);
    sy_config cfg = {.ncpu = 1, .stack_size = 16384}; /* every task's: pooled */
    return sy_run(&cfg, sy_server, NULL);
}

/* -------------------------------------------- the hand-written epoll loop */

/* The hand-written epoll loops' start: a non-blocking listening socket on
 * port in a new epoll (level-triggered); the epoll. */
static int epoll_listen(int port, int *lfd)
{
    *lfd = listen_on(port);
    fcntl(*lfd, F_SETFL, O_NONBLOCK);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = *lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, *lfd, &ev);
    return ep;
}

/* An accepted connection c, in the epoll ep: no Nagle, readable. */
static void epoll_add_conn(int ep, int c)
{
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
}

static int serve_epoll(int port)
{
    int lfd, ep = epoll_listen(port, &lfd);
    struct epoll_event evs[256];
    char buf[4096];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                int c;
                while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    epoll_add_conn(ep, c);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof buf);
            if (r <= 0) {
                close(fd);
                continue;
            }
            if (write(fd, buf, (size_t)r) != r) /* 64-byte echoes fit the socket buffer */
                close(fd);
        }
    }
    return 0;
}

/* ---------------------------------------- the hand-written HTTP epoll loop */

/* The response of examples/httpd.c, byte for byte. */
static const char http_reply[] = "HTTP/1.1 200 OK\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "Content-Length: 6\r\n"
                                 "\r\n"
                                 "hello\n";
static const char http_bad[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Content-Length: 0\r\n"
                               "Connection: close\r\n"
                               "\r\n";
#define HIN 8192 /* a request longer than this closes the connection, as httpd's */
#define HOUT 32768

struct hconn {
    size_t have, outoff, outlen;
    bool out_armed, closing;
    char in[HIN], out[HOUT];
};

static void h_close(int ep, struct hconn **conns, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd]);
    conns[fd] = NULL;
}

static void h_arm(int ep, int fd, struct hconn *c, bool out)
{
    if (c->out_armed == out)
        return;
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
    c->out_armed = out;
}

/* Level-triggered: per event one read, every complete request in the
 * buffer answered (pipelining), the answers sent in one write; a short
 * write waits for EPOLLOUT before anything more is read. */
static void h_event(int ep, struct hconn **conns, int fd)
{
    struct hconn *c = conns[fd];
    bool readable = !c->out_armed;
    for (;;) {
        while (c->outoff < c->outlen) {
            ssize_t w = write(fd, c->out + c->outoff, c->outlen - c->outoff);
            if (w < 0 && errno == EAGAIN) {
                h_arm(ep, fd, c, true);
                return;
            }
            if (w <= 0) {
                h_close(ep, conns, fd);
                return;
            }
            c->outoff += (size_t)w;
        }
        c->outoff = c->outlen = 0;
        if (c->closing) {
            h_close(ep, conns, fd);
            return;
        }
        size_t used = 0;
        char *end;
        while (c->outlen + sizeof http_reply <= HOUT &&
               (end = memmem(c->in + used, c->have - used, "\r\n\r\n", 4)) != NULL) {
            if (strncmp(c->in + used, "GET ", 4) != 0) {
                memcpy(c->out + c->outlen, http_bad, sizeof http_bad - 1);
                c->outlen += sizeof http_bad - 1;
                c->closing = true;
                break;
            }
            memcpy(c->out + c->outlen, http_reply, sizeof http_reply - 1);
            c->outlen += sizeof http_reply - 1;
            used = (size_t)(end + 4 - c->in);
        }
        if (used) {
            c->have -= used;
            memmove(c->in, c->in + used, c->have);
        }
        if (c->outlen)
            continue;
        if (!readable) {
            h_arm(ep, fd, c, false);
            return;
        }
        if (c->have == HIN) {
            h_close(ep, conns, fd);
            return;
        }
        ssize_t r = read(fd, c->in + c->have, HIN - c->have);
        readable = false;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            h_close(ep, conns, fd);
            return;
        }
        c->have += (size_t)r;
    }
}

static int serve_http_epoll(int port)
{
    int lfd, ep = epoll_listen(port, &lfd);
    struct rlimit rl;
    int maxfd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20 ? (int)rl.rlim_cur
                                                                              : 1 << 20;
    struct hconn **conns = calloc((size_t)maxfd, sizeof *conns);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd != lfd) {
                if (conns[fd])
                    h_event(ep, conns, fd);
                continue;
            }
            int c;
            while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                if (c >= maxfd || !(conns[c] = calloc(1, sizeof **conns))) {
                    close(c);
                    continue;
                }
                epoll_add_conn(ep, c);
            }
        }
    }
    return 0;
}

/* ------------------------------------------ the hand-written liburing loop */

#if defined(SY_URING)
/* One ring, one thread: a recv per connection in flight, a send after each
 * recv, one accept in flight; submits and waits in one call per batch. */
struct uconn {
    int fd;
    char buf[MAXMSG];
};
#define U_ACCEPT 1ull /* user_data: the accept; else a uconn *, | 1 for a send */

static void u_recv(struct io_uring *r, struct uconn *c)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(r);
    if (!sqe) {
        io_uring_submit(r);
        sqe = io_uring_get_sqe(r);
    }
    io_uring_prep_recv(sqe, c->fd, c->buf, sizeof c->buf, 0);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c);
}

static int serve_uring(int port)
{
    int lfd = listen_on(port);
    struct io_uring r;
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
                                .cq_entries = 8192};
    p.flags |= IORING_SETUP_CQSIZE;
    if (io_uring_queue_init_params(4096, &r, &p) != 0) {
        fprintf(stderr, "b_io: no io_uring\n");
        return 1;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r);
    io_uring_prep_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, U_ACCEPT);
    for (;;) {
        io_uring_submit_and_wait(&r, 1);
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&r, head, cqe) {
            n++;
            uint64_t tag = cqe->user_data;
            if (tag == U_ACCEPT) {
                if (cqe->res >= 0) {
                    struct uconn *c = malloc(sizeof *c);
                    c->fd = cqe->res;
                    int one = 1;
                    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    u_recv(&r, c);
                }
                sqe = io_uring_get_sqe(&r);
                if (!sqe) {
                    io_uring_submit(&r);
                    sqe = io_uring_get_sqe(&r);
                }
                io_uring_prep_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
                io_uring_sqe_set_data64(sqe, U_ACCEPT);
                continue;
            }
            struct uconn *c = (struct uconn *)(uintptr_t)(tag & ~1ull);
            if (cqe->res <= 0) {
                close(c->fd);
                free(c);
                continue;
            }
            if (tag & 1) { /* sent (whole: a ping-pong fits the buffer) */
                u_recv(&r, c);
                continue;
            }
            sqe = io_uring_get_sqe(&r);
            if (!sqe) {
                io_uring_submit(&r);
                sqe = io_uring_get_sqe(&r);
            }
            io_uring_prep_send(sqe, c->fd, c->buf, (size_t)cqe->res, MSG_NOSIGNAL);
            io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | 1);
        }
        io_uring_cq_advance(&r, n);
    }
    return 0;
}
#endif

/* --------------------------------------------------------- the client */

static uint64_t proc_cpu_ns(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    /* fields after the comm: state ppid pgrp session tty tpgid flags minflt
     * cminflt majflt cmajflt utime stime */
    if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
        return (uint64_t)(ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct server {
    const char *name;
    pid_t pid;
    int port;
};

struct result {
    double rate;       /* round trips per second */
    double cpu_us;     /* server CPU per round trip, us */
    double p50, p99;   /* us, one connection only */
};

/*
 * The servers of a row run side by side, all pinned to the same core, and
 * the client loads one at a time in turns of PHASE_NS, round after round,
 * until each has had `secs` of turns.  This machine's speed drifts by up to
 * 2x within seconds (other work on the host); servers measured one after
 * another saw different machines, and their ratios swung by 20 %.  In
 * turns, every server sees the same drift.  A turn starts by sending on
 * every connection and ends when the last reply of those sent before its
 * end has come back (an idle server costs nothing meanwhile: its CPU time
 * is read at the turn's start and end).
 */
#define PHASE_NS 200000000ull
#define WARM_NS 300000000ull

struct client {                 /* the connections to one server */
    int port;
    pid_t pid;
    int ep;
    int *fds, *got;
    uint64_t *sent_at;
    uint64_t *lat;
    size_t nlat, maxlat;
    uint64_t count, cpu_ns, wall_ns; /* measured turns */
};

static void client_open(struct client *c, int nconn)
{
    c->ep = epoll_create1(0);
    c->fds = calloc((size_t)nconn, sizeof *c->fds);
    c->got = calloc((size_t)nconn, sizeof *c->got);
    c->sent_at = calloc((size_t)nconn, sizeof *c->sent_at);
    c->maxlat = nconn == 1 ? 1 << 22 : 0;
    c->lat = c->maxlat ? malloc(c->maxlat * sizeof *c->lat) : NULL;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    for (int i = 0; i < nconn; i++) {
        c->fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        int tries = 0;
        while (connect(c->fds[i], (struct sockaddr *)&a, sizeof a) != 0) {
            if (++tries > 200) {
                perror("b_io: connect");
                exit(1);
            }
            usleep(10000);
            close(c->fds[i]);
            c->fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        }
        int one = 1;
        setsockopt(c->fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(c->ep, EPOLL_CTL_ADD, c->fds[i], &ev);
    }
}

static void client_close(struct client *c, int nconn)
{
    for (int i = 0; i < nconn; i++)
        close(c->fds[i]);
    close(c->ep);
    free(c->fds);
    free(c->got);
    free(c->sent_at);
    free(c->lat);
}

/* One turn of ping-pong on every connection of c for `ns`; counted if
 * `measure`. */
static void client_turn(struct client *c, int nconn, int msgsize, uint64_t ns, bool measure)
{
    static char msg[MAXMSG], buf[MAXMSG * 4];
    memset(msg, 'x', (size_t)msgsize);
    uint64_t t0 = now_ns(), cpu0 = measure ? proc_cpu_ns(c->pid) : 0, until = t0 + ns;
    int out = nconn;
    for (int i = 0; i < nconn; i++) {
        c->got[i] = 0;
        c->sent_at[i] = now_ns();
        if (write(c->fds[i], msg, (size_t)msgsize) != msgsize)
            exit(1);
    }
    struct epoll_event evs[256];
    bool sending = true;
    while (out > 0) {
        int n = epoll_wait(c->ep, evs, 256, 100);
        uint64_t now = now_ns();
        if (sending && now >= until)
            sending = false;
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            ssize_t r = read(c->fds[i], buf, sizeof buf);
            if (r <= 0) {
                fprintf(stderr, "b_io: server closed a connection\n");
                exit(1);
            }
            c->got[i] += (int)r;
            if (c->got[i] < msgsize)
                continue;
            c->got[i] -= msgsize;
            now = now_ns();
            if (measure) {
                c->count++;
                if (c->lat && c->nlat < c->maxlat)
                    c->lat[c->nlat++] = now - c->sent_at[i];
            }
            if (!sending) {
                out--;
                continue;
            }
            c->sent_at[i] = now;
            if (write(c->fds[i], msg, (size_t)msgsize) != msgsize)
                exit(1);
        }
    }
    if (measure) {
        c->cpu_ns += proc_cpu_ns(c->pid) - cpu0;
        c->wall_ns += now_ns() - t0;
    }
}

/* Connections one at a time for one turn: connect, a 1-byte round trip
 * (the server has accepted and runs the connection), close with a reset
 * (no TIME_WAIT to run out of ports). */
static void accept_turn(struct client *c, uint64_t ns, bool measure)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    uint64_t t0 = now_ns(), cpu0 = measure ? proc_cpu_ns(c->pid) : 0, until = t0 + ns;
    while (now_ns() < until) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        char ch = 'a';
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 || write(fd, &ch, 1) != 1 ||
            read(fd, &ch, 1) != 1) {
            perror("b_io: accept load");
            exit(1);
        }
        close(fd);
        if (measure)
            c->count++;
    }
    if (measure) {
        c->cpu_ns += proc_cpu_ns(c->pid) - cpu0;
        c->wall_ns += now_ns() - t0;
    }
}

/* A row: the n servers (srv[k].pid < 0: not running) side by side, nconn
 * connections each of msgsize-byte ping-pong (nconn 0: accepts), `secs` of
 * turns each after a warm-up turn; res[k] for each. */
static void load_side_by_side(const struct server *srv, int n, int nconn, int msgsize,
                              double secs, struct result *res)
{
    struct client *cl = calloc((size_t)n, sizeof *cl);
    for (int k = 0; k < n; k++) {
        cl[k].port = srv[k].port;
        cl[k].pid = srv[k].pid;
        if (srv[k].pid > 0 && nconn)
            client_open(&cl[k], nconn);
    }
    uint64_t want = (uint64_t)(secs * 1e9);
    for (int round = 0;; round++) {
        bool more = false;
        for (int k = 0; k < n; k++) {
            if (srv[k].pid <= 0 || (round > 0 && cl[k].wall_ns >= want))
                continue;
            more = true;
            uint64_t ns = round == 0 ? WARM_NS : PHASE_NS;
            if (nconn)
                client_turn(&cl[k], nconn, msgsize, ns, round > 0);
            else
                accept_turn(&cl[k], ns, round > 0);
        }
        if (!more)
            break;
    }
    for (int k = 0; k < n; k++) {
        struct client *c = &cl[k];
        res[k] = (struct result){0};
        if (srv[k].pid <= 0)
            continue;
        res[k].rate = c->wall_ns ? (double)c->count * 1e9 / (double)c->wall_ns : 0;
        res[k].cpu_us = c->count ? (double)c->cpu_ns / 1e3 / (double)c->count : 0;
        if (c->lat && c->nlat) {
            qsort(c->lat, c->nlat, sizeof *c->lat, cmp_u64);
            res[k].p50 = (double)c->lat[c->nlat / 2] / 1e3;
            res[k].p99 = (double)c->lat[c->nlat * 99 / 100] / 1e3;
        }
        if (nconn)
            client_close(c, nconn);
    }
    free(cl);
}

/* ------------------------------------------------------------ pread */

#define PREAD_FILE (16u << 20)
#define PREAD_DEPTH 16
static int pread_fd;
static double pread_secs;
static uint64_t pread_ops, pread_end;

static uint64_t self_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

static uint64_t rnd_off(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return (*x % (PREAD_FILE / 4096)) * 4096;
}

static int pread_task(void *arg)
{
    uint64_t x = 88172645463325252ull + (uint64_t)(long)arg;
    char buf[4096];
    while (now_ns() < pread_end) {
        if (sy_pread(pread_fd, buf, sizeof buf, (off_t)rnd_off(&x)) != 4096)
            abort();
        pread_ops++; /* (one CPU) */
    }
    return 0;
}

static int pread_init(void *arg)
{
    (void)arg;
    bench_spawn_wait(pread_task, PREAD_DEPTH);
    return 0;
}

/* In a child pinned to core 0: 4 KiB preads for secs seconds by `kind`. */
static void pread_run(const char *kind, struct result *res)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        pin(0);
        uint64_t c0 = self_cpu_ns(), t0 = now_ns(), ops = 0;
        pread_end = t0 + (uint64_t)(pread_secs * 1e9);
        if (!strncmp(kind, "switchyard", 10)) {
            setenv("SY_IO", strcmp(kind, "switchyard-epoll") ? "uring" : "epoll", 1);
            sy_config cfg = {.ncpu = 1};
            sy_run(&cfg, pread_init, NULL);
            ops = pread_ops;
        } else if (!strcmp(kind, "pread-loop")) {
            uint64_t x = 88172645463325252ull;
            char buf[4096];
            while (now_ns() < pread_end) {
                if (pread(pread_fd, buf, sizeof buf, (off_t)rnd_off(&x)) != 4096)
                    abort();
                ops++;
            }
#if defined(SY_URING)
        } else { /* uring-loop: PREAD_DEPTH reads in flight */
            struct io_uring r;
            struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER |
                                                 IORING_SETUP_DEFER_TASKRUN};
            static char bufs[PREAD_DEPTH][4096];
            uint64_t x = 88172645463325252ull;
            if (io_uring_queue_init_params(64, &r, &p) != 0)
                _exit(1);
            unsigned w[2] = {4, 4};
            io_uring_register_iowq_max_workers(&r, w);
            for (int i = 0; i < PREAD_DEPTH; i++) {
                struct io_uring_sqe *sqe = io_uring_get_sqe(&r);
                io_uring_prep_read(sqe, pread_fd, bufs[i], 4096, rnd_off(&x));
                io_uring_sqe_set_data64(sqe, (uint64_t)i);
            }
            while (now_ns() < pread_end) {
                io_uring_submit_and_wait(&r, 1);
                struct io_uring_cqe *cqe;
                unsigned head, n = 0;
                io_uring_for_each_cqe(&r, head, cqe) {
                    n++;
                    if (cqe->res != 4096)
                        abort();
                    ops++;
                    struct io_uring_sqe *sqe = io_uring_get_sqe(&r);
                    io_uring_prep_read(sqe, pread_fd, bufs[cqe->user_data], 4096, rnd_off(&x));
                    io_uring_sqe_set_data64(sqe, cqe->user_data);
                }
                io_uring_cq_advance(&r, n);
            }
#endif
        }
        double el = (double)(now_ns() - t0) / 1e9;
        struct result out = {.rate = (double)ops / el,
                             .cpu_us = ops ? (double)(self_cpu_ns() - c0) / 1e3 / (double)ops : 0};
        if (write(pfd[1], &out, sizeof out) != sizeof out)
            _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    if (pid > 0 && read(pfd[0], res, sizeof *res) != sizeof *res)
        memset(res, 0, sizeof *res);
    close(pfd[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

/* ------------------------------------------------------------- wake */

#define WAKES 2000
static sy_chan *wake_ch;
static int wake_pipe[2];
static bool wake_io;
static uint64_t wake_lat[WAKES];

static int wake_reader(void *arg) /* a read in flight on CPU 1 until the end */
{
    (void)arg;
    char c;
    return (int)sy_read(wake_pipe[0], &c, 1);
}

static int wake_receiver(void *arg)
{
    (void)arg;
    for (int i = 0; i < WAKES; i++) {
        uint64_t sent;
        if (sy_chan_recv(wake_ch, &sent) != 0)
            abort();
        wake_lat[i] = now_ns() - sent;
    }
    return 0;
}

static int wake_sender(void *arg)
{
    (void)arg;
    for (int i = 0; i < WAKES; i++) {
        sy_nanosleep(300000); /* CPU 1 spins 50 us, then parks */
        uint64_t t = now_ns();
        if (sy_chan_send(wake_ch, &t) != 0)
            abort();
    }
    return 0;
}

static int wake_init(void *arg)
{
    (void)arg;
    sy_attr on1 = {.flags = SY_ATTR_PIN, .cpu = 1}, on0 = {.flags = SY_ATTR_PIN, .cpu = 0};
    sy_chan_create(&wake_ch, sizeof(uint64_t), 0);
    if (wake_io) {
        if (pipe(wake_pipe) != 0)
            abort();
        sy_spawn(wake_reader, NULL, &on1);
    }
    int r = sy_spawn(wake_receiver, NULL, &on1);
    sy_spawn(wake_sender, NULL, &on0);
    sy_wait(r, NULL, 0);
    if (wake_io)
        sy_write(wake_pipe[1], "x", 1);
    while (sy_wait(-1, NULL, 0) > 0)
        ;
    sy_chan_destroy(wake_ch);
    return 0;
}

/* In a child: p50 and p99 in us of the wake of a parked CPU. */
static void wake_run(const char *kind, double *p50, double *p99)
{
    int pfd[2];
    *p50 = *p99 = 0;
    if (pipe(pfd) != 0)
        return;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        wake_io = strcmp(kind, "futex-park") != 0;
        setenv("SY_IO", "uring", 1);
        if (!strcmp(kind, "ring-eventfd"))
            setenv("SY_IO_WAKE", "eventfd", 1);
        if (!strcmp(kind, "epoll-poller"))
            setenv("SY_IO", "epoll", 1);
        sy_config cfg = {.ncpu = 2, .flags = SY_PIN_CPUS};
        sy_run(&cfg, wake_init, NULL);
        qsort(wake_lat, WAKES, sizeof *wake_lat, cmp_u64);
        double out[2] = {(double)wake_lat[WAKES / 2] / 1e3, (double)wake_lat[WAKES * 99 / 100] / 1e3};
        if (write(pfd[1], out, sizeof out) != sizeof out)
            _exit(1);
        _exit(0);
    }
    close(pfd[1]);
    double in[2];
    if (pid > 0 && read(pfd[0], in, sizeof in) == sizeof in) {
        *p50 = in[0];
        *p99 = in[1];
    }
    close(pfd[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

static long proc_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

struct idle_result {
    double cpu_pct;     /* of one core, over the idle interval */
    double kib_per_conn;
    int conns;
};

/* Open n connections to the server and leave them idle. */
static struct idle_result idle(int port, pid_t server, int n, double secs)
{
    struct idle_result res = {0};
    long rss0 = proc_rss_kib(server);
    int *fds = calloc((size_t)n, sizeof *fds);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, sizeof a) != 0) {
            if (fds[i] >= 0)
                close(fds[i]);
            fds[i] = -1;
            continue;
        }
        ok++;
    }
    /* one round trip on the last: the server has accepted them all (FIFO) */
    char m[MSG] = {0};
    for (int i = n - 1; i >= 0; i--)
        if (fds[i] >= 0) {
            if (write(fds[i], m, MSG) == MSG) {
                int got = 0;
                while (got < MSG) {
                    ssize_t r = read(fds[i], m, MSG);
                    if (r <= 0)
                        break;
                    got += (int)r;
                }
            }
            break;
        }
    usleep(200000);
    uint64_t c0 = proc_cpu_ns(server), t0 = now_ns();
    usleep((useconds_t)(secs * 1e6));
    uint64_t c1 = proc_cpu_ns(server), t1 = now_ns();
    long rss1 = proc_rss_kib(server);
    res.conns = ok;
    res.cpu_pct = 100.0 * (double)(c1 - c0) / (double)(t1 - t0);
    res.kib_per_conn = ok ? (double)(rss1 - rss0) / ok : 0;
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    return res;
}

/* ---------------------------------------------------------- servers run */

static const char *self_path;
static char httpd_path[4096]; /* build/examples/httpd, beside build/bench/b_io */

/* The echo server of `kind` on port, or with http its HTTP server (b_io http). */
static bool start_server(struct server *s, const char *kind, int port, bool http)
{
    s->port = port;
    s->name = kind;
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        pin(0);
        char ps[16];
        snprintf(ps, sizeof ps, "%d", port);
        if (!strcmp(kind, "go")) {
            setenv("GOMAXPROCS", "1", 1);
            setenv("GO111MODULE", "off", 1);
            const char *gocache = getenv("GOCACHE");
            if (!gocache)
                setenv("GOCACHE", "/tmp/b_io-gocache", 1);
            /* built first, then exec'd: its pid is the server's (go run
             * would keep the server as its child, and /proc would show go) */
            if (http)
                execl("/bin/sh", "sh", "-c",
                      "\"$0\" build -o /tmp/b_io-httpd-go bench/go/httpd.go && exec /tmp/b_io-httpd-go \"$1\"",
                      getenv("B_IO_GO"), ps, (char *)NULL);
            else
                execl("/bin/sh", "sh", "-c",
                      "\"$0\" build -o /tmp/b_io-echo-go bench/go/echo.go && exec /tmp/b_io-echo-go \"$1\"",
                      getenv("B_IO_GO"), ps, (char *)NULL);
        } else if (!strcmp(kind, "node")) {
            /* node itself, exec'd: its pid is the server's */
            const char *node = getenv("B_IO_NODE");
            execl(node, "node", http ? "bench/node/httpd.js" : "bench/node/echo.js", ps, (char *)NULL);
        } else if (http && !strncmp(kind, "switchyard", 10)) {
            /* examples/httpd: every CPU it may run on, which pin() made one */
            if (!strcmp(kind, "switchyard-epoll"))
                setenv("SY_IO", "epoll", 1);
            else
                unsetenv("SY_IO");
            execl(httpd_path, httpd_path, ps, (char *)NULL);
        } else if (http) {
            execl(self_path, self_path, "serve-http-epoll", ps, (char *)NULL);
        } else {
            const char *mode = !strncmp(kind, "switchyard", 10) ? "serve-sy"
                               : !strcmp(kind, "uring-loop")    ? "serve-uring"
                                                                : "serve-epoll";
            if (!strcmp(kind, "switchyard-epoll"))
                setenv("SY_IO", "epoll", 1);
            else
                unsetenv("SY_IO");
            execl(self_path, self_path, mode, ps, (char *)NULL);
        }
        _exit(127);
    }
    s->pid = pid;
    /* go build compiles first: wait until it accepts */
    for (int i = 0; i < 600; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return true;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return false;
}

static void stop_server(struct server *s)
{
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
}

static void io_report(const char *bench, const char *server, struct result r, bool lat,
                      const char *unit)
{
    if (bench_tsv) {
        printf("%s\t%s_rate\t%.0f\t%s/s\n", server, bench, r.rate, unit);
        printf("%s\t%s_cpu\t%.2f\tus/%s\n", server, bench, r.cpu_us, unit);
        return;
    }
    printf("Benchmark%s/%s \t%12.0f %s/s\t%8.2f us-cpu/%s", bench, server, r.rate, unit, r.cpu_us,
           unit);
    if (lat)
        printf("\t%8.1f us-p50\t%8.1f us-p99", r.p50, r.p99);
    printf("\n");
    fflush(stdout);
}

/* Each Switchyard row against the best hand-written C loop of the run
 * (the highest rate; the lowest CPU per request) and against Go. */
static void compare(const char *bench, const char **kinds, int n, const struct result *res)
{
    if (bench_tsv)
        return;
    double rate = 0, cpu = 0, go_rate = 0, go_cpu = 0, node_rate = 0, node_cpu = 0;
    for (int k = 0; k < n; k++) {
        size_t len = strlen(kinds[k]);
        if (res[k].rate <= 0)
            continue;
        if (!strcmp(kinds[k], "go")) {
            go_rate = res[k].rate;
            go_cpu = res[k].cpu_us;
        } else if (!strcmp(kinds[k], "node")) {
            node_rate = res[k].rate;
            node_cpu = res[k].cpu_us;
        } else if (len > 5 && !strcmp(kinds[k] + len - 5, "-loop")) { /* the C loops */
            rate = res[k].rate > rate ? res[k].rate : rate;
            cpu = cpu == 0 || res[k].cpu_us < cpu ? res[k].cpu_us : cpu;
        }
    }
    for (int k = 0; k < n; k++) {
        if (strncmp(kinds[k], "switchyard", 10) || res[k].rate <= 0)
            continue;
        if (rate > 0)
            printf("# %s: %s / best C loop: rate %.2fx, CPU per request %.2fx (lower is "
                   "better); target rate >= 0.9x, CPU <= 1.11x\n",
                   bench, kinds[k], res[k].rate / rate, res[k].cpu_us / cpu);
        if (go_rate > 0)
            printf("# %s: %s / Go: rate %.2fx, CPU per request %.2fx\n", bench, kinds[k],
                   res[k].rate / go_rate, res[k].cpu_us / go_cpu);
        if (node_rate > 0)
            printf("# %s: %s / Node: rate %.2fx, CPU per request %.2fx\n", bench, kinds[k],
                   res[k].rate / node_rate, res[k].cpu_us / node_cpu);
    }
    fflush(stdout);
}

/* ------------------------------------------------------------- http */

/* The executable named by the environment variable env, else the first
 * `name` on PATH; NULL if none. */
static const char *find_exe(const char *env, const char *name, char *buf, size_t n)
{
    const char *e = getenv(env);
    if (e && *e)
        return access(e, X_OK) == 0 ? e : NULL;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *c = strchr(p, ':');
        int len = c ? (int)(c - p) : (int)strlen(p);
        snprintf(buf, n, "%.*s/%s", len, len ? p : ".", name);
        if (access(buf, X_OK) == 0)
            return buf;
        if (!c)
            return NULL;
        p = c + 1;
    }
}

struct wrk_out {
    double rate, p50, p99;   /* Requests/sec; latency percentiles in us */
    uint64_t requests;       /* "N requests in ..." */
    char errors[512];        /* wrk's error lines, if any */
};

/* "0.90ms" and the like, in us. */
static double wrk_us(double v, const char *unit)
{
    return !strcmp(unit, "us") ? v : !strcmp(unit, "ms") ? v * 1e3 : !strcmp(unit, "s") ? v * 1e6
                                 : !strcmp(unit, "m")  ? v * 60e6
                                                       : v * 3600e6;
}

/* wrk -t1 -c100 -dSECSs --latency on the other core; false if it failed. */
static bool run_wrk(const char *wrk, int port, int secs, struct wrk_out *o)
{
    memset(o, 0, sizeof *o);
    char url[64], dur[32];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    snprintf(dur, sizeof dur, "-d%ds", secs);
    int pfd[2];
    if (pipe(pfd) != 0)
        return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        pin(1);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execl(wrk, "wrk", "-t1", "-c100", dur, "--latency", url, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    static char out[65536];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof out - 1 && (r = read(pfd[0], out + len, sizeof out - 1 - len)) != 0)
        if (r > 0)
            len += (size_t)r;
        else if (errno != EINTR)
            break;
    out[len] = 0;
    close(pfd[0]);
    int status = 1;
    if (pid > 0)
        waitpid(pid, &status, 0);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        int pct;
        double v;
        char unit[8];
        if (sscanf(line, "Requests/sec: %lf", &v) == 1)
            o->rate = v;
        else if (sscanf(line, " %d%% %lf%7s", &pct, &v, unit) == 3 && (pct == 50 || pct == 99))
            *(pct == 50 ? &o->p50 : &o->p99) = wrk_us(v, unit);
        else if (strstr(line, " requests in ") != NULL)
            o->requests = strtoull(line, NULL, 10);
        else if (strstr(line, "Socket errors:") || strstr(line, "Non-2xx or 3xx responses:")) {
            while (*line == ' ')
                line++;
            size_t el = strlen(o->errors);
            snprintf(o->errors + el, sizeof o->errors - el, "%s%s", el ? "; " : "", line);
        }
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && o->rate > 0 && o->requests > 0;
}

/* Each HTTP server on one core in turn, wrk on the other: a 1 s wrk to
 * warm up, then the measured wrk, the server's CPU time sampled right
 * before it starts and right after it exits (so its 100 connects and
 * closes, a few ms of a 5 s run, are in the interval too). */
static void http_bench(const char *wrk, const char **kinds, int nkinds, double secs, int *port)
{
    int s_int = (int)(secs + 0.5) < 1 ? 1 : (int)(secs + 0.5); /* wrk takes whole seconds */
    struct result res[8] = {{0}};
    for (int k = 0; k < nkinds; k++) {
        struct server s;
        if (!start_server(&s, kinds[k], (*port)++, true)) {
            printf("# Http/%s: did not start\n", kinds[k]);
            continue;
        }
        struct wrk_out w;
        bool ok = run_wrk(wrk, s.port, 1, &w);
        uint64_t cpu0 = proc_cpu_ns(s.pid);
        ok = ok && run_wrk(wrk, s.port, s_int, &w);
        uint64_t cpu1 = proc_cpu_ns(s.pid);
        stop_server(&s);
        if (!ok) {
            printf("# Http/%s: wrk failed%s%s\n", kinds[k], w.errors[0] ? ": " : "", w.errors);
            fflush(stdout);
            continue;
        }
        res[k].rate = w.rate;
        res[k].cpu_us = (double)(cpu1 - cpu0) / 1e3 / (double)w.requests;
        res[k].p50 = w.p50;
        res[k].p99 = w.p99;
        io_report("Http", kinds[k], res[k], true, "req");
        if (bench_tsv)
            printf("%s\tHttp_p50\t%.1f\tus\n%s\tHttp_p99\t%.1f\tus\n", kinds[k], w.p50, kinds[k], w.p99);
        if (w.errors[0])
            printf("# Http/%s: ERRORS (wrk): %s\n", kinds[k], w.errors);
        fflush(stdout);
    }
    compare("Http", kinds, nkinds, res);
}

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc >= 3 && !strcmp(argv[1], "serve-sy"))
        return serve_sy(atoi(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "serve-epoll"))
        return serve_epoll(atoi(argv[2]));
    if (argc >= 3 && !strcmp(argv[1], "serve-http-epoll"))
        return serve_http_epoll(atoi(argv[2]));
#if defined(SY_URING)
    if (argc >= 3 && !strcmp(argv[1], "serve-uring"))
        return serve_uring(atoi(argv[2]));
#endif
    int a = bench_args(argc, argv, "all|pingpong|conns|accept|pread|wake|idle|http [SECONDS]");
    const char *what = argv[a];
    double secs = a + 1 < argc ? atof(argv[a + 1]) : 2.0;
    signal(SIGPIPE, SIG_IGN);
    pin(1);
    const char *go = getenv("B_IO_GO");
    if (!go && access("/usr/lib/go-1.19/bin/go", X_OK) == 0)
        setenv("B_IO_GO", "/usr/lib/go-1.19/bin/go", 1);
    bool have_go = getenv("B_IO_GO") && access("bench/go/echo.go", R_OK) == 0;
    char exe[4096];
    const char *node = find_exe("B_IO_NODE", "node", exe, sizeof exe);
    if (node)
        setenv("B_IO_NODE", node, 1); /* for the servers' children */
    bool have_node = node && access("bench/node/echo.js", R_OK) == 0;
    /* the C loops' best is the reference; the io_uring rows only where
     * this build and kernel have it */
    const char *kinds[8];
    int nkinds = 0;
#if defined(SY_URING)
    struct io_uring probe;
    bool have_uring = io_uring_queue_init(8, &probe, 0) == 0;
    if (have_uring)
        io_uring_queue_exit(&probe);
#else
    bool have_uring = false;
#endif
    if (have_uring)
        kinds[nkinds++] = "switchyard-uring";
    kinds[nkinds++] = "switchyard-epoll";
    kinds[nkinds++] = "epoll-loop";
    if (have_uring)
        kinds[nkinds++] = "uring-loop";
    if (have_go)
        kinds[nkinds++] = "go";
    if (have_node)
        kinds[nkinds++] = "node";
    bool http = !strcmp(what, "http") || !strcmp(what, "all");
    if (!have_go)
        printf("# Go or bench/go/echo.go not found (run from the project root): no Go rows\n");
    if (!have_node)
        printf("# node not found (or bench/node/echo.js: run from the project root): no Node rows\n");
    if (!have_uring)
        printf("# no io_uring in this build (URING=0) or kernel: no io_uring rows\n");
    struct { const char *name; int nconn, msg; } runs[] = {
        {"PingPong64/c1", 1, 64},        {"PingPong64/c100", 100, 64},
        {"PingPong64/c1000", 1000, 64},  {"PingPong4K/c100", 100, 4096},
        {"PingPong4K/c1000", 1000, 4096}, {"Accept", 0, 0}};
    enum { NRUNS = sizeof runs / sizeof *runs };
    int port = 20000 + (int)(getpid() % 10000); /* below the ephemeral ports (32768-) */
    if (!strcmp(what, "wake") || !strcmp(what, "all")) {
        const char *wk[] = {"futex-park", "ring-futex", "ring-eventfd", "epoll-poller"};
        for (int k = have_uring ? 0 : 3; k < 4; k++) {
            if (k == 0 && !have_uring)
                continue;
            double p50, p99;
            wake_run(wk[k], &p50, &p99);
            if (bench_tsv)
                printf("%s\twake_p50\t%.1f\tus\n%s\twake_p99\t%.1f\tus\n", wk[k], p50, wk[k], p99);
            else
                printf("BenchmarkWake/%s \t%8.1f us-p50\t%8.1f us-p99\n", wk[k], p50, p99);
            fflush(stdout);
        }
        if (!strcmp(what, "wake"))
            return 0;
    }
    struct rlimit rl; /* side by side, the client holds every server's connections */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max; /* the servers inherit it */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (!strcmp(what, "idle") || !strcmp(what, "all")) {
        int n = 10000;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 100)
            n = (int)rl.rlim_cur - 100;
        for (int k = 0; k < nkinds; k++) {
            struct server s;
            if (!start_server(&s, kinds[k], port++, false)) {
                printf("# %s: did not start\n", kinds[k]);
                continue;
            }
            struct idle_result r = idle(s.port, s.pid, n, secs);
            stop_server(&s);
            if (bench_tsv) {
                printf("%s\tidle_cpu\t%.3f\t%%\n%s\tidle_mem\t%.2f\tKiB/conn\n", kinds[k], r.cpu_pct,
                       kinds[k], r.kib_per_conn);
            } else {
                printf("BenchmarkIdle%d/%s \t%8.3f %%cpu\t%8.2f KiB/conn\n", r.conns, kinds[k], r.cpu_pct,
                       r.kib_per_conn);
                fflush(stdout);
            }
        }
        if (!bench_tsv)
            printf("# idle connections: target under 1 %% of a CPU\n");
        if (!strcmp(what, "idle"))
            return 0;
    }
    for (int r = 0; r < NRUNS; r++) {
        if (!strcmp(what, "pingpong") && r > 0)
            continue;
        if (!strcmp(what, "conns") && (r == 0 || runs[r].nconn == 0))
            continue;
        if (!strcmp(what, "accept") && runs[r].nconn != 0)
            continue;
        if (!strcmp(what, "pread") || !strcmp(what, "idle") || !strcmp(what, "http"))
            break;
        struct result res[8] = {{0}};
        struct server srv[8];
        for (int k = 0; k < nkinds; k++)
            if (!start_server(&srv[k], kinds[k], port++, false)) {
                printf("# %s: did not start\n", kinds[k]);
                srv[k].pid = -1;
            }
        load_side_by_side(srv, nkinds, runs[r].nconn, runs[r].msg, secs, res);
        for (int k = 0; k < nkinds; k++) {
            if (srv[k].pid <= 0)
                continue;
            stop_server(&srv[k]);
            io_report(runs[r].name, kinds[k], res[k], runs[r].nconn == 1,
                      runs[r].nconn ? "rt" : "conn");
        }
        compare(runs[r].name, kinds, nkinds, res);
    }
    if (!strcmp(what, "pread") || !strcmp(what, "all")) {
        char path[64];
        snprintf(path, sizeof path, "/tmp/b_io-pread.%d", (int)getpid());
        pread_fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        static char chunk[1 << 16];
        memset(chunk, 'p', sizeof chunk);
        for (unsigned off = 0; off < PREAD_FILE; off += sizeof chunk)
            if (pwrite(pread_fd, chunk, sizeof chunk, off) != (ssize_t)sizeof chunk)
                exit(1);
        unlink(path);
        pread_secs = secs;
        const char *pk[4];
        int npk = 0;
        if (have_uring)
            pk[npk++] = "switchyard-uring";
        pk[npk++] = "switchyard-epoll";
        pk[npk++] = "pread-loop";
        if (have_uring)
            pk[npk++] = "uring-loop";
        struct result res[4] = {{0}};
        for (int k = 0; k < npk; k++) {
            pread_run(pk[k], &res[k]);
            io_report("Pread4K", pk[k], res[k], false, "op");
        }
        compare("Pread4K", pk, npk, res);
        close(pread_fd);
    }
    if (http) {
        const char *wrk = find_exe("B_IO_WRK", "wrk", exe, sizeof exe);
        if (!wrk) {
            printf("# wrk not found (Debian's wrk; or B_IO_WRK=path): no Http rows\n");
            return 0;
        }
        const char *hk[8];
        int nhk = 0;
        /* examples/httpd of the same build: beside bench/, as make builds it */
        const char *e = getenv("B_IO_HTTPD");
        const char *slash = strrchr(self_path, '/');
        if (e && *e)
            snprintf(httpd_path, sizeof httpd_path, "%s", e);
        else if (slash)
            snprintf(httpd_path, sizeof httpd_path, "%.*s/../examples/httpd", (int)(slash - self_path),
                     self_path);
        else
            snprintf(httpd_path, sizeof httpd_path, "build/examples/httpd");
        bool have_httpd = access(httpd_path, X_OK) == 0;
        if (have_httpd && have_uring)
            hk[nhk++] = "switchyard-uring";
        if (have_httpd)
            hk[nhk++] = "switchyard-epoll";
        else
            printf("# %s not found (make builds it): no Switchyard Http rows\n", httpd_path);
        hk[nhk++] = "epoll-loop";
        if (have_go && access("bench/go/httpd.go", R_OK) == 0)
            hk[nhk++] = "go";
        if (node && access("bench/node/httpd.js", R_OK) == 0)
            hk[nhk++] = "node";
        fflush(stdout);
        http_bench(wrk, hk, nhk, secs, &port);
    }
    return 0;
}
