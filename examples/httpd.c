/* httpd - a minimal HTTP/1.1 server: every GET gets a short "hello" body,
 * connections are kept alive, one task per connection, every CPU; quiet
 * (nothing printed per request); clean shutdown on SIGINT or SIGTERM.
 *
 *   build/examples/httpd 8080 &
 *   wrk -t2 -c100 -d10s http://127.0.0.1:8080/
 *
 * Requests are read until their blank line; a body is not expected (a
 * request with one, or longer than the buffer, closes the connection). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <switchyard.h>

static const char reply[] = "HTTP/1.1 200 OK\r\n"
                            "Content-Type: text/plain\r\n"
                            "Content-Length: 6\r\n"
                            "\r\n"
                            "hello\n";
static const char bad[] = "HTTP/1.1 400 Bad Request\r\n"
                          "Content-Length: 0\r\n"
                          "Connection: close\r\n"
                          "\r\n";
static int lfd;

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = sy_write(fd, p, n);
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int conn(void *arg)
{
    int fd = (int)(long)arg;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char buf[8192];
    size_t have = 0;
    for (;;) {
        ssize_t n = sy_read(fd, buf + have, sizeof buf - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        /* answer every complete request in the buffer (pipelining) */
        char *start = buf, *end;
        int ok = 1;
        while ((end = memmem(start, have - (size_t)(start - buf), "\r\n\r\n", 4)) != NULL) {
            if (strncmp(start, "GET ", 4) != 0) {
                send_all(fd, bad, sizeof bad - 1);
                ok = 0;
                break;
            }
            if (send_all(fd, reply, sizeof reply - 1) != 0) {
                ok = 0;
                break;
            }
            start = end + 4;
        }
        if (!ok)
            break;
        have -= (size_t)(start - buf);
        memmove(buf, start, have);
        if (have == sizeof buf)
            break; /* a request larger than the buffer */
    }
    sy_close(fd);
    return 0;
}

static int stopper(void *arg)
{
    int sfd = (int)(long)arg;
    struct signalfd_siginfo si;
    sy_read(sfd, &si, sizeof si);
    sy_close(sfd);
    sy_close(lfd); /* the acceptor wakes with -EBADF; init's exit ends the rest */
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
        listen(lfd, 4096) != 0) {
        fprintf(stderr, "httpd: 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    sy_spawn(stopper, (void *)(long)sfd, &(sy_attr){.name = "stopper"});
    for (;;) {
        int fd = sy_accept(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd == -EBADF)
            break;
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE)
                sy_nanosleep(10000000);
            continue;
        }
        if (sy_spawn(conn, (void *)(long)fd, &(sy_attr){.name = "http"}) < 0)
            sy_close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 8080;
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
