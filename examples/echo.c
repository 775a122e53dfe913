/* echo - a TCP echo server: one task per connection, every CPU, clean
 * shutdown on SIGINT or SIGTERM.
 *
 *   build/examples/echo 7000 &      # listens on 127.0.0.1:7000
 *   echo hello | nc -q1 127.0.0.1 7000
 *
 * Shutdown: SIGINT and SIGTERM are blocked in every thread and read from a
 * signalfd by a task (sy_read sleeps the task until one comes); it then
 * closes the listening socket (sy_close wakes the accepting task with
 * -EBADF) and kills the connections' tasks (their reads return -EINTR). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <switchyard.h>

static int lfd;

static int conn(void *arg)
{
    int fd = (int)(long)arg;
    char buf[16384];
    ssize_t n;
    while ((n = sy_read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < n;) {
            ssize_t w = sy_write(fd, buf + off, (size_t)(n - off));
            if (w < 0)
                goto out;
            off += w;
        }
    }
out:
    sy_close(fd);
    return 0;
}

static int stopper(void *arg)
{
    int sfd = (int)(long)arg;
    struct signalfd_siginfo si;
    if (sy_read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
        fprintf(stderr, "echo: signal %u, shutting down\n", si.ssi_signo);
    sy_close(sfd);
    sy_close(lfd); /* the acceptor wakes with -EBADF */
    return 0;
}

static int init(void *arg)
{
    int port = (int)(long)arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (sfd < 0 || lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(lfd, 1024) != 0) {
        fprintf(stderr, "echo: 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    sy_spawn(stopper, (void *)(long)sfd, &(sy_attr){.name = "stopper"});
    for (;;) {
        int fd = sy_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd == -EBADF)
            break; /* closed by the stopper */
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE)
                sy_nanosleep(10000000); /* out of fds: let connections end */
            continue;
        }
        if (sy_spawn(conn, (void *)(long)fd, &(sy_attr){.name = "conn"}) < 0)
            sy_close(fd);
    }
    /* init's exit kills the connections' tasks (sy_run's rule) */
    return 0;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 7000;
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* before sy_run: every CPU inherits it */
    int r = sy_run(NULL, init, (void *)(long)port);
    return r < 0 ? 1 : r;
}
